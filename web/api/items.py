"""The API's needs and results: list, read, post, patch, their matches, and the marks firms
give them.

Both sides run one flow, parametrised by a `_Side` row (what differs: model, statuses,
validators, permissions, messages), so the need and the result endpoints cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import url_for
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import selectinload

from corpora.models import (
    ID_MAX,
    NEED_STATUSES,
    RESULT_STATUSES,
    MatchFeedback,
    Need,
    Result,
    as_id,
)
from corpora.schema import encoding_problem
from matcher.types import Side
from service.records import (
    FieldErrors,
    create_need,
    create_result,
    mark_match,
    set_need_status,
    set_result_status,
    update_need,
    update_result,
)
from web import permissions
from web.api import bp
from web.api.auth import actor, viewer
from web.api.input import (
    DATE_ARGS,
    K_DEFAULT,
    K_MAX,
    bool_arg,
    check_args,
    choice_args,
    fail,
    filters_for,
    int_arg,
    json_body,
    merge,
    page_args,
    path_id,
    status_args,
    type_problems,
)
from web.api.json import need_json, organisation_json, page_json, result_json, when
from web.api.replies import commit, ok
from web.database import get_db
from web.matching import service
from web.matchview import FILTER_PARAMS, match_rows

FEEDBACK_FIELDS = ("result_id", "relevant", "reason")


def load_need(raw_id: str) -> Need:
    need = get_db().get(Need, path_id(raw_id, "need_id"))
    if need is None:
        fail(404, "需求不存在")
    return need


def load_result(raw_id: str) -> Result:
    result = get_db().get(Result, path_id(raw_id, "result_id"))
    if result is None:
        fail(404, "成果不存在")
    return result


@dataclass(frozen=True)
class _Side:
    """What differs between the need and the result endpoints; the flow is the same."""

    side: Side
    model: type[Need] | type[Result]
    statuses: tuple[str, ...]
    choices: tuple[str, ...]  # list filters on columns of the same name
    to_json: Callable[[Any, Any], dict[str, Any]]
    create: Callable[..., Any]
    update: Callable[..., Any]
    set_status: Callable[..., Any]
    can_post: Callable[[Any], bool]
    can_edit: Callable[[Any, Any], bool]
    post_denied: str
    edit_denied: str
    mine_denied: str
    not_posted: str
    not_updated: str
    endpoint: str  # where a new row is read back (the Location header)
    id_arg: str


NEEDS = _Side(
    "need", Need, NEED_STATUSES, ("industry", "cooperation_mode"), need_json, create_need,
    update_need, set_need_status, permissions.can_post_need, permissions.can_edit_need,
    post_denied="只有绑定企业的账号可以发布需求", edit_denied="只能修改本企业的需求",
    mine_denied="只有企业账号有“我的需求”", not_posted="字段有误，需求未发布",
    not_updated="字段有误，需求未修改", endpoint="api.get_need", id_arg="need_id",
)
RESULTS = _Side(
    "result", Result, RESULT_STATUSES, ("industry", "result_type", "maturity"), result_json,
    create_result, update_result, set_result_status, permissions.can_post_result,
    permissions.can_edit_result,
    post_denied="只有绑定高校或院所的技术转移办公室账号可以登记成果",
    edit_denied="只能修改本单位的成果", mine_denied="只有技术转移办公室账号有“我的成果”",
    not_posted="字段有误，成果未登记", not_updated="字段有误，成果未修改",
    endpoint="api.get_result", id_arg="result_id",
)


def _list(kind: _Side) -> Any:
    check_args({*kind.choices, "status", "organisation_id", "mine", "page", "per_page"})
    user = viewer()
    page, per_page = page_args()
    model = kind.model
    conditions: list[ColumnElement[bool]] = []
    for name in kind.choices:
        if values := choice_args(name, kind.side):
            conditions.append(getattr(model, name).in_(values))
    if statuses := status_args(kind.statuses):
        conditions.append(model.status.in_(statuses))
    organisation_id = int_arg("organisation_id", 0, 1, ID_MAX)
    if organisation_id:
        conditions.append(model.organisation_id == organisation_id)
    if bool_arg("mine"):
        if not (kind.can_post(user) or user.role == "admin"):
            fail(403, kind.mine_denied)
        if user.role != "admin":  # as on /needs/mine: an admin's "mine" is every row
            conditions.append(model.organisation_id == user.organisation_id)
    db = get_db()
    total = db.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    rows = db.scalars(
        select(model).options(selectinload(model.organisation)).where(*conditions)
        .order_by(model.updated_at.desc(), model.id.desc())
        .offset((page - 1) * per_page).limit(per_page))
    return ok(page_json([kind.to_json(row, user) for row in rows], total, page, per_page))


def _post(kind: _Side) -> Any:
    user = viewer()
    if not kind.can_post(user):
        fail(403, kind.post_denied)
    body = json_body()
    db = get_db()
    errors = type_problems(kind.side, body)
    row = None
    try:
        row = kind.create(db, actor(), {k: v for k, v in body.items() if k not in errors})
    except FieldErrors as bad:
        merge(errors, bad.errors)
    except PermissionError as denied:
        fail(403, str(denied))
    if errors or row is None:
        fail(400, kind.not_posted, errors)
    commit()
    service().changed(db, kind.side, [row.id])
    return ok(kind.to_json(row, user), 201,
              {"Location": url_for(kind.endpoint, **{kind.id_arg: str(row.id)})})


def _patch(kind: _Side, row: Need | Result) -> Any:
    user = viewer()
    if not kind.can_edit(user, row):
        fail(403, kind.edit_denied)
    body = json_body()
    db = get_db()
    has_status = "status" in body
    status = body.pop("status", None)
    errors = type_problems(kind.side, body)
    try:
        kind.update(db, actor(), row, {k: v for k, v in body.items() if k not in errors},
                    partial=True)
    except FieldErrors as bad:
        merge(errors, bad.errors)
    if has_status:
        try:
            kind.set_status(db, actor(), row, status)
        except FieldErrors as bad:
            merge(errors, bad.errors)
    if errors:
        fail(400, kind.not_updated, errors)
    commit()
    service().changed(db, kind.side, [row.id])
    return ok(kind.to_json(row, user))


# --- needs ----------------------------------------------------------------------------------


@bp.get("/needs")
def list_needs() -> Any:
    return _list(NEEDS)


@bp.get("/needs/<need_id>")
def get_need(need_id: str) -> Any:
    check_args(())
    return ok(need_json(load_need(need_id), viewer()))


@bp.post("/needs")
def post_need() -> Any:
    return _post(NEEDS)


@bp.patch("/needs/<need_id>")
def patch_need(need_id: str) -> Any:
    return _patch(NEEDS, load_need(need_id))


@bp.get("/needs/<need_id>/matches")
def need_matches(need_id: str) -> Any:
    """The best results for a need, each with why it ranks there; the owner also sees the
    marks it gave, as on the need's page."""
    check_args({"k", *FILTER_PARAMS["result"], *DATE_ARGS})
    need = load_need(need_id)
    user = viewer()
    k = int_arg("k", K_DEFAULT, 1, K_MAX)
    filters = filters_for("result")
    db = get_db()
    rows = match_rows(db, "result", service().match_row(need, "result", k=k, filters=filters))
    items = [row.as_json() for row in rows]
    if permissions.can_edit_need(user, need):
        marks = {f.result_id: f for f in db.scalars(
            select(MatchFeedback).where(MatchFeedback.need_id == need.id))}
        for item in items:
            if (mark := marks.get(item["id"])) is not None:
                item["mark"] = {"relevant": mark.relevant, "reason": mark.reason}
    return ok({"need_id": need.id, "k": k, "matches": items})


