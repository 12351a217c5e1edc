"""E-mail notifications against a real SMTP server (aiosmtpd, started by each test): who gets
what (immediate, daily digest, none), nothing twice across runs, retries after a refusal or a
closed port, two concurrent runs; and the strong-match alerts that feed them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from corpora.connections import Notification
from corpora.db import make_sessionmaker
from corpora.models import Need, Organisation, Result, User
from corpora.notify import OutboxItem, OutboxMessage
from embeddings.fake import FakeEncoder
from matcher.indexing import IndexStore
from service import match_alerts
from service.email_queue import (
    BEIJING,
    RunReport,
    deliver,
    enqueue_immediate,
    send_notifications,
    send_pending,
)
from service.matching import MatchService
from settings import Settings

SENDER = "noreply@g60.example"
# 07:30 Beijing: before the digest hour (08:00)
MORNING = datetime(2026, 12, 2, 7, 30, tzinfo=BEIJING).astimezone(UTC)


class Mailbox:
    """An aiosmtpd handler keeping what it accepts; `refuse` answers that many DATA with 451."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 请稍后再试"
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def settings_for(port: int, **extra: Any) -> Settings:
    return Settings().with_overrides({
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_TLS": "none",
        "SMTP_SENDER": SENDER, "MATCHER_BASE_URL": "https://g60.example/", **extra})


