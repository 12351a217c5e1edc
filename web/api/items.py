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
    NEED_STATUSES,
    RESULT_STATUSES,
    MatchFeedback,
    Need,
    Result,
)
from matcher.types import Side
from service.feedback import marked_matches
from service.records import (
    FieldErrors,
    create_need,
    create_result,
    mark_match,
    set_need_status,
    set_result_status,
    unmark_match,
    update_need,
    update_result,
)
from web import permissions
from web.api import answers
from web.api.auth import actor, viewer
from web.api.contract import checked_body, operation, read_body, read_query
from web.api.input import fail, filters_of, merge, path_id
from web.api.json import need_json, organisation_json, page_json, result_json, when
from web.api.params import (
    CHANGE_BODY,
    LIST_CHOICES,
    LIST_QUERY,
    MATCHES_QUERY,
    NEW_BODY,
    FeedbackBody,
)
from web.api.replies import commit, ok
from web.database import get_db
from web.matching import service
from web.matchview import match_rows

WRITE_ERRORS = (403, 409, 413)  # not allowed; lost a race; body over the size cap
LOCATION = {"Location": "新记录的地址（GET 它即得到本响应的内容）"}


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
    "need", Need, NEED_STATUSES, need_json, create_need,
    update_need, set_need_status, permissions.can_post_need, permissions.can_edit_need,
    post_denied="只有绑定企业的账号可以发布需求", edit_denied="只能修改本企业的需求",
    mine_denied="只有企业账号有“我的需求”", not_posted="字段有误，需求未发布",
    not_updated="字段有误，需求未修改", endpoint="api.get_need", id_arg="need_id",
)
RESULTS = _Side(
    "result", Result, RESULT_STATUSES, result_json,
    create_result, update_result, set_result_status, permissions.can_post_result,
    permissions.can_edit_result,
    post_denied="只有绑定高校或院所的技术转移办公室账号可以登记成果",
    edit_denied="只能修改本单位的成果", mine_denied="只有技术转移办公室账号有“我的成果”",
    not_posted="字段有误，成果未登记", not_updated="字段有误，成果未修改",
    endpoint="api.get_result", id_arg="result_id",
)


def _list(kind: _Side) -> Any:
    args = read_query()
    user = viewer()
    model = kind.model
    conditions: list[ColumnElement[bool]] = []
    for name in LIST_CHOICES[kind.side]:
        if values := getattr(args, name):
            conditions.append(getattr(model, name).in_(values))
    if args.status:
        conditions.append(model.status.in_(args.status))
    if args.organisation_id:
        conditions.append(model.organisation_id == args.organisation_id)
    if args.mine:
        if not (kind.can_post(user) or user.role == "admin"):
            fail(403, kind.mine_denied)
        if user.role != "admin":  # as on /needs/mine: an admin's "mine" is every row
            conditions.append(model.organisation_id == user.organisation_id)
    page, per_page = args.page, args.per_page
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
    body, errors = read_body()
    db = get_db()
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
    body, errors = read_body()
    db = get_db()
    has_status = "status" in body
    status = body.pop("status", None)
    try:
        kind.update(db, actor(), row, {k: v for k, v in body.items() if k not in errors},
                    partial=True)
    except FieldErrors as bad:
        merge(errors, bad.errors)
    if has_status and "status" not in errors:
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


# Who may do what, as the docs page says it (the rules are web.permissions').
ANYONE = "任何已登录账号。"
NEED_POSTERS = "绑定企业的企业账号。"
NEED_EDITORS = "发布该需求的企业（本企业账号）和管理员。"
RESULT_POSTERS = "绑定高校或院所的技术转移办公室账号。"
RESULT_EDITORS = "成果所属单位的技术转移办公室账号和管理员。"


@operation("GET", "/needs", tag="需求", summary="需求列表", answer=answers.NeedPage,
           query=LIST_QUERY["need"], errors=(403,),
           description=ANYONE + "联系方式只对有权查看者出现。mine=1：企业账号只看本企业的，"
           "管理员看全部；其他角色 403。")
def list_needs() -> Any:
    return _list(NEEDS)


@operation("GET", "/needs/{need_id}", tag="需求", summary="读取一条需求",
           answer=answers.NeedOut, errors=(404,), description=ANYONE)
def get_need(need_id: str) -> Any:
    read_query()
    return ok(need_json(load_need(need_id), viewer()))


@operation("POST", "/needs", tag="需求", summary="发布需求", answer=answers.NeedOut,
           status=201, body=NEW_BODY["need"], errors=WRITE_ERRORS, headers=LOCATION,
           description=NEED_POSTERS + "字段规则与批量导入相同；任何一个字段有误，整条不保存。")
def post_need() -> Any:
    return _post(NEEDS)


@operation("PATCH", "/needs/{need_id}", tag="需求", summary="修改需求（只改给出的字段）",
           answer=answers.NeedOut, body=CHANGE_BODY["need"], errors=(404, *WRITE_ERRORS),
           description=NEED_EDITORS + "status 可改为 open 或 closed；任何一个字段有误，都不保存。")
def patch_need(need_id: str) -> Any:
    return _patch(NEEDS, load_need(need_id))


@operation("GET", "/needs/{need_id}/matches", tag="匹配", summary="需求的匹配成果",
           answer=answers.NeedMatches, query=MATCHES_QUERY["result"], errors=(404,),
           description=ANYONE + "每条带排名解释；发布该需求的企业还能看到自己给的标记。")
