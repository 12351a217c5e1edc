"""How needs, results and shortlists look in the API's answers.

A need's contact is included only for those `web.permissions.can_see_contact` allows: the key
is absent, not null, for everyone else.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from corpora.models import (
    Need,
    Organisation,
    Result,
    Shortlist,
)
from web import permissions


def when(value: date | datetime | None) -> str | None:
    """ISO 8601; timestamps in UTC with the offset written out on both databases (SQLite
    gives them back naive, PostgreSQL aware)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    return value.isoformat()


def organisation_json(organisation: Organisation | None) -> dict[str, Any] | None:
    if organisation is None:
        return None
    return {"id": organisation.id, "name": organisation.name, "city": organisation.city}


def need_json(need: Need, user: Any) -> dict[str, Any]:
    """A need as `user` may see it: the contact key is absent, not null, for anyone who may
    not see it (another firm), so no client can mistake it for "no contact given"."""
    body: dict[str, Any] = {
        "id": need.id, "external_id": need.external_id, "title": need.title,
        "description": need.description, "industry": need.industry,
        "cooperation_mode": need.cooperation_mode, "budget_min": need.budget_min,
        "budget_max": need.budget_max, "region": need.region, "deadline": when(need.deadline),
    }
    if permissions.can_see_contact(user, need):
        body["contact"] = need.contact
    body |= {
        "status": need.status, "organisation": organisation_json(need.organisation),
        "created_at": when(need.created_at), "updated_at": when(need.updated_at),
        "editable": permissions.can_edit_need(user, need),
    }
    return body


def result_json(result: Result, user: Any) -> dict[str, Any]:
    return {
        "id": result.id, "external_id": result.external_id, "title": result.title,
        "title_derived": result.title_derived,
        "abstract": result.abstract, "result_type": result.result_type,
        "patent_number": result.patent_number, "maturity": result.maturity,
        "industry": result.industry, "keywords": result.keyword_list,
        "inventors": result.inventor_list, "transfer_modes": result.transfer_mode_list,
        "asking_price": result.asking_price, "published_on": when(result.published_on),
        "status": result.status, "organisation": organisation_json(result.organisation),
        "created_at": when(result.created_at), "updated_at": when(result.updated_at),
        "editable": permissions.can_edit_result(user, result),
    }


def page_json(items: list[dict[str, Any]], total: int, page: int, per_page: int
              ) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def shortlist_json(shortlist: Shortlist) -> dict[str, Any]:
    return {
        "id": shortlist.id, "title": shortlist.title, "event_date": when(shortlist.event_date),
        "note": shortlist.note, "created_at": when(shortlist.created_at),
        "updated_at": when(shortlist.updated_at),
        "lots": [{"position": lot.position, "result_id": lot.result_id,
                  "title": lot.result.title, "reserve_price": lot.reserve_price,
                  "note": lot.note, "organisation": organisation_json(lot.result.organisation),
                  "status": lot.result.status, "outcome": lot.outcome,
                  "sold_price": lot.sold_price, "buyer": lot.buyer,
                  "outcome_at": when(lot.outcome_at)}
                 for lot in shortlist.lots],
    }
