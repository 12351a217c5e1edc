"""The JSON API (/api/v1): the pages' operations for scripts and other systems.

Same rules as the pages, by construction: every permission decision is a call into
`web.permissions`, every write goes through `web.records` (the importer's validation), and a
write is committed only when nothing at all was wrong, so a rejected request leaves the
database as it was. The reference for users is docs/api.md.

Robustness is part of the contract: whatever a client sends (random Unicode, wrong JSON types,
missing or unknown fields, huge numbers, a broken body), the answer is a success or a 4xx with
a message and, where a field is to blame, the field's name; never a 500. That is why the
values are type-checked here before `web.records` sees them: the importer's validator was
written for spreadsheet cells and accepts, or crashes on, some values an API must refuse.

Authentication is a bearer token (`Authorization: Bearer …`, no CSRF: a token is no ambient
authority) or the browser's session cookie (unsafe methods then need the CSRF token, as forms
do).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, g, request, url_for
from flask_login import current_user
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from corpora.models import (
    ID_MAX,
    NEED_STATUSES,
    RESULT_STATUSES,
    MatchFeedback,
    Need,
    Result,
    Shortlist,
    ShortlistLot,
    User,
    as_id,
)
from corpora.schema import encoding_problem
from matcher.types import Side
from web import permissions
from web.accounts import authenticate, issue_api_token, user_for_token
from web.api_input import (
    ApiError,
    bool_arg,
    check_args,
    choice_args,
    fail,
    filters_for,
    int_arg,
    json_body,
    merge,
    one_arg,
    page_args,
    path_id,
    status_args,
    type_name,
    type_problems,
)
from web.api_json import need_json, organisation_json, page_json, result_json, shortlist_json, when
from web.audit import record
from web.auth import SiteUser
from web.database import get_db
from web.errors import json_error
from web.matching import service
from web.matchview import FILTER_PARAMS, match_rows
from web.records import (
    FieldErrors,
    create_need,
    create_result,
    mark_match,
    set_need_status,
    set_result_status,
    update_need,
    update_result,
)
from web.security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# CSRF is checked in `_authenticate`, and only for cookie-authenticated writes.
csrf.exempt(bp)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ENDPOINTS = frozenset({"api.issue_token"})
K_DEFAULT = 20
K_MAX = 100
QUERY_MAX = 2000
TOKEN_MAX = 200
USERNAME_MAX = 50
PASSWORD_MAX = 1024
DATE_ARGS = ("date_from", "date_to")
FEEDBACK_FIELDS = ("result_id", "relevant", "reason")
TOKEN_FIELDS = ("username", "password")


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Any:
    if "db" in g:
        g.db.rollback()
    body, status = json_error(error.status, error.message, error.fields or None)
    if status == 401:
        body.headers["WWW-Authenticate"] = 'Bearer realm="g60-api"'
    return body, status


@bp.after_request
def _no_store(response: Response) -> Response:
    """Answers carry contacts and private marks: no shared cache may keep them."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def ok(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON success with Chinese left readable. Text from the database is clean Unicode,
    but should a lone surrogate ever be there, backslashreplace writes it as the JSON escape
    `\\udxxx` rather than failing to encode."""
    text = json.dumps(body, ensure_ascii=False)
    return Response(text.encode("utf-8", "backslashreplace"), status=status,
                    headers=dict(headers or {}), mimetype="application/json")


# --- who is asking --------------------------------------------------------------------------


@bp.before_request
def _authenticate() -> None:
    """Bearer token if the header is there (a wrong one is 401, never a fall-back to the
    cookie); else the session cookie, with the CSRF token required for writes."""
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            fail(401, "Authorization 请求头须为 “Bearer <令牌>”")
        user = user_for_token(get_db(), token) if len(token) <= TOKEN_MAX else None
        if user is None:
            fail(401, "API 令牌无效或已失效：请在“我的账户”页或通过 POST /api/v1/token 重新获取")
        g.api_user = SiteUser(user)
        return
    if not current_user.is_authenticated:
        fail(401, "请先登录，或在请求头中携带 Authorization: Bearer <令牌>")
    if request.method not in SAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # CSRFError: a JSON 400 through the app's error handler
    g.api_user = current_user._get_current_object()


def viewer() -> SiteUser:
    """The signed-in user as web.permissions expects it (role, organisation, authenticated)."""
    return g.api_user


def actor() -> User:
    """The same user as a database row, for web.records and the audit log."""
    return g.api_user.row


# --- reading the request --------------------------------------------------------------------


# --- checking a body before web.records sees it --------------------------------------------


def commit() -> None:
    """Commit, turning a lost race on a unique constraint into a 409, not a 500."""
    db = get_db()
    try:
        db.commit()
    except IntegrityError:
        fail(409, "与其他同时进行的修改冲突，请重试")


# --- what the API returns --------------------------------------------------------------------


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


# --- tokens ---------------------------------------------------------------------------------


def _usable_credential(value: str, limit: int) -> bool:
    """A value that can be compared at all: surrogates or NUL would make the query or the
    hash check raise, and such a value cannot be anyone's username or password anyway."""
    return 0 < len(value) <= limit and encoding_problem(value) is None


