"""E-mail for the in-site notifications, outside any request: notifications become outbox
rows (immediate, or one daily digest), and a run sends the pending rows over SMTP.

`send_notifications` is the whole run (`flask --app web send-notifications`, for cron):
the strong-match alerts, then `enqueue`, then `send_pending`.

The guarantees:

* each notification is e-mailed at most once: `outbox_items.notification_id` is unique, so
  two runs enqueueing the same notification cannot both commit it;
* each outbox row is sent at most once: a run claims a row (pending → sending, one UPDATE
  that only one run can win) and commits before talking to the server, and marks it sent in
  its own transaction right after the server accepts it;
* a failure (server down, 4xx) puts the row back to pending with `attempts` + 1 and the
  error; the next run tries again, until `email_max_attempts` (then failed). A 5xx refusal
  fails it at once: trying again would get the same answer;
* a crash between the server's acceptance and the mark leaves that one row in sending. The
  next run cannot know whether the server got it, so after `SENDING_STALE` it marks the row
  unknown and reports it, and never resends it on its own: a lost e-mail (the notification
  is still in the inbox) is better than a duplicate. An admin may set it back to pending.

Immediate e-mails carry the user's notifications not yet e-mailed, unread and at most
`IMMEDIATE_LOOKBACK` old (choosing e-mail does not mail the backlog), one e-mail per user and
run. The digest goes out at the first run after `email_digest_hour` Beijing time, once per
user and day (unique per user and day), with the notifications not yet e-mailed since the
previous digest (at most `DIGEST_LOOKBACK` back) up to that hour.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from corpora.connections import Notification
from corpora.models import User, utcnow
from corpora.notify import SUBJECT_MAX, OutboxItem, OutboxMessage
from settings import Settings

logger = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8), "北京时间")  # no daylight saving
SITE_NAME = "G60 产学研对接平台"
IMMEDIATE_LOOKBACK = timedelta(days=1)
DIGEST_LOOKBACK = timedelta(days=7)
# A run holds a row in sending for one SMTP conversation (seconds, `SMTP_TIMEOUT` at most);
# a row claimed longer ago than this was left by a run that died.
SENDING_STALE = timedelta(minutes=10)
SMTP_TIMEOUT = 30.0
NOTIFICATIONS_PER_EMAIL = 100
ERROR_MAX = 500

Clock = Callable[[], datetime]


@dataclass
class RunReport:
    alerts: str = ""
    immediate: int = 0  # e-mails enqueued
    digests: int = 0
    sent: int = 0
    retrying: int = 0  # failed this time, pending again
    failed: int = 0  # given up
    unknown: list[int] = field(default_factory=list)  # outbox ids left in sending by a crash

    def summary(self) -> str:
        lines = [self.alerts] if self.alerts else []
        lines.append(f"入队：即时邮件 {self.immediate} 封，每日汇总 {self.digests} 封")
        lines.append(f"发送：成功 {self.sent} 封，待重试 {self.retrying} 封，放弃 {self.failed} 封")
        if self.unknown:
            lines.append(f"状态未知（上次发送中断，不自动重发，请核实）：outbox "
                         f"{', '.join(map(str, self.unknown))}")
        return "\n".join(lines)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def digest_cutoff(settings: Settings, now: datetime) -> tuple[date, datetime] | None:
    """Today's Beijing date and the digest hour's moment, once that hour has come."""
    local = _aware(now).astimezone(BEIJING)
    if local.hour < settings.email_digest_hour:
        return None
    cutoff = datetime(local.year, local.month, local.day, settings.email_digest_hour,
                      tzinfo=BEIJING)
    return local.date(), cutoff.astimezone(UTC)


# --- enqueueing ---------------------------------------------------------------------------


def _not_emailed(user_id: int):  # noqa: ANN202 - a select of Notification
    emailed = select(OutboxItem.notification_id).where(
        OutboxItem.notification_id == Notification.id)
    return select(Notification).where(Notification.user_id == user_id,
                                      ~emailed.exists()).order_by(Notification.id)


def _recipients(session: Session, mode: str) -> Sequence[User]:
    return session.scalars(select(User).where(
        User.email_mode == mode, User.email.is_not(None), User.email != "",
        User.is_active.is_(True)).order_by(User.id)).all()


def _link(settings: Settings, path: str) -> str:
    return f"{settings.base_url}{path}" if settings.base_url else ""


def _body(settings: Settings, user: User, intro: str,
          notifications: Sequence[Notification]) -> str:
    lines = [f"{user.display_name}，您好：", "", intro, ""]
    for note in notifications[:NOTIFICATIONS_PER_EMAIL]:
        at = _aware(note.created_at).astimezone(BEIJING).strftime("%m-%d %H:%M")
        lines.append(f"· [{at}] {note.text}")
    if len(notifications) > NOTIFICATIONS_PER_EMAIL:
        lines.append(f"……另有 {len(notifications) - NOTIFICATIONS_PER_EMAIL} 条，请到站内查看")
    lines.append("")
    inbox = _link(settings, "/inbox")
    if inbox:
        lines.append(f"查看全部消息：{inbox}")
    prefs = _link(settings, "/account/notifications")
    lines.append(f"修改或关闭邮件通知：{prefs}" if prefs
                 else "如需修改或关闭邮件通知，请登录平台，在“邮件通知”页设置。")
    lines.extend(["", f"—— {SITE_NAME}（此邮件由系统发送，请勿直接回复）"])
    return "\n".join(lines)


def _message_id(settings: Settings) -> str:
    domain = settings.smtp_sender.rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain)


def _enqueue_one(session: Session, settings: Settings, user: User, kind: str, subject: str,
                 body: str, notifications: Sequence[Notification],
                 digest_day: date | None = None) -> bool:
    """One outbox row and the notifications it covers, or nothing if another run covered
    any of them (or the day's digest) first; commits."""
    try:
        with session.begin_nested():
            row = OutboxMessage(user_id=user.id, address=user.email or "",
                                subject=subject[:SUBJECT_MAX], body=body, kind=kind,
                                digest_day=digest_day, status="pending", attempts=0,
                                message_id=_message_id(settings), created_at=utcnow())
            session.add(row)
            session.flush()
            session.add_all(OutboxItem(outbox_id=row.id, notification_id=note.id)
                            for note in notifications)
            session.flush()
    except IntegrityError:
        session.commit()
        return False
    session.commit()
    return True


def enqueue_immediate(session: Session, settings: Settings, now: datetime) -> int:
    count = 0
    for user in _recipients(session, "immediate"):
        notes = session.scalars(_not_emailed(user.id).where(
            Notification.read_at.is_(None),
            Notification.created_at >= now - IMMEDIATE_LOOKBACK)).all()
        if not notes:
            continue
        subject = notes[0].text if len(notes) == 1 else f"您有 {len(notes)} 条新消息"
        body = _body(settings, user, f"您在{SITE_NAME}有 {len(notes)} 条新消息：", notes)
        count += _enqueue_one(session, settings, user, "immediate",
                              f"【{SITE_NAME}】{subject}", body, notes)
    return count


def enqueue_digests(session: Session, settings: Settings, now: datetime) -> int:
    due = digest_cutoff(settings, now)
    if due is None:
        return 0
    day, cutoff = due
    count = 0
    for user in _recipients(session, "daily"):
        last_day = session.scalar(select(func.max(OutboxMessage.digest_day)).where(
            OutboxMessage.user_id == user.id))
        if last_day is not None and last_day >= day:
            continue  # today's is queued (or sent) already
        since = cutoff - DIGEST_LOOKBACK
        if last_day is not None:
            since = max(since, cutoff - (day - last_day))
        notes = session.scalars(_not_emailed(user.id).where(
            Notification.created_at >= since, Notification.created_at < cutoff)).all()
        if not notes:
            continue
        body = _body(settings, user, f"以下是您在{SITE_NAME}的 {len(notes)} 条消息"
                     f"（截至 {day:%m月%d日} {settings.email_digest_hour}:00）：", notes)
        count += _enqueue_one(session, settings, user, "digest",
                              f"【{SITE_NAME}】每日消息汇总：{len(notes)} 条", body, notes,
                              digest_day=day)
    return count


# --- sending ------------------------------------------------------------------------------


def build_message(settings: Settings, row: OutboxMessage) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = row.subject
    message["From"] = formataddr((SITE_NAME, settings.smtp_sender))
    message["To"] = row.address
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(_aware(row.created_at))
    message.set_content(row.body, charset="utf-8")
    return message


def _connect(settings: Settings) -> smtplib.SMTP:
    host, port = settings.smtp_host, settings.smtp_port_or_default
    if settings.smtp_tls == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT,
                                context=ssl.create_default_context())
    client = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
    if settings.smtp_tls == "starttls":
        client.starttls(context=ssl.create_default_context())
    return client


