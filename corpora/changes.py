"""The index change log: every committed change to a need or result, in commit order.

Each worker process (gunicorn's workers, a second server, a CLI import) holds its own
in-memory indexes. For the others to learn of an edit, every ORM transaction that inserts,
updates or deletes a `Need` or `Result` (a status change included; also an organisation's
name, city, tier or sample flag, which are facets of all its records) appends one
`IndexChange(side, item_id)` row per record. The rows are written inside that same
transaction, just before it commits: a committed change always has its row, and a
rolled-back one has none. Workers apply `id > last id applied` before every read
(`web.matching`), re-reading those records from the database (a closed need or withdrawn
result is dropped). `install_change_log` registers the listeners on the platform's own session
class (`corpora.db.PlatformSession`, which every session factory of ours makes), so the site,
the importer, the CLI and scripts alike log their changes. Bulk `update()`/`delete()`
statements bypass the ORM and are not logged: call `record()` for such rows.

Readers move past ids in order, so ids must be handed out in commit order, or a reader could
see id 11, move past it, and never see id 10 commit a moment later. SQLite has one writer at a
time, so they are. On PostgreSQL the rows are inserted under a transaction-scoped advisory lock
taken only at commit time (between the final flush and COMMIT, milliseconds), so the step
"take an id, commit" runs one transaction at a time; long transactions (an import) do not
hold it while they work.

Rows older than `RETENTION` (a day) are deleted by `prune`, which each worker runs at start-up;
a worker that has not read the log for half that long does a full sync instead of trusting it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from sqlalchemy import delete, event, func, inspect, select, text
from sqlalchemy.orm import Session

from corpora.models import IndexChange, Need, Organisation, Result, utcnow
from matcher.types import Side

RETENTION = timedelta(days=1)
# pg_advisory_xact_lock key: "g60_ix" as a number; only this module takes it.
ADVISORY_LOCK_KEY = 0x6736305F6978
_PENDING = "corpora.changes.pending"
# Organisation fields that are facets of every need and result it owns.
_ORGANISATION_FACETS = ("name", "city", "tier", "is_sample")


def _pending(session: Session) -> set[tuple[str, int]]:
    return session.info.setdefault(_PENDING, set())


def record(session: Session, side: Side, ids: Iterable[int]) -> None:
    """Log these records as changed when `session` commits (for rows changed outside the ORM)."""
    _pending(session).update((side, int(i)) for i in ids)


def _organisation_changed(organisation: Organisation) -> bool:
    state = inspect(organisation)
    return any(state.attrs[name].history.has_changes() for name in _ORGANISATION_FACETS)


def _after_flush(session: Session, _flush_context: Any) -> None:
    # Still the pre-flush view here: new/dirty/deleted and attribute history are intact, and
    # every new row has its id.
    changed: set[tuple[str, int]] = set()
    organisations: list[int] = []
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Need | Result):
            if obj in session.dirty and not session.is_modified(obj, include_collections=False):
                continue
            if obj.id is not None:
                changed.add(("need" if isinstance(obj, Need) else "result", obj.id))
        elif isinstance(obj, Organisation) and obj in session.dirty and obj.id is not None \
                and _organisation_changed(obj):
            organisations.append(obj.id)
    if organisations:
        connection = session.connection()
        for side, model in (("need", Need), ("result", Result)):
            ids = connection.scalars(select(model.id).where(
                model.organisation_id.in_(organisations)))
            changed.update((side, i) for i in ids)
    if changed:
        _pending(session).update(changed)


def _before_commit(session: Session) -> None:
    # Also called when a SAVEPOINT is released; only the real commit writes the log.
    if session.in_nested_transaction():
        return
    session.flush()  # the commit's own flush comes after this event: do it now
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": ADVISORY_LOCK_KEY})
    connection.execute(IndexChange.__table__.insert(),
                       [{"side": side, "item_id": item_id, "at": utcnow()}
                        for side, item_id in sorted(pending)])


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the whole transaction is over (committed or not)
        session.info.pop(_PENDING, None)


def install_change_log(session_class: type[Session]) -> None:
    """Make every session of `session_class` write the change log (idempotent)."""
    for name, listener in (("after_flush", _after_flush), ("before_commit", _before_commit),
                           ("after_transaction_end", _after_transaction_end)):
        if not event.contains(session_class, name, listener):
            event.listen(session_class, name, listener)


# --- reading ---------------------------------------------------------------------------------


def latest_change_id(session: Session) -> int:
    """The newest id in the log (0 when empty)."""
    return session.scalar(select(func.coalesce(func.max(IndexChange.id), 0))) or 0


def changes_since(session: Session, after: int, upto: int) -> dict[Side, set[int]]:
    """The records changed by log rows after..upto (inclusive), per side."""
    changed: dict[Side, set[int]] = {}
    rows = session.execute(
        select(IndexChange.side, IndexChange.item_id)
        .where(IndexChange.id > after, IndexChange.id <= upto))
    for side, item_id in rows:
        changed.setdefault(side, set()).add(item_id)
    return changed


def prune(session: Session, *, older_than: timedelta = RETENTION,
          now: datetime | None = None) -> int:
    """Delete log rows older than `older_than`; the caller commits. Returns how many."""
    cutoff = (now or utcnow()) - older_than
    result = session.execute(delete(IndexChange).where(IndexChange.at < cutoff))
    return int(result.rowcount or 0)
