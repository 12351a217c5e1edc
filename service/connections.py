"""对接 requests: start one on a match, answer it, move it through its stages; each change
writes an event (who, when, from, to), an audit entry and notifications for the other side.

The pages and the JSON API both call these, so the rules are the same on both: a field the
user got wrong is a `FieldErrors` (nothing written), a move the user may not make is a
`PermissionError`, a move the request's state does not allow is a `FieldErrors` on the
field that asked for it. The caller commits.

Who the parties are: the requester's organisation (the firm owning the need, or the office
owning the result) and the other one. Both parties' active users are told of every change
the other side makes; officers and admins read every request but change none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corpora.connections import (
    CONTACT_MAX,
    DEAL_FORMS,
    DECLINE_REASONS,
    MESSAGE_MAX,
    NOTE_MAX,
    STAGE_LABELS,
    WANTS,
    ConnectionEvent,
    ConnectionRequest,
    Notification,
    open_key_of,
)
from corpora.models import Need, Result, User, utcnow
from corpora.schema import MONEY_MAX, FieldErrors, encoding_problem
from corpora.sides import MATCHABLE_STATUS
from service.audit import record

Party = Literal["requester", "responder"]
READERS = ("officer", "admin")


class DuplicateRequest(Exception):
    """An open request for this need, result and side exists already (a double-click, or a
    second tab): `existing` is it, when it could be read back."""

    def __init__(self, existing: ConnectionRequest | None) -> None:
        super().__init__("已有进行中的对接请求")
        self.existing = existing


# --- who is who ---------------------------------------------------------------------------


def organisation_of(request: ConnectionRequest, party: Party) -> int:
    """The organisation id of a party: the requester's side owns one of the pair."""
    firm, office = request.need.organisation_id, request.result.organisation_id
    if party == "requester":
        return firm if request.requester_side == "firm" else office
    return office if request.requester_side == "firm" else firm


def party_of(user: Any, request: ConnectionRequest) -> Party | None:
    """Which party `user` belongs to, by role and organisation; None for anyone else."""
    role, org = getattr(user, "role", None), getattr(user, "organisation_id", None)
    if org is None or role not in ("firm", "office"):
        return None
    for party in ("requester", "responder"):
        side = request.requester_side if party == "requester" else \
            ("office" if request.requester_side == "firm" else "firm")
        if role == side and organisation_of(request, party) == org:  # type: ignore[arg-type]
            return party  # type: ignore[return-value]
    return None


def can_read(user: Any, request: ConnectionRequest) -> bool:
    return getattr(user, "role", None) in READERS or party_of(user, request) is not None


def can_see_contacts(user: Any, request: ConnectionRequest) -> bool:
    """Each side's contact is the other's only once the request is accepted."""
    if getattr(user, "role", None) in READERS:
        return True
    return request.status == "accepted" and party_of(user, request) is not None


def visible(user: Any) -> ColumnElement[bool]:
    """The SQL condition for the requests `user` may list (join Need and Result)."""
    role, org = getattr(user, "role", None), getattr(user, "organisation_id", None)
    if role in READERS:
        return true()
    if org is None or role not in ("firm", "office"):
        return false()
    if role == "firm":
        return Need.organisation_id == org
    return Result.organisation_id == org


def sent_by(user: Any) -> ColumnElement[bool]:
    """Requests `user`'s organisation sent (as opposed to received)."""
    role, org = getattr(user, "role", None), getattr(user, "organisation_id", None)
    if role == "firm":
        return (ConnectionRequest.requester_side == "firm") & (Need.organisation_id == org)
    if role == "office":
        return (ConnectionRequest.requester_side == "office") & (Result.organisation_id == org)
    return false()


def start_side(user: Any, need: Need, result: Result) -> str | None:
    """The side `user` would request from on this pair: the need's firm or the result's
    office; None if neither."""
    role, org = getattr(user, "role", None), getattr(user, "organisation_id", None)
    if org is None:
        return None
    if role == "firm" and need.organisation_id == org:
        return "firm"
    if role == "office" and result.organisation_id == org:
        return "office"
    return None