def deliver(settings: Settings, message: EmailMessage) -> None:
    """Hand one message to the configured server; raises on any refusal."""
    with _connect(settings) as client:
        if settings.smtp_user:
            client.login(settings.smtp_user, settings.smtp_password)
        client.send_message(message)


def _permanent(error: Exception) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    code = getattr(error, "smtp_code", None)
    return isinstance(code, int) and code >= 500


def mark_stale(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    """Rows a dead run left in sending: unknown (see the module), their ids."""
    with sessions() as session:
        stale = session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.status == "sending",
            OutboxMessage.claimed_at < now - SENDING_STALE)).all()
        if stale:
            session.execute(update(OutboxMessage).where(
                OutboxMessage.id.in_(stale), OutboxMessage.status == "sending").values(
                status="unknown", last_error="发送中断：无法确定服务器是否已收到，未重发"))
            session.commit()
            logger.warning("outbox rows left in sending, marked unknown: %s", stale)
        return list(stale)


def _claim(sessions: sessionmaker[Session], row_id: int, now: datetime) -> bool:
    with sessions() as session:
        claimed = session.execute(update(OutboxMessage).where(
            OutboxMessage.id == row_id, OutboxMessage.status == "pending").values(
            status="sending", claimed_at=now, attempts=OutboxMessage.attempts + 1))
        session.commit()
        return claimed.rowcount == 1


