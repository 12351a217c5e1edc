"""The API's 对接 requests and notifications: the inbox page's operations, with its checks
(`service.connections` decides who may do what; a refused field is a 400 naming it)."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from corpora.connections import (
    STAGE_LABELS,
    STATUS_LABELS,
    ConnectionEvent,
    ConnectionRequest,
    Notification,
)
from corpora.models import Need, Result
from corpora.schema import FieldErrors
from service import connections as conn
from web.api.auth import actor, viewer
from web.api.connection_models import (
    ConnectionAccept,
    ConnectionDecline,
    ConnectionListQuery,
    ConnectionNew,
    ConnectionOut,
    ConnectionPage,
    ConnectionStage,
    NotificationPage,
    NotificationQuery,
    ReadOut,
)
from web.api.contract import checked_body, operation, read_query
from web.api.input import fail, path_id
from web.api.json import organisation_json, page_json, when
from web.api.replies import commit, ok
from web.database import get_db

TAG = "对接"
WRITE_ERRORS = (403, 404, 409, 413)
PARTIES = "对接双方（发布需求的企业、成果所属单位的技术转移办公室）；科委/G60 官员和管理员只读。"


def _load(raw_id: str) -> ConnectionRequest:
    wanted = path_id(raw_id, "connection_id")
    found = get_db().scalar(
        select(ConnectionRequest).where(ConnectionRequest.id == wanted).options(
            selectinload(ConnectionRequest.events).selectinload(ConnectionEvent.user),
            selectinload(ConnectionRequest.need).selectinload(Need.organisation),
            selectinload(ConnectionRequest.result).selectinload(Result.organisation)))
    if found is None:
        fail(404, "对接请求不存在")
    if not conn.can_read(viewer(), found):
        fail(403, "只有对接双方、科委/G60 官员和管理员可以查看此对接请求")
    return found


def connection_json(found: ConnectionRequest, user: Any) -> dict[str, Any]:
    firm_side = found.requester_side == "firm"
    body: dict[str, Any] = {
        "id": found.id,
        "need": {"id": found.need.id, "title": found.need.title,
                 "organisation": organisation_json(found.need.organisation)},
        "result": {"id": found.result.id, "title": found.result.title,
                   "organisation": organisation_json(found.result.organisation)},
        "requester_side": found.requester_side,
        "requester": {"id": found.requester.id, "display_name": found.requester.display_name},
        "message": found.message, "wants": found.want_list, "status": found.status,
        "status_label": STATUS_LABELS[found.status], "answered_at": when(found.answered_at),
        "decline_reason": found.decline_reason, "decline_note": found.decline_note,
        "stage": found.stage, "stage_label": STAGE_LABELS.get(found.stage or "", "—"),
        "deal_form": found.deal_form, "deal_amount": found.deal_amount,
        "signed_on": when(found.signed_on),
    }
    if conn.can_see_contacts(user, found):
        firm = (found.requester_contact if firm_side else found.responder_contact) \
            or found.need.contact
        office = found.responder_contact if firm_side else found.requester_contact
        body["contacts"] = {"firm": firm, "office": office}
    body |= {
        "party": conn.party_of(user, found),
        "created_at": when(found.created_at), "updated_at": when(found.updated_at),
        "events": [{"at": when(e.at), "kind": e.kind, "from_state": e.from_state,
                    "to_state": e.to_state, "note": e.note,
                    "user": {"id": e.user.id, "display_name": e.user.display_name}
                    if e.user else None}
                   for e in found.events],
    }
    return body


def _reloaded(found: ConnectionRequest) -> dict[str, Any]:
    get_db().expire(found)
    return connection_json(_load(str(found.id)), viewer())


@operation("GET", "/connections", tag=TAG, summary="我的对接请求", answer=ConnectionPage,
           query=ConnectionListQuery, description="企业、技术转移办公室：本单位发起和收到的；"
           "科委/G60 官员和管理员：全部。counts 为各状态的条数（不计 status 筛选）。")
def list_connections() -> Any:
    args = read_query()
    user = viewer()
    wanted = conn.InboxFilter(args.status, args.stage, args.direction)
    db = get_db()
    query = conn.requests_query(user, wanted)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.options(
        selectinload(ConnectionRequest.events).selectinload(ConnectionEvent.user),
        selectinload(ConnectionRequest.need).selectinload(Need.organisation),
        selectinload(ConnectionRequest.result).selectinload(Result.organisation))
        .order_by(ConnectionRequest.updated_at.desc(), ConnectionRequest.id.desc())
        .offset((args.page - 1) * args.per_page).limit(args.per_page))
    answer = page_json([connection_json(row, user) for row in rows], total, args.page,
                       args.per_page)
    answer["counts"] = conn.counts_by_status(db, user, wanted)
    return ok(answer)


@operation("GET", "/connections/{connection_id}", tag=TAG, summary="读取一条对接请求",
           answer=ConnectionOut, errors=(403, 404), description=PARTIES)
def get_connection(connection_id: str) -> Any:
    read_query()
    return ok(connection_json(_load(connection_id), viewer()))


@operation("POST", "/connections", tag=TAG, summary="发起对接请求", answer=ConnectionOut,
           status=201, body=ConnectionNew, errors=WRITE_ERRORS,
           headers={"Location": "新请求的地址"},
           description="发布该需求的企业（向成果所属单位）或该成果所属单位的技术转移办公室"
           "（向需求企业）。同一需求、成果与发起方只能有一条进行中的请求：重复发起 409。")
def post_connection() -> Any:
    body = checked_body("字段有误，对接请求未发出")
    db = get_db()
    need, result = db.get(Need, body["need_id"]), db.get(Result, body["result_id"])
    if need is None or result is None:
        fail(404, "需求不存在" if need is None else "成果不存在")
    if conn.start_side(viewer(), need, result) is None:
        fail(403, "只有发布该需求的企业或该成果所属单位可以发起对接")
    raw = {name: body[name] for name in ("message", "wants", "contact") if name in body}
    try:
        made = conn.start(db, actor(), need, result, raw)
    except FieldErrors as bad:
        fail(400, "字段有误，对接请求未发出", bad.errors)
    except conn.DuplicateRequest:
        fail(409, "已有进行中的对接请求，未重复发起")
    commit()
    return ok(_reloaded(made), 201,
              {"Location": url_for("api.get_connection", connection_id=str(made.id))})


def _move(connection_id: str, move: Any, refused: str, has_body: bool = True) -> Any:
    found = _load(connection_id)
    if conn.party_of(viewer(), found) is None:
        fail(403, "只有对接双方可以执行此操作")
    body: dict[str, Any] = {}
    if has_body:
        body = checked_body(refused)
    else:
        read_query()
    try:
        move(get_db(), actor(), found, body)
    except PermissionError as denied:
        fail(403, str(denied))
    except FieldErrors as bad:
        fail(400, refused, bad.errors)
    commit()
    return ok(_reloaded(found))


@operation("POST", "/connections/{connection_id}/accept", tag=TAG, summary="接受对接请求",
           answer=ConnectionOut, body=ConnectionAccept, errors=WRITE_ERRORS,
           description="被邀请的一方，请求待回复时。接受后双方可见彼此联系方式，进入“洽谈中”。")
def accept_connection(connection_id: str) -> Any:
    return _move(connection_id, conn.accept, "未能接受")


@operation("POST", "/connections/{connection_id}/decline", tag=TAG, summary="婉拒对接请求",
           answer=ConnectionOut, body=ConnectionDecline, errors=WRITE_ERRORS,
           description="被邀请的一方，请求待回复时；原因须为列出的之一，发起方可见。")
def decline_connection(connection_id: str) -> Any:
    return _move(connection_id, conn.decline, "未能婉拒")


@operation("POST", "/connections/{connection_id}/withdraw", tag=TAG, summary="撤回对接请求",
           answer=ConnectionOut, errors=(403, 404, 409),
           description="发起方，请求待回复时。")
def withdraw_connection(connection_id: str) -> Any:
    return _move(connection_id, lambda db, user, found, _body: conn.withdraw(db, user, found),
                 "未能撤回", has_body=False)


@operation("POST", "/connections/{connection_id}/stage", tag=TAG, summary="更新对接进展",
           answer=ConnectionOut, body=ConnectionStage, errors=WRITE_ERRORS,
           description="对接双方，请求已接受、处于“洽谈中”时：signed（已签约，须给 deal_form 和"
           "大于 0 的 deal_amount）或 failed（未成交）；最终阶段不能再改。")
def stage_connection(connection_id: str) -> Any:
    return _move(connection_id, conn.set_stage, "进展未更新")


# --- notifications --------------------------------------------------------------------------


def notification_json(note: Notification) -> dict[str, Any]:
    return {"id": note.id, "kind": note.kind, "text": note.text, "request_id": note.request_id,
            "need_id": note.need_id, "result_id": note.result_id,
            "created_at": when(note.created_at), "read_at": when(note.read_at)}


@operation("GET", "/notifications", tag="消息", summary="我的站内消息",
           answer=NotificationPage, query=NotificationQuery,
           description="当前账号的消息，未读在前；unread 为未读总数。")
def list_notifications() -> Any:
    args = read_query()
    user_id = viewer().id
    conditions = [Notification.user_id == user_id]
    if args.unread:
        conditions.append(Notification.read_at.is_(None))
    db = get_db()
    total = db.scalar(select(func.count()).select_from(Notification).where(*conditions)) or 0
    rows = db.scalars(select(Notification).where(*conditions)
                      .order_by(Notification.read_at.is_not(None), Notification.id.desc())
                      .offset((args.page - 1) * args.per_page).limit(args.per_page))
    answer = page_json([notification_json(n) for n in rows], total, args.page, args.per_page)
    answer["unread"] = conn.unread_count(db, user_id)
    return ok(answer)


def _read(notification_id: int | None) -> Any:
    read_query()
    db = get_db()
    user_id = viewer().id
    try:
        marked = conn.mark_read(db, user_id, notification_id)
    except LookupError as missing:
        fail(404, str(missing))
    commit()
    return ok({"marked": marked, "unread": conn.unread_count(db, user_id)})


@operation("POST", "/notifications/{notification_id}/read", tag="消息",
           summary="一条消息标为已读", answer=ReadOut, errors=(404, 409),
           description="只能标自己的消息；别人的消息视为不存在（404）。")
def read_notification(notification_id: str) -> Any:
    return _read(path_id(notification_id, "notification_id"))


@operation("POST", "/notifications/read", tag="消息", summary="全部消息标为已读",
           answer=ReadOut, errors=(409,), description="当前账号的全部未读消息。")
def read_all_notifications() -> Any:
    return _read(None)
