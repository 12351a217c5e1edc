"""对接 requests' state machine: every allowed and refused move, with its events, audit
entries and notifications."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corpora.connections import ConnectionEvent, ConnectionRequest, Notification
from corpora.db import PlatformSession
from corpora.models import AuditEntry, Need, Organisation, Result, User
from corpora.schema import FieldErrors
from service import connections as conn
from service.accounts import NewUser, create_user

PASSWORD = "Passw0rd-test"


@pytest.fixture
def world(sqlite_engine: Engine) -> Iterator[dict[str, Any]]:
    with PlatformSession(sqlite_engine, expire_on_commit=False) as session:
        yield build(session)


def build(session: Session) -> dict[str, Any]:
    firm = Organisation(name="甲企业", kind="firm")
    other_firm = Organisation(name="乙企业", kind="firm")
    uni = Organisation(name="示例大学", kind="university")
    session.add_all([firm, other_firm, uni])
    session.flush()
    users = {name: create_user(session, NewUser(name, PASSWORD, role, name, org))
             for name, role, org in [("firm", "firm", "甲企业"), ("firm2", "firm", "甲企业"),
                                     ("rival", "firm", "乙企业"),
                                     ("office", "office", "示例大学"),
                                     ("officer", "officer", None)]}
    need = Need(organisation=firm, title="视觉定位需求", description="需要视觉定位算法",
                contact="138 张经理", status="open")
    result = Result(organisation=uni, title="视觉定位方法", abstract="一种视觉定位方法",
                    status="active")
    session.add_all([need, result])
    session.flush()
    return {"session": session, "need": need, "result": result, **users}


def count(session: Session, model: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def started(w: dict[str, Any], **raw: Any) -> ConnectionRequest:
    return conn.start(w["session"], w["firm"], w["need"], w["result"],
                      {"message": "希望洽谈", "wants": ["会面洽谈", "报价"], **raw})


def test_start_writes_event_audit_and_notifies_the_other_side(world: dict[str, Any]) -> None:
    s = world["session"]
    request = started(world)
    assert request.status == "pending" and request.requester_side == "firm"
    assert request.wants == "会面洽谈;报价" and request.requester_contact == "138 张经理"
    assert [e.kind for e in request.events] == ["created"]
    assert count(s, AuditEntry, AuditEntry.action == "connection_start") == 1
    told = s.scalars(select(Notification.user_id)).all()
    assert told == [world["office"].id]  # the other side only, not the firm's own users
    assert conn.unread_count(s, world["office"].id) == 1


def test_a_second_open_request_is_a_duplicate(world: dict[str, Any]) -> None:
    first = started(world)
    with pytest.raises(conn.DuplicateRequest) as dup:
        started(world)
    assert dup.value.existing is first
    # The office may still ask from its own side.
    other = conn.start(world["session"], world["office"], world["need"], world["result"],
                       {"message": "我们也想联系"})
    assert other.requester_side == "office"


def test_the_database_refuses_a_second_open_key(world: dict[str, Any]) -> None:
    """The race the service's own check cannot see: the unique open_key is the guard."""
    s = world["session"]
    first = started(world)
    s.add(ConnectionRequest(need=world["need"], result=world["result"],
                            requester_id=world["firm"].id, requester_side="firm",
                            message="again", status="pending", open_key=first.open_key))
    with pytest.raises(IntegrityError):
        s.flush()


@pytest.mark.parametrize(("who", "error"), [("rival", PermissionError),
                                            ("officer", PermissionError)])
def test_only_the_owners_may_start(world: dict[str, Any], who: str, error: type) -> None:
    with pytest.raises(error):
        conn.start(world["session"], world[who], world["need"], world["result"],
                   {"message": "x"})


@pytest.mark.parametrize(("raw", "field"), [
    ({"message": ""}, "message"), ({"message": "x" * 1001}, "message"),
    ({"wants": ["跳舞"]}, "wants"), ({"wants": 3}, "wants"), ({"contact": "x" * 201}, "contact"),
    ({"message": "a\x00b"}, "message"), ({"colour": "red"}, "colour")])
