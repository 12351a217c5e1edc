"""对接: a firm's or an office's request to the other side of a match, its answer and its
pipeline (洽谈中 → 已签约 / 未成交), who changed what and when, and the in-site inbox.

Structural values (status, stage, the requester's side) are ASCII codes under CHECK
constraints, shown in Chinese by the labels below; the vocabularies a user picks from (what a
request wants, a decline's reason, a deal's form) are stored as their Chinese labels, plain
strings, so that adding one needs no migration (as corpora.models does for industries).

Imported at the end of corpora.models, so Base.metadata holds these tables wherever the
models are loaded (Alembic's env, the dump, the tests).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from corpora.models import Base, Need, Result, TimestampMixin, User, _in_check, utcnow

SIDES = ("firm", "office")
STATUSES = ("pending", "accepted", "declined", "withdrawn")
STAGES = ("talking", "signed", "failed")
FINAL_STAGES = ("signed", "failed")
STATUS_LABELS = {"pending": "待回复", "accepted": "已接受", "declined": "已婉拒",
                 "withdrawn": "已撤回"}
STAGE_LABELS = {"talking": "洽谈中", "signed": "已签约", "failed": "未成交"}
WANTS = ("会面洽谈", "索取样品", "许可条款", "技术资料", "报价", "其他")
DECLINE_REASONS = ("时机尚早", "价格不合适", "知识产权不清晰", "非本领域", "已有合作方", "其他")
DEAL_FORMS = ("转让", "许可", "合作开发", "作价入股", "其他")
MESSAGE_MAX = 1000
NOTE_MAX = 500
CONTACT_MAX = 200


class ConnectionRequest(TimestampMixin, Base):
    """One 对接 request on a (need, result) pair, started by the firm owning the need or by
    the office owning the result, and answered by the other organisation."""

    __tablename__ = "connection_requests"
    __table_args__ = (
        CheckConstraint(_in_check("requester_side", SIDES), name="requester_side"),
        CheckConstraint(_in_check("status", STATUSES), name="status"),
        CheckConstraint(_in_check("stage", STAGES), name="stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("results.id", ondelete="CASCADE"), index=True)
    requester_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    requester_side: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(String(MESSAGE_MAX))
    wants: Mapped[str | None] = mapped_column(String(200))  # WANTS, joined by ";"
    requester_contact: Mapped[str | None] = mapped_column(String(CONTACT_MAX))
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    answered_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responder_contact: Mapped[str | None] = mapped_column(String(CONTACT_MAX))
    decline_reason: Mapped[str | None] = mapped_column(String(20))
    decline_note: Mapped[str | None] = mapped_column(String(NOTE_MAX))
    stage: Mapped[str | None] = mapped_column(String(10))
    deal_form: Mapped[str | None] = mapped_column(String(20))
    deal_amount: Mapped[float | None] = mapped_column(Float)  # 万元
    signed_on: Mapped[date | None] = mapped_column(Date)
    # "need:result:side" while the request is open (pending, or accepted and not yet in a
    # final stage), NULL after: one open request per pair and side, enforced by the database
    # (NULLs never collide), so a double-click cannot make two.
    open_key: Mapped[str | None] = mapped_column(String(40), unique=True)

    need: Mapped[Need] = relationship()
    result: Mapped[Result] = relationship()
    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    answered_by: Mapped[User | None] = relationship(foreign_keys=[answered_by_id])
    events: Mapped[list[ConnectionEvent]] = relationship(
        back_populates="request", order_by="ConnectionEvent.id",
        cascade="all, delete-orphan")

    @property
    def want_list(self) -> list[str]:
        return [part for part in (self.wants or "").split(";") if part]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS.get(self.stage or "", "—")

    def __repr__(self) -> str:
        return (f"ConnectionRequest(id={self.id!r}, need_id={self.need_id!r}, "
                f"result_id={self.result_id!r}, status={self.status!r})")


def open_key_of(need_id: int, result_id: int, side: str) -> str:
    return f"{need_id}:{result_id}:{side}"


class ConnectionEvent(Base):
    """One change of a request: created, accepted, declined, withdrawn, a stage moved."""

    __tablename__ = "connection_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("connection_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(MESSAGE_MAX))

    request: Mapped[ConnectionRequest] = relationship(back_populates="events")
    user: Mapped[User | None] = relationship()


class Notification(Base):
    """An in-site message to one user; unread until `read_at` is set."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("connection_requests.id", ondelete="CASCADE"), index=True)
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    result_id: Mapped[int | None] = mapped_column(
        ForeignKey("results.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    request: Mapped[ConnectionRequest | None] = relationship()


# The top bar counts a user's unread messages on every page.
Index("ix_notifications_user_id_read_at", Notification.user_id, Notification.read_at)
