"""Engines, sessions and migrations.

SQLite by default (`settings.Settings.database_url`: `<home>/matcher.sqlite`), PostgreSQL when
`DATABASE_URL` says so; the same code runs on both. The URL is always passed in: this module
reads no environment. The schema is only ever created by Alembic (`upgrade`), never by
`metadata.create_all`, so that every database has a revision history later migrations extend.

Every session of the platform is a `PlatformSession`: the change log's listeners
(`corpora.changes`) are registered on that class here, explicitly, and on nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from corpora.changes import install_change_log

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"
# Ids per `IN (...)` clause: large enough to be quick, small enough for any database's
# bound-parameter limit.
IN_CHUNK = 500


class PlatformSession(Session):
    """The platform's session class: every write through it keeps the index change log."""


install_change_log(PlatformSession)


def in_chunks(values: Sequence, size: int = IN_CHUNK) -> Iterator[Sequence]:
    """`values` in slices of at most `size`, for IN clauses and batched inserts."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _enable_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    # pysqlite's own transaction handling emits no BEGIN before a SAVEPOINT, so a RELEASE
    # would commit for good and a later rollback would not undo it. SQLAlchemy's documented
    # fix: let the driver do nothing and emit BEGIN ourselves (see `_begin_before_write`).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers (the site) carry on while an import writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


_BEGIN_PENDING = "corpora.db.sqlite_begin_pending"
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


def _begin(connection: Any) -> None:
    connection.info[_BEGIN_PENDING] = True


def _begin_before_write(connection: Any, cursor: Any, statement: str, *_args: Any) -> None:
    """Open the SQLite transaction with BEGIN IMMEDIATE just before its first write.

    A deferred BEGIN followed by reads pins a WAL snapshot; if another process commits before
    this one's first write, SQLite refuses that write at once ("database is locked",
    SQLITE_BUSY_SNAPSHOT, no busy wait), which two workers editing at once hit every second.
    So reads before the first write run on their own, each seeing the latest commit (what
    PostgreSQL's READ COMMITTED gives), and the first write, or SAVEPOINT, waits (busy_timeout)
    for the write lock and then works on the newest data."""
    if connection.info.get(_BEGIN_PENDING) and \
            not statement.lstrip()[:7].upper().startswith(_READS):
        connection.info[_BEGIN_PENDING] = False
        cursor.execute("BEGIN IMMEDIATE")


def _end(connection: Any) -> None:
    connection.info.pop(_BEGIN_PENDING, None)


def create_engine_for(url: str | URL, **kwargs: object) -> Engine:
    """An engine for `url`; SQLite gets foreign keys and WAL on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _enable_sqlite_pragmas)
        event.listen(engine, "begin", _begin)
        event.listen(engine, "before_cursor_execute", _begin_before_write)
        event.listen(engine, "commit", _end)
        event.listen(engine, "rollback", _end)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: reports and callers read ids and titles after the commit.
    return sessionmaker(bind=engine, class_=PlatformSession, expire_on_commit=False)


@contextmanager
def session_scope(bind: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception."""
    factory = bind if isinstance(bind, sessionmaker) else make_sessionmaker(bind)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str | URL) -> Config:
    """An Alembic config that finds `migrations/` from this file, whatever the cwd."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    rendered = make_url(url).render_as_string(
        hide_password=False
    )
    # Config values go through ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url: str | URL | Engine, revision: str = "head") -> None:
    """Bring the database at `url` (or behind `engine`) to `revision` (default: head)."""
    if isinstance(url, Engine):
        config = alembic_config(url.url)
        with url.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return
    config = alembic_config(url)
    command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
