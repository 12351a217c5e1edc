"""The form flow that needs and results share: post, edit, and change status.

The blueprints keep their own routes, permissions and messages; this module holds the
steps between them (validate through `service.records`, commit, re-index, flash, redirect, or
show the form again with every field's error), so the two sides cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from corpora.models import User
from matcher.types import Side
from service.records import FieldErrors
from web.database import get_db
from web.matching import save_and_index, service


@dataclass(frozen=True)
class ItemPages:
    side: Side  # also the template's variable, the blueprint (needs) and its id (need_id)
    template: str
    form_values: Callable[[], dict[str, str]]
    row_values: Callable[[Any], dict[str, str]]
    create: Callable[[Session, User, dict[str, str]], Any]
    update: Callable[[Session, User, Any, dict[str, str]], Any]
    set_status: Callable[[Session, User, Any, str], Any]
    created: str
    saved: str
    status_changed: Callable[[Any], str]

    def detail_url(self, row: Any) -> str:
        return url_for(f"{self.side}s.detail", **{f"{self.side}_id": row.id})

    def form(self, row: Any, values: dict[str, str], errors: dict[str, str]) -> Any:
        page = render_template(self.template, values=values, errors=errors, **{self.side: row})
        return page, 400 if errors else 200


def signed_in_user() -> User:
    """The signed-in account as a row of this request's session (records need one)."""
    return get_db().get(User, current_user.id)


def new_page(pages: ItemPages) -> Any:
    errors: dict[str, str] = {}
    values = pages.form_values() if request.method == "POST" else {}
    if request.method == "POST":
        row, errors = save_and_index(
            pages.side, lambda db: pages.create(db, signed_in_user(), values))
        if row is not None:
            flash(pages.created)
            return redirect(pages.detail_url(row))
    return pages.form(None, values, errors)


def edit_page(pages: ItemPages, row: Any) -> Any:
    errors: dict[str, str] = {}
    if request.method != "POST":
        return pages.form(row, pages.row_values(row), errors)
    values = pages.form_values()

    def write(db: Session) -> Any:
        pages.update(db, signed_in_user(), row, values)
        return row

    saved, errors = save_and_index(pages.side, write)
    if saved is not None:
        flash(pages.saved)
        return redirect(pages.detail_url(row))
    return pages.form(row, values, errors)


def status_page(pages: ItemPages, row: Any) -> Any:
    db = get_db()
    try:
        pages.set_status(db, signed_in_user(), row, request.form.get("status", ""))
    except FieldErrors as bad:
        abort(400, bad.errors["status"])
    db.commit()
    service().changed(db, pages.side, [row.id])
    flash(pages.status_changed(row))
    return redirect(pages.detail_url(row))