def send_pending(sessions: sessionmaker[Session], settings: Settings, report: RunReport,
                 *, clock: Clock = utcnow,
                 send: Callable[[Settings, EmailMessage], None] = deliver) -> None:
    with sessions() as session:
        ids = session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.status == "pending").order_by(OutboxMessage.id)).all()
    for row_id in ids:
        if not _claim(sessions, row_id, clock()):
            continue  # another run has it
        with sessions() as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None  # claimed: nobody deletes a row in sending
            message = build_message(settings, row)
            attempts = row.attempts
        try:
            send(settings, message)
        except (smtplib.SMTPException, OSError) as error:
            gone = _permanent(error) or attempts >= settings.email_max_attempts
            with sessions() as session:
                session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                    status="failed" if gone else "pending",
                    last_error=f"{type(error).__name__}: {error}"[:ERROR_MAX]))
                session.commit()
            if gone:
                report.failed += 1
            else:
                report.retrying += 1
            logger.warning("sending outbox row %s failed (attempt %s): %s", row_id,
                           attempts, error)
            continue
        with sessions() as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                status="sent", sent_at=clock(), last_error=None))
            session.commit()
        report.sent += 1


def send_notifications(sessions: sessionmaker[Session], settings: Settings,
                       alerts: Callable[[Session], str] | None = None, *,
                       clock: Clock = utcnow,
                       send: Callable[[Settings, EmailMessage], None] = deliver) -> RunReport:
    """One run: the strong-match alerts (`alerts`, given the session, returns its summary),
    then, if e-mail is on, the immediate e-mails and digests and the sending."""
    report = RunReport()
    if alerts is not None:
        with sessions() as session:
            report.alerts = alerts(session)
    if not settings.email_enabled:
        report.alerts = "\n".join(filter(None, [report.alerts, "未设置 SMTP_HOST：不发送邮件"]))
        return report
    now = clock()
    with sessions() as session:
        report.immediate = enqueue_immediate(session, settings, now)
        report.digests = enqueue_digests(session, settings, now)
    report.unknown = mark_stale(sessions, now)
    send_pending(sessions, settings, report, clock=clock, send=send)
    return report