def open_request(session: Session, need_id: int, result_id: int, side: str
                 ) -> ConnectionRequest | None:
    return session.scalar(select(ConnectionRequest).where(
        ConnectionRequest.open_key == open_key_of(need_id, result_id, side)))


# --- input --------------------------------------------------------------------------------


def _text(errors: dict[str, str], name: str, value: Any, limit: int, *,
          required: bool = False, label: str = "") -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[name] = f"请填写{label}"
        return None
    if not isinstance(value, str):
        errors[name] = "须为文本"
        return None
    value = value.strip()
    if len(value) > limit:
        errors[name] = f"不超过 {limit} 字"
    elif problem := encoding_problem(value):
        errors[name] = str(problem)
    return value


def _wants(errors: dict[str, str], value: Any) -> str | None:
    items = value.split(";") if isinstance(value, str) else value
    if items is None:
        return None
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        errors["wants"] = "须为文本列表"
        return None
    chosen = [item.strip() for item in items if item.strip()]
    unknown = [item for item in chosen if item not in WANTS]
    if unknown:
        errors["wants"] = f"可选：{'、'.join(WANTS)}"
        return None
    # In the list's own order, once each.
    return ";".join(want for want in WANTS if want in chosen) or None


def _choice(errors: dict[str, str], name: str, value: Any, choices: Iterable[str],
            label: str) -> str | None:
    choices = tuple(choices)
    if value is None or value == "":
        errors[name] = f"请选择{label}：{'、'.join(choices)}"
        return None
    if not isinstance(value, str) or value.strip() not in choices:
        errors[name] = f"{label}须为：{'、'.join(choices)}"
        return None
    return value.strip()


def _amount(errors: dict[str, str], value: Any) -> float | None:
    if isinstance(value, str):
        text = value.strip()
        digits = text.replace(".", "", 1)
        if digits.isascii() and digits.isdigit() and len(text) <= 20:
            value = float(text)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        errors["deal_amount"] = "请填写成交金额（万元，正数）"
        return None
    if not 0 < value <= MONEY_MAX:
        errors["deal_amount"] = f"成交金额须大于 0、不超过 {MONEY_MAX:,.0f} 万元"
        return None
    return float(value)


