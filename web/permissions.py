"""Who may see and do what. Every view and API endpoint asks these, and only these.

- firm: posts and edits its own organisation's needs, marks their matches; reads results.
- office: lists and edits its own institution's results; sees the needs they answer and the
  firms that marked interest; reads needs (with contacts: offices answer them).
- officer: reads everything, curates auction shortlists.
- admin: everything, plus accounts.
A firm never sees another firm's contact details.
"""

from __future__ import annotations

from typing import Any

from corpora.models import Need, Result


def _role(user: Any) -> str | None:
    return getattr(user, "role", None) if getattr(user, "is_authenticated", False) else None


def can_post_need(user: Any) -> bool:
    return _role(user) == "firm" and user.organisation_id is not None


def can_edit_need(user: Any, need: Need) -> bool:
    role = _role(user)
    return role == "admin" or (role == "firm" and need.organisation_id == user.organisation_id)


def can_see_contact(user: Any, need: Need) -> bool:
    role = _role(user)
    if role in ("office", "officer", "admin"):
        return True
    return role == "firm" and need.organisation_id == user.organisation_id


def can_post_result(user: Any) -> bool:
    return _role(user) == "office" and user.organisation_id is not None


def can_edit_result(user: Any, result: Result) -> bool:
    role = _role(user)
    return role == "admin" or (role == "office" and result.organisation_id == user.organisation_id)


def can_see_interest(user: Any, result: Result) -> bool:
    """Which firms marked a result as relevant: its own office, officers, admins."""
    return _role(user) in ("officer", "admin") or can_edit_result(user, result)


def can_curate(user: Any) -> bool:
    return _role(user) in ("officer", "admin")


def can_manage_users(user: Any) -> bool:
    return _role(user) == "admin"