@pytest.fixture
def sessions(sqlite_engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(sqlite_engine)


def add_user(sessions: sessionmaker[Session], username: str, email: str | None, mode: str,
             organisation: Organisation | None = None, role: str = "officer") -> int:
    with sessions() as session:
        user = User(username=username, display_name=f"{username}经理", password_hash="x",
                    role=role, organisation_id=organisation.id if organisation else None,
                    email=email, email_mode=mode)
        session.add(user)
        session.commit()
        return user.id


def notify(sessions: sessionmaker[Session], user_id: int, text: str, at: datetime) -> int:
    with sessions() as session:
        note = Notification(user_id=user_id, kind="request", text=text, created_at=at)
        session.add(note)
        session.commit()
        return note.id


def run(sessions: sessionmaker[Session], settings: Settings, at: datetime,
        **kwargs: Any) -> RunReport:
    return send_notifications(sessions, settings, clock=lambda: at, **kwargs)


def outbox(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_immediate_digest_and_none(sessions: sessionmaker[Session],
                                   mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    settings = settings_for(port)
    now_user = add_user(sessions, "zhang", "zhang@firm.example", "immediate")
    daily_user = add_user(sessions, "li", "li@uni.example", "daily")
    quiet = add_user(sessions, "wang", "wang@firm.example", "none")
    no_address = add_user(sessions, "zhao", None, "immediate")
    for user in (now_user, daily_user, quiet, no_address):
        notify(sessions, user, "示例大学回复了您的对接请求：已接受", MORNING - timedelta(hours=2))
    notify(sessions, daily_user,
           "新需求「抗体药物稳定性改进」与您的成果「抗体制剂稳定配方」较强匹配",
           MORNING - timedelta(hours=1))

    first = run(sessions, settings, MORNING)
    assert (first.immediate, first.digests, first.sent) == (1, 0, 1)
    [mail] = box.messages
    assert mail["To"] == "zhang@firm.example"
    assert mail["Subject"] == "【G60 产学研对接平台】示例大学回复了您的对接请求：已接受"
    assert SENDER in mail["From"]
    body = mail.get_content()
    assert "zhang经理，您好" in body and "示例大学回复了您的对接请求：已接受" in body
    assert "https://g60.example/inbox" in body
    assert "https://g60.example/account/notifications" in body
    assert mail["Message-ID"] == outbox(sessions)[0].message_id

    # Again the same morning: nothing new to anyone.
    again = run(sessions, settings, MORNING + timedelta(minutes=5))
    assert (again.immediate, again.digests, again.sent) == (0, 0, 0)
    assert len(box.messages) == 1

    # After 08:00 Beijing the daily user's digest, with both of the day's messages, once.
    after_eight = MORNING + timedelta(minutes=40)
    digest = run(sessions, settings, after_eight)
    assert (digest.immediate, digest.digests, digest.sent) == (0, 1, 1)
    mail = box.messages[-1]
    assert mail["To"] == "li@uni.example"
    assert mail["Subject"] == "【G60 产学研对接平台】每日消息汇总：2 条"
    body = mail.get_content()
    assert "已接受" in body and "较强匹配" in body and "12月02日 8:00" in body
    assert run(sessions, settings, after_eight + timedelta(hours=1)).digests == 0
    # A message after today's digest waits for tomorrow's.
    notify(sessions, daily_user, "对接请求进入“已签约”阶段", after_eight + timedelta(hours=2))
    assert run(sessions, settings, after_eight + timedelta(hours=3)).digests == 0
    tomorrow = run(sessions, settings, after_eight + timedelta(days=1))
    assert (tomorrow.digests, tomorrow.sent) == (1, 1)
    assert "已签约" in box.messages[-1].get_content()
    assert "已接受" not in box.messages[-1].get_content()

    assert len(box.messages) == 3
    assert [m["To"] for m in box.messages].count("wang@firm.example") == 0
    with sessions() as session:  # each notification covered once at most
        covered = session.scalars(select(OutboxItem.notification_id)).all()
        assert len(covered) == len(set(covered)) == 4


def test_old_and_read_messages_are_not_mailed(sessions: sessionmaker[Session],
                                              mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    user = add_user(sessions, "zhang", "zhang@firm.example", "immediate")
    notify(sessions, user, "上周的消息", MORNING - timedelta(days=7))
    read = notify(sessions, user, "已读的消息", MORNING - timedelta(minutes=5))
    with sessions() as session:
        session.get(Notification, read).read_at = MORNING  # type: ignore[union-attr]
        session.commit()
    report = run(sessions, settings_for(port), MORNING)
    assert (report.immediate, report.sent) == (0, 0) and box.messages == []


def test_a_refusal_is_retried_and_sent_once(sessions: sessionmaker[Session],
                                            mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    settings = settings_for(port)
    user = add_user(sessions, "zhang", "zhang@firm.example", "immediate")
    notify(sessions, user, "新的对接请求", MORNING - timedelta(minutes=1))
    box.refuse = 1
    refused = run(sessions, settings, MORNING)
    assert (refused.sent, refused.retrying) == (0, 1) and box.messages == []
    [row] = outbox(sessions)
    assert (row.status, row.attempts) == ("pending", 1) and "451" in (row.last_error or "")
    later = run(sessions, settings, MORNING + timedelta(minutes=5))
    assert later.sent == 1 and later.immediate == 0
    [row] = outbox(sessions)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert run(sessions, settings, MORNING + timedelta(minutes=10)).sent == 0
    assert len(box.messages) == 1 and box.messages[0]["Message-ID"] == row.message_id


def test_a_closed_port_keeps_the_row_until_the_limit(sessions: sessionmaker[Session],
                                                     mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    closed = settings_for(free_port(), EMAIL_MAX_ATTEMPTS="2")
    user = add_user(sessions, "zhang", "zhang@firm.example", "immediate")
    notify(sessions, user, "新的对接请求", MORNING - timedelta(minutes=1))
    assert run(sessions, closed, MORNING).retrying == 1
    [row] = outbox(sessions)
    assert (row.status, row.attempts) == ("pending", 1)
    # The server is back: sent once.
    assert run(sessions, settings_for(port), MORNING).sent == 1
    assert len(box.messages) == 1
    # Another message, and the server down for good: given up after two attempts.
    notify(sessions, user, "对方答复了您的请求", MORNING)
    assert run(sessions, closed, MORNING).retrying == 1
    assert run(sessions, closed, MORNING).failed == 1
    assert outbox(sessions)[-1].status == "failed"
    assert run(sessions, settings_for(port), MORNING).sent == 0
    assert len(box.messages) == 1


def test_a_row_left_sending_is_not_resent(sessions: sessionmaker[Session],
                                          mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    settings = settings_for(port)
    user = add_user(sessions, "zhang", "zhang@firm.example", "immediate")
    notify(sessions, user, "新的对接请求", MORNING - timedelta(minutes=1))

    def crash(_settings: Settings, _message: EmailMessage) -> None:
        raise KeyboardInterrupt  # the process dies between the claim and the mark

    with pytest.raises(KeyboardInterrupt):
        run(sessions, settings, MORNING, send=crash)
    assert outbox(sessions)[0].status == "sending"
    # A run soon after leaves it alone (it may still be in flight); a later one marks it.
    assert run(sessions, settings, MORNING + timedelta(minutes=1)).unknown == []
    later = run(sessions, settings, MORNING + timedelta(hours=1))
    assert later.unknown == [outbox(sessions)[0].id] and later.sent == 0
    assert outbox(sessions)[0].status == "unknown" and box.messages == []
    assert "状态未知" in later.summary()


def test_two_concurrent_runs_send_each_message_once(sessions: sessionmaker[Session],
                                                    mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    settings = settings_for(port)
    for n in range(12):
        user = add_user(sessions, f"user{n}", f"user{n}@firm.example", "immediate")
        notify(sessions, user, f"第 {n} 条消息", MORNING - timedelta(minutes=1))
    reports: list[RunReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait()
            reports.append(run(sessions, settings, MORNING))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.immediate for r in reports) == 12 and sum(r.sent for r in reports) == 12
    received = sorted(m["To"] for m in box.messages)
    assert received == sorted(f"user{n}@firm.example" for n in range(12))
    assert len({m["Message-ID"] for m in box.messages}) == 12
    assert {row.status for row in outbox(sessions)} == {"sent"}


def test_claimed_rows_are_skipped_by_a_second_sender(sessions: sessionmaker[Session],
                                                     mailbox: tuple[Mailbox, int]) -> None:
    """The second run starts while the first is inside the SMTP conversation."""
    box, port = mailbox
    settings = settings_for(port)
    user = add_user(sessions, "zhang", "zhang@firm.example", "immediate")
    notify(sessions, user, "新的对接请求", MORNING - timedelta(minutes=1))
    with sessions() as session:
        assert enqueue_immediate(session, settings, MORNING) == 1
    inner = RunReport()

    def send_while_another_runs(s: Settings, message: EmailMessage) -> None:
        send_pending(sessions, s, inner)  # sees the row in sending: sends nothing
        deliver(s, message)

    outer = RunReport()
    send_pending(sessions, settings, outer, send=send_while_another_runs)
    assert (outer.sent, inner.sent) == (1, 0) and len(box.messages) == 1


def test_e_mail_is_off_without_a_server(sessions: sessionmaker[Session]) -> None:
    user = add_user(sessions, "zhang", "zhang@firm.example", "immediate")
    notify(sessions, user, "新的对接请求", MORNING)
    report = run(sessions, Settings(), MORNING)
    assert "SMTP_HOST" in report.summary() and outbox(sessions) == []


# --- strong-match alerts ------------------------------------------------------------------

ROBOT = ("工业机器人视觉抓取精度提升",
         "我司焊装线上的工业机器人需要基于视觉的无序抓取，目前定位误差2毫米，希望引入深度学习"
         "视觉定位算法，将抓取误差降到0.5毫米以内。")
ANTIBODY = ("抗体药物稳定性改进",
            "单克隆抗体制剂在储存中出现聚集，希望获得提高抗体制剂稳定性的配方技术。")


@pytest.fixture
def engine_site(sessions: sessionmaker[Session], tmp_path: Path
                ) -> tuple[MatchService, dict[str, Any]]:
    ids: dict[str, Any] = {}
    with sessions() as session:
        firm = Organisation(name="甲公司", kind="firm", is_sample=True)
        university = Organisation(name="示例大学", kind="university", is_sample=True)
        session.add_all([firm, university])
        session.flush()
        ids["firm"], ids["university"] = firm.id, university.id
        for title, text in (ROBOT, ANTIBODY):
            need = Need(organisation=firm, title=title, description=text,
                        industry="智能制造", status="open")
            session.add(need)
            session.flush()
            ids[title] = need.id
        # Strong for the robot need already before the alerts first run.
        copy = Result(organisation=university, title="机器人视觉抓取定位", abstract=ROBOT[1],
                      industry="智能制造", status="active")
        other = Result(organisation=university, title="锂电池正极材料包覆工艺",
                       abstract="一种高镍三元正极材料的包覆改性工艺，提高循环稳定性。",
                       industry="新能源汽车", status="active")
        session.add_all([copy, other])
        session.commit()
        ids["copy"] = copy.id
    for name, role, org in (("firm_user", "firm", "firm"), ("office_user", "office",
                                                             "university")):
        with sessions() as session:
            organisation = session.get(Organisation, ids[org])
        ids[name] = add_user(sessions, name, None, "immediate", organisation, role)
    svc = MatchService(IndexStore(tmp_path / "home", FakeEncoder()), sessions,
                       coverage_max_age=0)
    svc.sync()
    return svc, ids


def alerts_of(sessions: sessionmaker[Session]) -> list[Notification]:
    with sessions() as session:
        return list(session.scalars(select(Notification).where(
            Notification.kind == match_alerts.KIND).order_by(Notification.user_id)))


def test_a_new_strong_result_is_announced_once(
        sessions: sessionmaker[Session], engine_site: tuple[MatchService, dict[str, Any]]
) -> None:
    svc, ids = engine_site
    with sessions() as session:
        first = match_alerts.run_alerts(session, svc)
    # The first run records the pair that was strong already, telling nobody.
    assert (first.seeded, first.notifications) == (1, 0) and alerts_of(sessions) == []
    with sessions() as session:
        assert match_alerts.run_alerts(session, svc).notifications == 0

    with sessions() as session:
        result = Result(organisation_id=ids["university"], title="抗体制剂稳定配方",
                        abstract=ANTIBODY[1], industry="生物医药", status="active")
        session.add(result)
        session.commit()
        svc.changed(session, "result", [result.id])
        report = match_alerts.run_alerts(session, svc)
    assert (report.pairs, report.notifications) == (1, 2)
    firm_note, office_note = alerts_of(sessions)
    assert firm_note.user_id == ids["firm_user"] and office_note.user_id == ids["office_user"]
    assert (firm_note.need_id, firm_note.result_id) == (ids[ANTIBODY[0]], result.id)
    assert firm_note.text.startswith("新成果「抗体制剂稳定配方」与您的需求「抗体药物稳定性改进」")
    assert firm_note.text.endswith(("强匹配", "较强匹配"))
    assert office_note.text.startswith("新需求「抗体药物稳定性改进」与您的成果「抗体制剂稳定配方」")

    with sessions() as session:  # one run later: nothing new
        again = match_alerts.run_alerts(session, svc)
    assert (again.pairs, again.notifications) == (0, 0) and len(alerts_of(sessions)) == 2


def test_the_command_runs_alerts_then_mails_them(
        sessions: sessionmaker[Session], engine_site: tuple[MatchService, dict[str, Any]],
        mailbox: tuple[Mailbox, int]) -> None:
    svc, ids = engine_site
    box, port = mailbox
    with sessions() as session:
        session.get(User, ids["firm_user"]).email = "firm@firm.example"  # type: ignore[union-attr]
        session.commit()

    def alerts(session: Session) -> str:
        return match_alerts.run_alerts(session, svc).summary()

    now = datetime.now(UTC)
    assert "首次运行" in send_notifications(sessions, settings_for(port), alerts,
                                          clock=lambda: now).alerts
    with sessions() as session:
        result = Result(organisation_id=ids["university"], title="抗体制剂稳定配方",
                        abstract=ANTIBODY[1], industry="生物医药", status="active")
        session.add(result)
        session.commit()
        svc.changed(session, "result", [result.id])
    report = send_notifications(sessions, settings_for(port), alerts, clock=lambda: now)
    assert report.sent == 1
    [mail] = box.messages
    assert mail["To"] == "firm@firm.example" and "抗体制剂稳定配方" in mail["Subject"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