def _day(errors: dict[str, str], value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors["signed_on"] = "日期须为 YYYY-MM-DD，例如 2026-12-01"
    return None


# --- writes -------------------------------------------------------------------------------


def _event(session: Session, user: User, request: ConnectionRequest, kind: str,
           from_state: str | None, to_state: str | None, note: str | None = None) -> None:
    session.add(ConnectionEvent(request=request, user_id=user.id, kind=kind,
                                from_state=from_state, to_state=to_state, note=note,
                                at=utcnow()))


def _notify(session: Session, request: ConnectionRequest, party: Party, kind: str,
            text: str) -> int:
    """Tell every active user of `party`'s organisation; how many were told."""
    side = request.requester_side if party == "requester" else \
        ("office" if request.requester_side == "firm" else "firm")
    users = session.scalars(select(User.id).where(
        User.organisation_id == organisation_of(request, party), User.role == side,
        User.is_active.is_(True))).all()
    for user_id in users:
        session.add(Notification(user_id=user_id, kind=kind, request_id=request.id,
                                 need_id=request.need_id, result_id=request.result_id,
                                 text=text[:500]))
    return len(users)


def _title(request: ConnectionRequest) -> str:
    return f"《{request.need.title[:60]}》—《{request.result.title[:60]}》"


def start(session: Session, user: User, need: Need, result: Result,
          raw: Mapping[str, Any]) -> ConnectionRequest:
    """A new pending request from `user`'s side of the pair (message, wants, contact)."""
    side = start_side(user, need, result)
    if side is None:
        raise PermissionError("只有发布该需求的企业或该成果所属单位可以发起对接")
    errors: dict[str, str] = {}
    unknown = {name: "未知字段" for name in raw
               if name not in ("message", "wants", "contact")}
    errors.update(unknown)
    message = _text(errors, "message", raw.get("message"), MESSAGE_MAX, required=True,
                    label="留言")
    wants = _wants(errors, raw.get("wants"))
    contact = _text(errors, "contact", raw.get("contact"), CONTACT_MAX)
    if need.status != MATCHABLE_STATUS["need"]:
        errors["need_id"] = "该需求已关闭，不能发起对接"
    if result.status != MATCHABLE_STATUS["result"]:
        errors["result_id"] = "该成果已撤回，不能发起对接"
    if errors:
        raise FieldErrors(errors)
    if (existing := open_request(session, need.id, result.id, side)) is not None:
        raise DuplicateRequest(existing)
    if contact is None and side == "firm":
        contact = need.contact
    request = ConnectionRequest(
        need=need, result=result, requester_id=user.id, requester_side=side,
        message=message, wants=wants, requester_contact=contact, status="pending",
        open_key=open_key_of(need.id, result.id, side))
    try:
        # A savepoint: the loser of a double-click race meets the winner's open_key here.
        with session.begin_nested():
            session.add(request)
            session.flush()
    except IntegrityError:
        raise DuplicateRequest(open_request(session, need.id, result.id, side)) from None
    _event(session, user, request, "created", None, "pending", message)
    record(session, user, "connection_start", "connection", request.id,
           {"need_id": need.id, "result_id": result.id, "side": side, "wants": wants})
    who = need.organisation.name if side == "firm" else result.organisation.name
    _notify(session, request, "responder", "request",
            f"{who} 发起对接：{_title(request)}")
    return request


def _responder(user: User, request: ConnectionRequest) -> None:
    if party_of(user, request) != "responder":
        raise PermissionError("只有被邀请的一方可以答复对接请求")
    if request.status != "pending":
        raise FieldErrors({"status": f"该请求{request.status_label}，不能再答复"})


def accept(session: Session, user: User, request: ConnectionRequest,
           raw: Mapping[str, Any] | None = None) -> None:
    """The other side accepts: contacts are shown to both, the request is 洽谈中."""
    _responder(user, request)
    raw = raw or {}
    errors: dict[str, str] = {name: "未知字段" for name in raw if name != "contact"}
    contact = _text(errors, "contact", raw.get("contact"), CONTACT_MAX)
    if errors:
        raise FieldErrors(errors)
    if contact is None and request.requester_side == "office":
        contact = request.need.contact
    request.status, request.stage = "accepted", "talking"
    request.answered_by_id, request.answered_at = user.id, utcnow()
    request.responder_contact = contact
    _event(session, user, request, "accepted", "pending", "accepted")
    record(session, user, "connection_accept", "connection", request.id)
    _notify(session, request, "requester", "answer",
            f"对接请求已被接受，可查看对方联系方式：{_title(request)}")
    session.flush()


def decline(session: Session, user: User, request: ConnectionRequest,
            raw: Mapping[str, Any]) -> None:
    """The other side declines, with a reason from the list and an optional note."""
    _responder(user, request)
    errors: dict[str, str] = {name: "未知字段" for name in raw
                              if name not in ("reason", "note")}
    reason = _choice(errors, "reason", raw.get("reason"), DECLINE_REASONS, "婉拒原因")
    note = _text(errors, "note", raw.get("note"), NOTE_MAX)
    if errors:
        raise FieldErrors(errors)
    request.status, request.open_key = "declined", None
    request.decline_reason, request.decline_note = reason, note
    request.answered_by_id, request.answered_at = user.id, utcnow()
    _event(session, user, request, "declined", "pending", "declined",
           reason + (f"：{note}" if note else ""))
    record(session, user, "connection_decline", "connection", request.id,
           {"reason": reason, "note": note})
    _notify(session, request, "requester", "answer",
            f"对接请求被婉拒（{reason}）：{_title(request)}")
    session.flush()


def withdraw(session: Session, user: User, request: ConnectionRequest) -> None:
    """The requester takes back a request not yet answered."""
    if party_of(user, request) != "requester":
        raise PermissionError("只有发起方可以撤回对接请求")
    if request.status != "pending":
        raise FieldErrors({"status": f"该请求{request.status_label}，不能撤回"})
    request.status, request.open_key = "withdrawn", None
    _event(session, user, request, "withdrawn", "pending", "withdrawn")
    record(session, user, "connection_withdraw", "connection", request.id)
    _notify(session, request, "responder", "withdrawn",
            f"对方已撤回对接请求：{_title(request)}")
    session.flush()


def set_stage(session: Session, user: User, request: ConnectionRequest,
              raw: Mapping[str, Any]) -> None:
    """洽谈中 → 已签约 (deal form, amount 万元 > 0, date) or → 未成交 (optional note); a final
    stage is final. Either party may move it."""
    party = party_of(user, request)
    if party is None:
        raise PermissionError("只有对接双方可以更新进展")
    errors: dict[str, str] = {name: "未知字段" for name in raw if name not in
                              ("stage", "deal_form", "deal_amount", "signed_on", "note")}
    stage = _choice(errors, "stage", raw.get("stage"), ("signed", "failed"), "阶段")
    if "stage" in errors:
        errors["stage"] = "阶段须为 signed（已签约）或 failed（未成交）"
    note = _text(errors, "note", raw.get("note"), NOTE_MAX)
    form = amount = signed_on = None
    if stage == "signed":
        form = _choice(errors, "deal_form", raw.get("deal_form"), DEAL_FORMS, "成交方式")
        amount = _amount(errors, raw.get("deal_amount"))
        signed_on = _day(errors, raw.get("signed_on"))
    if request.status != "accepted" or request.stage != "talking":
        errors["stage"] = ("只有已接受的请求可以更新进展" if request.status != "accepted"
                           else f"已是最终阶段（{request.stage_label}），不能再更改")
    if errors:
        raise FieldErrors(errors)
    assert stage is not None
    previous = request.stage
    request.stage, request.open_key = stage, None
    if stage == "signed":
        request.deal_form, request.deal_amount = form, amount
        request.signed_on = signed_on or utcnow().date()
    detail = (f"{form} {amount:g} 万元" if stage == "signed" else "") + \
        (f"；{note}" if note and stage == "signed" else note or "")
    _event(session, user, request, "stage", previous, stage, detail or None)
    record(session, user, "connection_stage", "connection", request.id,
           {"from": previous, "to": stage, "deal_form": form, "deal_amount": amount,
            "note": note})
    other: Party = "responder" if party == "requester" else "requester"
    _notify(session, request, other, "stage",
            f"对接进展更新为“{STAGE_LABELS[stage]}”：{_title(request)}")
    session.flush()


# --- the inbox ----------------------------------------------------------------------------


def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def mark_read(session: Session, user_id: int, notification_id: int | None = None) -> int:
    """Mark one of `user_id`'s notifications read (or all of them); how many changed.
    Another user's notification is, for this user, one that does not exist."""
    condition = [Notification.user_id == user_id, Notification.read_at.is_(None)]
    if notification_id is not None:
        if session.scalar(select(Notification.id).where(
                Notification.id == notification_id, Notification.user_id == user_id)) is None:
            raise LookupError("消息不存在")
        condition.append(Notification.id == notification_id)
    changed = session.execute(update(Notification).where(*condition)
                              .values(read_at=utcnow()).execution_options(
                                  synchronize_session=False))
    return int(changed.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class InboxFilter:
    status: str | None = None
    stage: str | None = None
    direction: str | None = None  # "sent" or "received"


def requests_query(user: Any, wanted: InboxFilter) -> Any:
    query = (select(ConnectionRequest).join(Need, ConnectionRequest.need_id == Need.id)
             .join(Result, ConnectionRequest.result_id == Result.id).where(visible(user)))
    if wanted.status:
        query = query.where(ConnectionRequest.status == wanted.status)
    if wanted.stage:
        query = query.where(ConnectionRequest.stage == wanted.stage)
    if wanted.direction == "sent":
        query = query.where(sent_by(user))
    elif wanted.direction == "received":
        query = query.where(~sent_by(user))
    return query


def counts_by_status(session: Session, user: Any, wanted: InboxFilter) -> dict[str, int]:
    """How many of the listed requests are in each status (the status filter left out, so
    the counts say what each status filter would list)."""
    base = requests_query(user, InboxFilter(None, wanted.stage, wanted.direction))
    grouped = base.with_only_columns(ConnectionRequest.status, func.count()) \
        .group_by(ConnectionRequest.status)
    return {status: count for status, count in session.execute(grouped)}
