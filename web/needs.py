"""Firms' technology needs: post, edit, close and reopen; explained matches and marks."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from corpora.models import Need
from service.feedback import marked_matches
from service.records import (
    NEED_FIELDS,
    FieldErrors,
    create_need,
    mark_match,
    set_need_status,
    unmark_match,
    update_need,
)
from web import permissions
from web.auth import role_required
from web.confirm import confirm_page, confirmed
from web.database import get_db
from web.item_pages import ItemPages, edit_page, new_page, signed_in_user, status_page
from web.matching import service
from web.matchview import FILTER_PARAMS, BadFilter, filters_from, match_rows, none_strong
from web.templating import plain_number

bp = Blueprint("needs", __name__, url_prefix="/needs")

MATCHES_K = 20


def get_need(need_id: int) -> Need:
    need = get_db().get(Need, need_id)
    if need is None:
        abort(404, "需求不存在")
    return need


def _editable(need_id: int) -> Need:
    need = get_need(need_id)
    if not permissions.can_edit_need(current_user, need):
        abort(403, "只能编辑本企业的需求")
    return need


def _form_values() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in NEED_FIELDS}


def _row_values(need: Need) -> dict[str, str]:
    values = {name: "" if getattr(need, name) is None else str(getattr(need, name))
              for name in NEED_FIELDS}
    for name in ("budget_min", "budget_max"):
        if getattr(need, name) is not None:
            values[name] = plain_number(getattr(need, name))
    return values


PAGES = ItemPages(
    "need", "needs/form.html", _form_values, _row_values, create_need, update_need,
    set_need_status, created="需求已发布，匹配结果如下", saved="需求已保存",
    status_changed=lambda need: "需求已关闭" if need.status == "closed" else "需求已重新开放",
)


@bp.route("/mine")
@role_required("firm")
def mine() -> Any:
    db = get_db()
    query = select(Need).order_by(Need.status.desc(), Need.updated_at.desc())
    if current_user.role != "admin":
        query = query.where(Need.organisation_id == current_user.organisation_id)
    return render_template("needs/mine.html", needs=list(db.scalars(query.limit(500))))


@bp.route("/new", methods=["GET", "POST"])
@role_required("firm")
def new() -> Any:
    if not permissions.can_post_need(current_user):
        abort(403, "只有绑定企业的账号可以发布需求")
    return new_page(PAGES)


@bp.route("/<id:need_id>/edit", methods=["GET", "POST"])
@login_required
def edit(need_id: int) -> Any:
    return edit_page(PAGES, _editable(need_id))


@bp.route("/<id:need_id>/status", methods=["POST"])
@login_required
def status(need_id: int) -> Any:
    need = _editable(need_id)
    if request.form.get("status") == "closed" and need.status != "closed" and not confirmed():
        return confirm_page(
            "关闭需求", f"关闭需求《{need.title}》？关闭后它不再出现在匹配和检索中，"
            "可以随时重新开放。", {"status": "closed"},
            url_for("needs.detail", need_id=need.id), button="确认关闭")
    return status_page(PAGES, need)


@bp.route("/<id:need_id>")
@login_required
def detail(need_id: int) -> Any:
    need = get_need(need_id)
    db = get_db()
    error = None
    try:
        filters = filters_from(request.args, "result")
    except BadFilter as bad:
        error, filters = bad.message, None
    rows = []
    hidden: list[Any] = []
    marks: dict[int, Any] = {}
    owner = permissions.can_edit_need(current_user, need)
    if error is None:
        # The firm's marks shape its need's list (不相关 hidden, 相关 pulls similar results
        # up) for everyone who reads it; only the owner sees the marks themselves.
        marked = marked_matches(service(), db, need, k=MATCHES_K, filters=filters)
        rows = match_rows(db, "result", marked.matches)
        if owner:
            marks, hidden = marked.marks, marked.hidden
    return render_template(
        "needs/detail.html", need=need, rows=rows, error=error, owner=owner, marks=marks,
        hidden=hidden,
        no_strong=none_strong(rows),
        show_contact=permissions.can_see_contact(current_user, need), args=request.args,
    ), 400 if error else 200


@bp.route("/<id:need_id>/feedback", methods=["POST"])
@login_required
def feedback(need_id: int) -> Any:
    need = _editable(need_id)
    db = get_db()
    try:
        mark = mark_match(db, signed_in_user(), need, request.form.get("result_id", ""),
                          request.form.get("relevant", ""), request.form.get("reason"))
        db.commit()
    except FieldErrors as bad:
        db.rollback()
        abort(400, "；".join(bad.errors.values()))
    flash("已标记为相关" if mark.relevant else "已标记为不相关，已从列表中隐藏")
    anchor = f"match-{mark.result_id}" if mark.relevant else "hidden-matches"
    return _back_to_list(need, anchor)


@bp.route("/<id:need_id>/feedback/<result_id>/delete", methods=["POST"])
@login_required
def unmark(need_id: int, result_id: str) -> Any:
    """Undo a mark: a hidden result comes back into the list."""
    need = _editable(need_id)
    db = get_db()
    try:
        mark = unmark_match(db, signed_in_user(), need, result_id)
        db.commit()
    except FieldErrors as bad:
        db.rollback()
        abort(400, "result_id：" + "；".join(bad.errors.values()))
    except LookupError as missing:
        db.rollback()
        abort(404, str(missing))
    flash("已撤销标记")
    return _back_to_list(need, f"match-{mark.result_id}")


def _back_to_list(need: Need, anchor: str) -> Any:
    # Back to the same filtered list: the query is rebuilt, never echoed (no header tricks).
    back = request.form.get("back", "")
    known = {*FILTER_PARAMS["result"], "date_from", "date_to"}
    pairs = parse_qsl(back[1:], keep_blank_values=False) if back.startswith("?") else []
    filters = {name: value for name, value in pairs if name in known}
    target = url_for("needs.detail", need_id=need.id, **filters)
    return redirect(f"{target}#{anchor}")