@bp.post("/token")
def issue_token() -> Any:
    """A new API token for a username and password (the old token stops working)."""
    body = json_body()
    errors = {name: "未知字段" for name in body if name not in TOKEN_FIELDS}
    for name in TOKEN_FIELDS:
        if body.get(name) is None:
            errors[name] = "缺少此项，必填"
        elif not isinstance(body[name], str):
            errors[name] = f"类型错误：应为文本，实际为{type_name(body[name])}"
    if errors:
        fail(400, "请求字段有误", errors)
    username, password = body["username"], body["password"]
    db = get_db()
    # The sign-in page's limits (web.ratelimit), counted together with its failures.
    from web import ratelimit

    address = request.remote_addr
    refusal = ratelimit.check(db, username, address,
                              ratelimit.Limits.from_config(current_app.config))
    db.commit()  # a fresh transaction for each write below (see web.auth.login)
    if refusal is not None:
        ratelimit.note_refusal(db, username, address, refusal, via="api")
        db.commit()
        response, status = json_error(429, refusal.message)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response, status
    user = None
    if _usable_credential(username.strip(), USERNAME_MAX) and \
            _usable_credential(password, PASSWORD_MAX):
        user = authenticate(db, username, password)
    db.commit()  # end the read transaction before writing (see web.auth.login)
    if user is None:
        ratelimit.note_failure(db, username, address, via="api")
        db.commit()
        fail(401, "用户名或密码错误")
    ratelimit.note_success(user)
    token = issue_api_token(user)
    record(db, user, "issue_token", "user", user.id, {"via": "api"})
    commit()
    return ok({"token": token, "user": {
        "id": user.id, "username": user.username, "role": user.role,
        "organisation": organisation_json(user.organisation)}})


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


# --- search ---------------------------------------------------------------------------------


@bp.get("/search")
def search() -> Any:
    side = one_arg("side") or "result"
    if side not in ("need", "result"):
        fail(400, "查询参数有误", {"side": "须为 need 或 result"})
    check_args({"q", "side", "k", *FILTER_PARAMS[side], *DATE_ARGS})
    q = one_arg("q")
    if q is None:
        fail(400, "查询参数有误", {"q": "缺少检索词"})
    if len(q) > QUERY_MAX:
        fail(400, "查询参数有误", {"q": f"检索词不超过 {QUERY_MAX} 字"})
    if problem := encoding_problem(q):
        fail(400, "查询参数有误", {"q": problem})
    k = int_arg("k", K_DEFAULT, 1, K_MAX)
    filters = filters_for(side)
    rows = match_rows(get_db(), side, service().search(q, side, k=k, filters=filters))
    return ok({"q": q, "side": side, "k": k, "matches": [row.as_json() for row in rows]})


# --- shortlists -----------------------------------------------------------------------------


def _shortlists_query() -> Any:
    return select(Shortlist).options(
        selectinload(Shortlist.lots).selectinload(ShortlistLot.result)
        .selectinload(Result.organisation))


def _curator() -> None:
    if not permissions.can_curate(viewer()):
        fail(403, "只有科委/G60 官员和管理员可以查看拍卖清单")


@bp.get("/shortlists")
def list_shortlists() -> Any:
    _curator()
    check_args({"page", "per_page"})
    page, per_page = page_args()
    db = get_db()
    total = db.scalar(select(func.count()).select_from(Shortlist)) or 0
    rows = db.scalars(_shortlists_query()
                      .order_by(Shortlist.updated_at.desc(), Shortlist.id.desc())
                      .offset((page - 1) * per_page).limit(per_page))
    return ok(page_json([shortlist_json(s) for s in rows], total, page, per_page))


@bp.get("/shortlists/<shortlist_id>")
def get_shortlist(shortlist_id: str) -> Any:
    _curator()
    check_args(())
    wanted = path_id(shortlist_id, "shortlist_id")
    shortlist = get_db().scalar(_shortlists_query().where(Shortlist.id == wanted))
    if shortlist is None:
        fail(404, "拍卖清单不存在")
    return ok(shortlist_json(shortlist))