def test_bad_start_fields_are_named_and_nothing_is_written(world: dict[str, Any],
                                                          raw: dict[str, Any],
                                                          field: str) -> None:
    with pytest.raises(FieldErrors) as bad:
        started(world, **raw)
    assert field in bad.value.errors
    assert count(world["session"], ConnectionRequest) == 0


def test_closed_need_cannot_be_requested(world: dict[str, Any]) -> None:
    world["need"].status = "closed"
    with pytest.raises(FieldErrors) as bad:
        started(world)
    assert "need_id" in bad.value.errors


def test_decline_needs_a_listed_reason_and_frees_the_pair(world: dict[str, Any]) -> None:
    s = world["session"]
    request = started(world)
    for raw, field in [({}, "reason"), ({"reason": "不喜欢"}, "reason"),
                       ({"reason": "价格不合适", "note": "x" * 501}, "note")]:
        with pytest.raises(FieldErrors) as bad:
            conn.decline(s, world["office"], request, raw)
        assert field in bad.value.errors and request.status == "pending"
    with pytest.raises(PermissionError):
        conn.decline(s, world["firm"], request, {"reason": "价格不合适"})
    conn.decline(s, world["office"], request, {"reason": "价格不合适", "note": "报价过低"})
    assert (request.status, request.decline_reason, request.open_key) == \
        ("declined", "价格不合适", None)
    assert request.answered_by_id == world["office"].id and request.answered_at
    # Both of the firm's users hear of it.
    assert {n.user_id for n in s.scalars(select(Notification).where(
        Notification.kind == "answer"))} == {world["firm"].id, world["firm2"].id}
    for move in (lambda: conn.accept(s, world["office"], request),
                 lambda: conn.decline(s, world["office"], request, {"reason": "其他"}),
                 lambda: conn.withdraw(s, world["firm"], request)):
        with pytest.raises(FieldErrors):
            move()
    assert started(world).id != request.id  # asking again is allowed after a decline


def test_accept_then_stages_to_signed(world: dict[str, Any]) -> None:
    s = world["session"]
    request = started(world)
    assert not conn.can_see_contacts(world["firm"], request)
    with pytest.raises(FieldErrors):  # no stage before acceptance
        conn.set_stage(s, world["firm"], request, {"stage": "failed"})
    with pytest.raises(PermissionError):
        conn.accept(s, world["firm"], request)
    conn.accept(s, world["office"], request, {"contact": "021-1234 技转办王老师"})
    assert (request.status, request.stage) == ("accepted", "talking")
    assert conn.can_see_contacts(world["firm"], request)
    assert conn.can_see_contacts(world["office"], request)
    assert not conn.can_see_contacts(world["rival"], request)
    for raw, fields in [({"stage": "signed"}, {"deal_form", "deal_amount"}),
                        ({"stage": "signed", "deal_form": "转让", "deal_amount": 0},
                         {"deal_amount"}),
                        ({"stage": "signed", "deal_form": "出租", "deal_amount": "5"},
                         {"deal_form"}),
                        ({"stage": "talking"}, {"stage"}), ({"stage": "x"}, {"stage"}),
                        ({"stage": "signed", "deal_form": "许可", "deal_amount": 5,
                          "signed_on": "昨天"}, {"signed_on"})]:
        with pytest.raises(FieldErrors) as bad:
            conn.set_stage(s, world["firm"], request, raw)
        assert fields <= set(bad.value.errors), bad.value.errors
        assert request.stage == "talking"
    with pytest.raises(PermissionError):
        conn.set_stage(s, world["rival"], request, {"stage": "failed"})
    conn.set_stage(s, world["office"], request,
                   {"stage": "signed", "deal_form": "许可", "deal_amount": "80.5",
                    "signed_on": "2026-11-30"})
    assert (request.stage, request.deal_form, request.deal_amount, str(request.signed_on)) \
        == ("signed", "许可", 80.5, "2026-11-30")
    with pytest.raises(FieldErrors):  # final
        conn.set_stage(s, world["firm"], request, {"stage": "failed"})
    kinds = [(e.kind, e.from_state, e.to_state, e.user_id) for e in request.events]
    assert kinds == [("created", None, "pending", world["firm"].id),
                     ("accepted", "pending", "accepted", world["office"].id),
                     ("stage", "talking", "signed", world["office"].id)]
    actions = s.scalars(select(AuditEntry.action).where(AuditEntry.entity == "connection")
                        .order_by(AuditEntry.id)).all()
    assert actions == ["connection_start", "connection_accept", "connection_stage"]
    # The stage change told the firm's users (the side that did not make it).
    assert count(s, Notification, Notification.kind == "stage",
                 Notification.user_id == world["firm"].id) == 1
    assert count(s, Notification, Notification.kind == "stage",
                 Notification.user_id == world["office"].id) == 0