def need_matches(need_id: str) -> Any:
    """The best results for a need, each with why it ranks there; the owner also sees the
    marks it gave, as on the need's page."""
    args = read_query()
    need = load_need(need_id)
    user = viewer()
    filters = filters_of(args, "result")
    db = get_db()
    # As on the page: 不相关 results left out, 相关 ones pulling similar results up.
    marked = marked_matches(service(), db, need, k=args.k, filters=filters)
    items = [row.as_json() for row in match_rows(db, "result", marked.matches)]
    answer: dict[str, Any] = {"need_id": need.id, "k": args.k, "matches": items}
    if permissions.can_edit_need(user, need):
        for item in items:
            if (mark := marked.marks.get(item["id"])) is not None:
                item["mark"] = {"relevant": mark.relevant, "reason": mark.reason}
        answer["hidden"] = [{"id": mark.result_id, "title": mark.result.title,
                             "reason": mark.reason} for mark in marked.hidden]
    return ok(answer)


@operation("POST", "/needs/{need_id}/feedback", tag="匹配", summary="标记一条匹配是否相关",
           answer=answers.MarkOut, body=FeedbackBody, errors=(404, *WRITE_ERRORS),
           description=NEED_EDITORS + "同一需求与成果只有一条标记，再次标记即覆盖。"
           "标记为不相关的成果不再出现在该需求的匹配列表中（列在 hidden 里，可撤销）；"
           "标记为相关的成果使与之相近的成果排得更靠前。")
def need_feedback(need_id: str) -> Any:
    need = load_need(need_id)
    if not permissions.can_edit_need(viewer(), need):
        fail(403, "只有发布该需求的企业可以标记匹配结果")
    body = checked_body("标记有误，未保存")
    db = get_db()
    try:
        mark = mark_match(db, actor(), need, body["result_id"], body["relevant"],
                          body.get("reason"))
    except FieldErrors as bad:
        fail(400, "标记有误，未保存", bad.errors)
    commit()
    return ok({"need_id": need.id, "result_id": mark.result_id, "relevant": mark.relevant,
               "reason": mark.reason, "updated_at": when(mark.updated_at)})


@operation("DELETE", "/needs/{need_id}/feedback/{result_id}", tag="匹配",
           summary="撤销一条匹配标记", answer=answers.UnmarkOut, errors=(403, 404, 409),
           description=NEED_EDITORS + "撤销后该成果按原样参与排序：隐藏的成果重新出现在匹配列表中。"
           "该成果在此需求上没有标记时 404。")
def delete_need_feedback(need_id: str, result_id: str) -> Any:
    need = load_need(need_id)
    if not permissions.can_edit_need(viewer(), need):
        fail(403, "只有发布该需求的企业可以撤销标记")
    read_query()
    try:
        mark = unmark_match(get_db(), actor(), need, path_id(result_id, "result_id"))
    except LookupError as missing:
        fail(404, str(missing))
    commit()
    return ok({"need_id": need.id, "result_id": mark.result_id, "relevant": mark.relevant})


# --- results --------------------------------------------------------------------------------


@operation("GET", "/results", tag="成果", summary="成果列表", answer=answers.ResultPage,
           query=LIST_QUERY["result"], errors=(403,),
           description=ANYONE + "mine=1：技术转移办公室账号只看本单位的，管理员看全部；"
           "其他角色 403。")
def list_results() -> Any:
    return _list(RESULTS)


@operation("GET", "/results/{result_id}", tag="成果", summary="读取一条成果",
           answer=answers.ResultOut, errors=(404,), description=ANYONE)
def get_result(result_id: str) -> Any:
    read_query()
    return ok(result_json(load_result(result_id), viewer()))


@operation("POST", "/results", tag="成果", summary="登记成果", answer=answers.ResultOut,
           status=201, body=NEW_BODY["result"], errors=WRITE_ERRORS, headers=LOCATION,
           description=RESULT_POSTERS + "字段规则与批量导入相同；任何一个字段有误，整条不保存。")
def post_result() -> Any:
    return _post(RESULTS)


@operation("PATCH", "/results/{result_id}", tag="成果", summary="修改成果（只改给出的字段）",
           answer=answers.ResultOut, body=CHANGE_BODY["result"], errors=(404, *WRITE_ERRORS),
           description=RESULT_EDITORS + "status 可改为 active 或 withdrawn；"
           "任何一个字段有误，都不保存。")
def patch_result(result_id: str) -> Any:
    return _patch(RESULTS, load_result(result_id))


@operation("GET", "/results/{result_id}/matches", tag="匹配", summary="成果的匹配需求",
           answer=answers.ResultMatches, query=MATCHES_QUERY["need"], errors=(404,),
           description=ANYONE + "只含开放中的需求，每条带排名解释。")
def result_matches(result_id: str) -> Any:
    """The open needs a result answers best, each with why it ranks there."""
    args = read_query()
    result = load_result(result_id)
    filters = filters_of(args, "need")
    rows = match_rows(get_db(), "need",
                      service().match_row(result, "need", k=args.k, filters=filters))
    return ok({"result_id": result.id, "k": args.k,
               "matches": [row.as_json() for row in rows]})


@operation("GET", "/results/{result_id}/interest", tag="匹配", summary="企业对成果的意向",
           answer=answers.ResultInterest, errors=(403, 404),
           description="成果所属单位的技术转移办公室账号、科委/G60 官员和管理员。")
def result_interest(result_id: str) -> Any:
    """Which firms marked this result, and how: for its own office, officers and admins."""
    read_query()
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
