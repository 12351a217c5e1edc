"""E-mail notifications: the outbox a worker drains, which notifications each e-mail covers,
and which strong (need, result) pairs users have been told of.

The outbox is the only record of what was sent: a row is claimed (`sending`) before the SMTP
conversation and marked `sent` right after the server accepts it, each in its own
transaction, so two runs never both send one row (service.email_queue). `outbox_items` holds
each notification id once (unique): a notification is e-mailed at most once, whatever the
user's mode was when it came.

Imported at the end of corpora.models, so Base.metadata holds these tables wherever the
models are loaded.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from corpora.models import Base, _in_check, utcnow

EMAIL_MODES = ("immediate", "daily", "none")
EMAIL_MODE_LABELS = {"immediate": "每条消息即时发送", "daily": "每日汇总一封",
                     "none": "不发送邮件"}
OUTBOX_KINDS = ("immediate", "digest")
# pending → sending → sent; a failure returns it to pending until the attempts run out
# (failed); a row left in sending by a crash becomes unknown, never resent on its own.
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "unknown")
EMAIL_MAX = 254  # RFC 5321's longest forward path
SUBJECT_MAX = 200


class OutboxMessage(Base):
    """One e-mail to send to one user."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in_check("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_in_check("status", OUTBOX_STATUSES), name="status"),
        # One digest per user and Beijing day, however many runs race for it.
        UniqueConstraint("user_id", "digest_day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(EMAIL_MAX))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))
    digest_day: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return (f"OutboxMessage(id={self.id!r}, user_id={self.user_id!r}, "
                f"kind={self.kind!r}, status={self.status!r})")


class OutboxItem(Base):
    """A notification an outbox row covers; each notification appears once at most."""

    __tablename__ = "outbox_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(
        ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), unique=True)


class MatchAlert(Base):
    """A strong (need, result) pair whose parties have been told (or that existed when the
    alerts first ran): announced once."""

    __tablename__ = "match_alerts"
    __table_args__ = (UniqueConstraint("need_id", "result_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    result_id: Mapped[int] = mapped_column(
        ForeignKey("results.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchAlertRun(Base):
    """One run of the strong-match alerts: when, and what it found. The first run on a
    database (no row here yet) records the existing pairs silently (service.match_alerts)."""

    __tablename__ = "match_alert_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    notifications: Mapped[int] = mapped_column(Integer, default=0)
    seeded: Mapped[int] = mapped_column(Integer, default=0)