@bp.post("/needs/<need_id>/feedback")
def need_feedback(need_id: str) -> Any:
    need = load_need(need_id)
    if not permissions.can_edit_need(viewer(), need):
        fail(403, "只有发布该需求的企业可以标记匹配结果")
    body = json_body()
    errors = {name: "未知字段" for name in body if name not in FEEDBACK_FIELDS}
    for name in ("result_id", "relevant"):
        if body.get(name) is None:
            errors[name] = "缺少此项，必填"
    result_id, reason = as_id(body.get("result_id")), body.get("reason")
    if result_id is None and body.get("result_id") is not None:
        errors.setdefault("result_id", f"须为成果编号（1–{ID_MAX} 的整数）")
    # mark_match stores a reason unchecked: a NUL or a lone surrogate would fail in the database.
    if isinstance(reason, str) and (problem := encoding_problem(reason)):
        errors.setdefault("reason", problem)
        reason = None
    db = get_db()
    mark = None
    try:
        mark = mark_match(db, actor(), need, result_id, body.get("relevant"), reason)
    except FieldErrors as bad:
        merge(errors, bad.errors)
    if errors or mark is None:
        fail(400, "标记有误，未保存", errors)
    commit()
    return ok({"need_id": need.id, "result_id": mark.result_id, "relevant": mark.relevant,
               "reason": mark.reason, "updated_at": when(mark.updated_at)})


# --- results --------------------------------------------------------------------------------


@bp.get("/results")
def list_results() -> Any:
    return _list(RESULTS)


@bp.get("/results/<result_id>")
def get_result(result_id: str) -> Any:
    check_args(())
    return ok(result_json(load_result(result_id), viewer()))


@bp.post("/results")
def post_result() -> Any:
    return _post(RESULTS)


@bp.patch("/results/<result_id>")
def patch_result(result_id: str) -> Any:
    return _patch(RESULTS, load_result(result_id))


@bp.get("/results/<result_id>/matches")
def result_matches(result_id: str) -> Any:
    """The open needs a result answers best, each with why it ranks there."""
    check_args({"k", *FILTER_PARAMS["need"], *DATE_ARGS})
    result = load_result(result_id)
    k = int_arg("k", K_DEFAULT, 1, K_MAX)
    filters = filters_for("need")
    rows = match_rows(get_db(), "need",
                      service().match_row(result, "need", k=k, filters=filters))
    return ok({"result_id": result.id, "k": k, "matches": [row.as_json() for row in rows]})


@bp.get("/results/<result_id>/interest")
def result_interest(result_id: str) -> Any:
    """Which firms marked this result, and how: for its own office, officers and admins."""
    check_args(())
    result = load_result(result_id)
    user = viewer()
    if not permissions.can_see_interest(user, result):
        fail(403, "只有成果所属单位、官员和管理员可以查看企业意向")
    marks = get_db().scalars(
        select(MatchFeedback)
        .options(selectinload(MatchFeedback.need).selectinload(Need.organisation))
        .where(MatchFeedback.result_id == result.id)
        .order_by(MatchFeedback.relevant.desc(), MatchFeedback.updated_at.desc(),
                  MatchFeedback.id.desc()))
    items = []
    for mark in marks:
        need: dict[str, Any] = {"id": mark.need.id, "title": mark.need.title,
                                "status": mark.need.status,
                                "organisation": organisation_json(mark.need.organisation)}
        if permissions.can_see_contact(user, mark.need):
            need["contact"] = mark.need.contact
        items.append({"need": need, "relevant": mark.relevant, "reason": mark.reason,
                      "updated_at": when(mark.updated_at)})
    return ok({"result_id": result.id, "items": items})