def test_failed_takes_an_optional_note(world: dict[str, Any]) -> None:
    s = world["session"]
    request = started(world)
    conn.accept(s, world["office"], request)
    conn.set_stage(s, world["firm"], request, {"stage": "failed", "note": "预算未批"})
    assert request.stage == "failed" and request.events[-1].note == "预算未批"
    assert request.deal_amount is None


def test_withdraw_only_by_the_requester_while_pending(world: dict[str, Any]) -> None:
    s = world["session"]
    request = started(world)
    with pytest.raises(PermissionError):
        conn.withdraw(s, world["office"], request)
    conn.withdraw(s, world["firm2"], request)  # any user of the requesting firm
    assert request.status == "withdrawn" and request.open_key is None
    assert count(s, ConnectionEvent, ConnectionEvent.kind == "withdrawn") == 1


def test_notifications_are_read_only_by_their_owner(world: dict[str, Any]) -> None:
    s = world["session"]
    started(world)
    office = world["office"].id
    mine = s.scalar(select(Notification.id).where(Notification.user_id == office))
    with pytest.raises(LookupError):
        conn.mark_read(s, world["firm"].id, mine)
    assert conn.unread_count(s, office) == 1
    assert conn.mark_read(s, office, mine) == 1
    assert conn.unread_count(s, office) == 0
    assert conn.mark_read(s, office) == 0


def test_inbox_lists_by_party_direction_and_counts(world: dict[str, Any]) -> None:
    s = world["session"]
    first = started(world)
    second = conn.start(s, world["office"], world["need"], world["result"], {"message": "你好"})
    conn.decline(s, world["firm"], second, {"reason": "时机尚早"})
    def listed(user: User, **wanted: Any) -> list[int]:
        query = conn.requests_query(user, conn.InboxFilter(**wanted))
        return sorted(r.id for r in s.scalars(query))
    assert listed(world["firm"]) == sorted([first.id, second.id])
    assert listed(world["firm"], direction="sent") == [first.id]
    assert listed(world["firm"], direction="received") == [second.id]
    assert listed(world["rival"]) == []
    assert listed(world["officer"], status="declined") == [second.id]
    assert conn.counts_by_status(s, world["office"], conn.InboxFilter()) == \
        {"pending": 1, "declined": 1}


def test_the_loser_of_a_double_click_race_gets_the_winner(world: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Two requests at once both find no open request; the second insert meets the first's
    open_key in its savepoint and answers with the first, leaving the session usable."""
    first = started(world)
    real = conn.open_request
    calls: list[int] = []

    def blind_once(*args: Any) -> ConnectionRequest | None:
        calls.append(1)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(conn, "open_request", blind_once)
    with pytest.raises(conn.DuplicateRequest) as dup:
        started(world)
    assert dup.value.existing is first and len(calls) == 2
    assert count(world["session"], ConnectionRequest) == 1
