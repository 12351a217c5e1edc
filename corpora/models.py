"""The database schema: organisations, firms' needs and research results.

The database is the source of truth; every index is derived from it. Schema changes go through
Alembic (`migrations/`): a new model or column here needs a new revision there. Enumerations
that the importer validates (industry, cooperation mode, result type, maturity...) are plain
strings in the database so that adding a value needs no migration; only the small,
structural ones (organisation kind, need and result status) are CHECK constraints.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from matcher.types import Item, Side

ORGANISATION_KINDS = ("firm", "university", "institute")
NEED_STATUSES = ("open", "closed")
RESULT_STATUSES = ("active", "withdrawn")

# Deterministic constraint names, identical on SQLite and PostgreSQL, so later migrations
# can drop or alter a constraint by name on both.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Every id column is a 32-bit INTEGER (SQLite holds more, PostgreSQL does not): a larger
# number can name no row, and handing it to PostgreSQL is an error, not a miss.
ID_MAX = 2**31 - 1
_ID_DIGITS = len(str(ID_MAX))


def as_id(value: object) -> int | None:
    """`value` as a database id (an int, or a string of ASCII digits, in 1..ID_MAX), else
    None. Booleans, "²", "١٢" and 30-digit numbers are not ids."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > _ID_DIGITS:
            return None
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= ID_MAX else None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _in_check(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Organisation(TimestampMixin, Base):
    """A firm posting needs, or a university / institute listing results."""

    __tablename__ = "organisations"
    __table_args__ = (CheckConstraint(_in_check("kind", ORGANISATION_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(20))  # one of industries.G60_CITIES
    tier: Mapped[str | None] = mapped_column(String(50))  # 高新技术企业 / 科技小巨人 / 专精特新 ...
    # Demo data: shown as such, never passed off as a real organisation's.
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)

    needs: Mapped[list[Need]] = relationship(back_populates="organisation")
    results: Mapped[list[Result]] = relationship(back_populates="organisation")

    def __repr__(self) -> str:
        return f"Organisation(id={self.id!r}, name={self.name!r}, kind={self.kind!r})"


class Need(TimestampMixin, Base):
    """A firm's technology need (技术需求)."""

    __tablename__ = "needs"
    __table_args__ = (
        CheckConstraint(_in_check("status", NEED_STATUSES), name="status"),
        # External ids are the owner's own numbering, so they are unique per organisation.
        UniqueConstraint("organisation_id", "external_id"),
        Index("ix_needs_organisation_id_dedup_key", "organisation_id", "dedup_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(String(50), index=True)
    cooperation_mode: Mapped[str | None] = mapped_column(String(20))
    budget_min: Mapped[float | None] = mapped_column(Float)  # 万元
    budget_max: Mapped[float | None] = mapped_column(Float)  # 万元
    region: Mapped[str | None] = mapped_column(String(100))
    deadline: Mapped[date | None] = mapped_column(Date)
    contact: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    content_hash: Mapped[str] = mapped_column(String(64))  # see DerivedHashes
    dedup_key: Mapped[str] = mapped_column(String(64))

    organisation: Mapped[Organisation] = relationship(back_populates="needs")

    def __repr__(self) -> str:
        return f"Need(id={self.id!r}, title={self.title!r})"


class Result(TimestampMixin, Base):
    """A research result (科技成果): a patent, paper, software, prototype..."""

    __tablename__ = "results"
    __table_args__ = (
        CheckConstraint(_in_check("status", RESULT_STATUSES), name="status"),
        UniqueConstraint("organisation_id", "external_id"),
        Index("ix_results_organisation_id_dedup_key", "organisation_id", "dedup_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    abstract: Mapped[str] = mapped_column(Text)
    result_type: Mapped[str | None] = mapped_column(String(20), index=True)
    patent_number: Mapped[str | None] = mapped_column(String(50))
    maturity: Mapped[str | None] = mapped_column(String(10))
    industry: Mapped[str | None] = mapped_column(String(50), index=True)
    keywords: Mapped[str | None] = mapped_column(Text)  # joined by ";"
    inventors: Mapped[str | None] = mapped_column(Text)  # joined by ";"
    transfer_modes: Mapped[str | None] = mapped_column(String(200))  # joined by ";"
    asking_price: Mapped[float | None] = mapped_column(Float)  # 万元
    published_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="active", index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    content_hash: Mapped[str] = mapped_column(String(64))  # see DerivedHashes
    dedup_key: Mapped[str] = mapped_column(String(64))
    # The demo derived the title from the abstract (the patent came without one); the pages
    # show it as a tag beside the title. Set by the demo builder only; an edit of the title
    # clears it (service.records.update_result).
    title_derived: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )

    organisation: Mapped[Organisation] = relationship(back_populates="results")

    @property
    def keyword_list(self) -> list[str]:
        return split_joined(self.keywords)

    @property
    def inventor_list(self) -> list[str]:
        return split_joined(self.inventors)

    @property
    def transfer_mode_list(self) -> list[str]:
        return split_joined(self.transfer_modes)

    def __repr__(self) -> str:
        return f"Result(id={self.id!r}, title={self.title!r})"


LIST_SEPARATOR = ";"


def join_list(values: list[str] | tuple[str, ...]) -> str | None:
    return LIST_SEPARATOR.join(values) if values else None


def split_joined(value: str | None) -> list[str]:
    if not value:
        return []
    return [part for part in value.split(LIST_SEPARATOR) if part]


# --- derived hashes -------------------------------------------------------------------------
#
# content_hash: sha256 of exactly what gets embedded (matcher.types.Item.full_text: title, text,
#   keywords). Indexers compare it with their own to know which rows to re-encode.
# dedup_key: sha256 of the normalised title, the text and the keywords. A re-imported row
#   without an external id is the same record when organisation and dedup_key agree.
# Both are set on every insert and update through the ORM (mapper events below), so a row
# edited anywhere (importer, site, shell) keeps them right. Bulk UPDATE statements bypass the
# ORM: call `refresh_hashes` on such rows.


def normalise_title(title: str) -> str:
    """Width, case and spacing do not make a different title."""
    return "".join(unicodedata.normalize("NFKC", title).casefold().split())


def _sha256(text: str) -> str:
    # surrogatepass: a lone surrogate cannot reach the database through the importer, but a
    # hash must never be the thing that fails.
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


Keywords = list[str] | tuple[str, ...]


def content_hash_of(side: Side, title: str, text: str, keywords: Keywords = ()) -> str:
    item = Item(id=0, side=side, title=title, text=text, keywords=tuple(keywords))
    return _sha256(item.full_text)


def dedup_key_of(title: str, text: str, keywords: Keywords = ()) -> str:
    parts = [normalise_title(title), text.strip(), LIST_SEPARATOR.join(keywords)]
    return _sha256("\x1f".join(parts))


def _parts(row: Need | Result) -> tuple[Side, str, str, list[str]]:
    if isinstance(row, Need):
        return "need", row.title or "", row.description or "", []
    return "result", row.title or "", row.abstract or "", split_joined(row.keywords)


def refresh_hashes(row: Need | Result) -> None:
    side, title, text, keywords = _parts(row)
    row.content_hash = content_hash_of(side, title, text, keywords)
    row.dedup_key = dedup_key_of(title, text, keywords)


def _before_write(_mapper: object, _connection: object, target: Need | Result) -> None:
    refresh_hashes(target)


for _model in (Need, Result):
    event.listen(_model, "before_insert", _before_write)
    event.listen(_model, "before_update", _before_write)


# --- the platform's own records: accounts, feedback, shortlists, audit --------------------

ROLES = ("firm", "office", "officer", "admin")


class User(TimestampMixin, Base):
    """A person who signs in. Firms and offices are bound to their organisation."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in_check("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # sha256 of the current API token; the token itself is shown once and never stored.
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Stamped into the session cookie at sign-in; a cookie with another number is signed out.
    # Raised on sign-out, password change and disable, so every session of the account ends
    # on the server, not only the one in the browser that asked (see web.auth).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Where e-mail notifications go (none: in-site only) and how often: immediate, daily or
    # none (corpora.notify.EMAIL_MODES).
    email: Mapped[str | None] = mapped_column(String(254))
    email_mode: Mapped[str] = mapped_column(String(10), default="immediate",
                                            server_default="immediate")

    organisation: Mapped[Organisation | None] = relationship()

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class MatchFeedback(TimestampMixin, Base):
    """A firm's mark on one of its need's matches: relevant or not, and why."""

    __tablename__ = "match_feedback"
    __table_args__ = (UniqueConstraint("need_id", "result_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("results.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    relevant: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(500))

    need: Mapped[Need] = relationship()
    result: Mapped[Result] = relationship()
    user: Mapped[User] = relationship()


class Shortlist(TimestampMixin, Base):
    """An auction shortlist (成果拍卖会清单) curated by officers."""

    __tablename__ = "shortlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    event_date: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    created_by: Mapped[User] = relationship()
    lots: Mapped[list[ShortlistLot]] = relationship(
        back_populates="shortlist", order_by="ShortlistLot.position",
        cascade="all, delete-orphan",
    )


class ShortlistLot(TimestampMixin, Base):
    """One result on a shortlist, at a position, with its reserve price and note."""

    __tablename__ = "shortlist_lots"
    __table_args__ = (UniqueConstraint("shortlist_id", "result_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortlist_id: Mapped[int] = mapped_column(
        ForeignKey("shortlists.id", ondelete="CASCADE"), index=True
    )
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer)
    reserve_price: Mapped[float | None] = mapped_column(Float)  # 万元
    note: Mapped[str | None] = mapped_column(String(1000))
    # What the auction made of the lot: "sold" (sold_price 万元, buyer) or "unsold" (流拍);
    # None until an officer records it.
    outcome: Mapped[str | None] = mapped_column(String(10))
    sold_price: Mapped[float | None] = mapped_column(Float)
    buyer: Mapped[str | None] = mapped_column(String(200))
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))

    shortlist: Mapped[Shortlist] = relationship(back_populates="lots")
    result: Mapped[Result] = relationship()
    outcome_by: Mapped[User | None] = relationship()


class AuditEntry(Base):
    """Who changed what, when. Written in the same transaction as the change itself."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)  # JSON

    user: Mapped[User | None] = relationship()

Index("ix_audit_log_entity", AuditEntry.entity, AuditEntry.entity_id)
# Sign-in rate limits (service.signin_limits) count one action's entries over the last minutes.
Index("ix_audit_log_action_at", AuditEntry.action, AuditEntry.at)


# --- the index change log ------------------------------------------------------------------


class IndexChange(Base):
    """One committed insert, edit or deletion of a need or result, in commit order.

    Written by `corpora.changes` inside the transaction that made the change; every worker
    process reads the rows past the last id it applied and re-indexes those items, so an edit
    made through one worker is matchable in all of them. Append-only; old rows are pruned.
    """

    __tablename__ = "index_changes"
    __table_args__ = (
        CheckConstraint(_in_check("side", ("need", "result")), name="side"),
        # AUTOINCREMENT: SQLite must never hand out an id again once pruning emptied the table,
        # or a worker that has read up to that id would skip the new rows.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[str] = mapped_column(String(10))
    item_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"IndexChange(id={self.id!r}, side={self.side!r}, item_id={self.item_id!r})"
