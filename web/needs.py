"""Firms' technology needs: post, edit, close and reopen; explained matches and marks."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import Session

from corpora.models import MatchFeedback, Need, User
from web import permissions
from web.auth import role_required
from web.database import get_db
from web.matching import save_and_index, service
from web.matchview import FILTER_PARAMS, BadFilter, filters_from, match_rows
from web.records import (
    NEED_FIELDS,
    FieldErrors,
    create_need,
    mark_match,
    set_need_status,
    update_need,
)
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


def _me() -> User:
    return get_db().get(User, current_user.id)


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
    errors: dict[str, str] = {}
    values = _form_values() if request.method == "POST" else {}
    if request.method == "POST":
        need, errors = save_and_index("need", lambda db: create_need(db, _me(), values))
        if need is not None:
            flash("需求已发布，匹配结果如下")
            return redirect(url_for("needs.detail", need_id=need.id))
    return render_template("needs/form.html", need=None, values=values, errors=errors), \
        400 if errors else 200


@bp.route("/<id:need_id>/edit", methods=["GET", "POST"])
@login_required
def edit(need_id: int) -> Any:
    need = _editable(need_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _form_values()

        def write(db: Session) -> Need:
            update_need(db, _me(), need, values)
            return need

        saved, errors = save_and_index("need", write)
        if saved is not None:
            flash("需求已保存")
            return redirect(url_for("needs.detail", need_id=need.id))
    else:
        values = {name: "" if getattr(need, name) is None else str(getattr(need, name))
                  for name in NEED_FIELDS}
        for name in ("budget_min", "budget_max"):
            if getattr(need, name) is not None:
                values[name] = plain_number(getattr(need, name))
    return render_template("needs/form.html", need=need, values=values, errors=errors), \
        400 if errors else 200


@bp.route("/<id:need_id>/status", methods=["POST"])
@login_required
def status(need_id: int) -> Any:
    need = _editable(need_id)
    db = get_db()
    try:
        set_need_status(db, _me(), need, request.form.get("status", ""))
    except FieldErrors as bad:
        abort(400, bad.errors["status"])
    db.commit()
    service().changed(db, "need", [need.id])
    flash("需求已关闭" if need.status == "closed" else "需求已重新开放")
    return redirect(url_for("needs.detail", need_id=need.id))


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
    if error is None:
        rows = match_rows(db, "result",
                          service().match_row(need, "result", k=MATCHES_K, filters=filters))
    owner = permissions.can_edit_need(current_user, need)
    marks = {}
    if owner:
        marks = {f.result_id: f for f in db.scalars(
            select(MatchFeedback).where(MatchFeedback.need_id == need.id))}
    return render_template(
        "needs/detail.html", need=need, rows=rows, error=error, owner=owner, marks=marks,
        show_contact=permissions.can_see_contact(current_user, need), args=request.args,
    ), 400 if error else 200


@bp.route("/<id:need_id>/feedback", methods=["POST"])
@login_required
def feedback(need_id: int) -> Any:
    need = _editable(need_id)
    db = get_db()
    try:
        mark = mark_match(db, _me(), need, request.form.get("result_id", ""),
                          request.form.get("relevant", ""), request.form.get("reason"))
        db.commit()
    except FieldErrors as bad:
        db.rollback()
        abort(400, "；".join(bad.errors.values()))
    flash("已标记为相关" if mark.relevant else "已标记为不相关")
    # Back to the same filtered list: the query is rebuilt, never echoed (no header tricks).
    back = request.form.get("back", "")
    known = {*FILTER_PARAMS["result"], "date_from", "date_to"}
    pairs = parse_qsl(back[1:], keep_blank_values=False) if back.startswith("?") else []
    filters = {name: value for name, value in pairs if name in known}
    target = url_for("needs.detail", need_id=need.id, **filters)
    return redirect(f"{target}#match-{mark.result_id}")
