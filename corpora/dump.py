"""The database's logical dump and load: every table's rows as JSON lines, and back.

Why a logical dump on both databases: the same format on SQLite and PostgreSQL means one
load path, loads across backends (a laptop's SQLite into a server's PostgreSQL), and a load
that can check every row before it writes any. Consistency comes from reading every table in
ONE read-only transaction: REPEATABLE READ on PostgreSQL, and on SQLite a deferred read
transaction opened on the driver connection, which in WAL mode sees one snapshot from its
first read to its end while writers carry on (the same mechanism the sqlite3 online backup
API relies on, without first copying the whole file, indexes and free pages included, to
dump it). A need and its audit entry, written in one transaction, are therefore either both
in the dump or both absent.

A dump folder holds `<table>.jsonl` per table, one JSON object per row. Loading brings the
target to the schema head, locks it against other writers, refuses a non-empty database
unless `force`, and writes all rows in one transaction (deleting the old ones first under
`force`), so a failure at any row leaves the database as it was. `service.backup` wraps a
dump into a checked, restorable backup.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from corpora.db import alembic_config
from corpora.models import Base

# Rows per INSERT batch and per fetch.
BATCH = 1000

TableCallback = Callable[[str, int], None]


class DumpError(RuntimeError):
    """Rows that cannot be dumped or loaded; the message is for the user (Chinese)."""


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    return list(Base.metadata.sorted_tables)


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine.url)).get_current_head()


def table_file(folder: Path, table: Table) -> Path:
    return Path(folder) / f"{table.name}.jsonl"


# --- values <-> JSON -------------------------------------------------------------------------


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, datetime):
        # Timestamps are UTC throughout the platform; SQLite gives them back naive.
        return (value.astimezone(UTC) if value.tzinfo is not None else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise DumpError(f"{where}：无法写入备份的值类型 {type(value).__name__}")


def _decode(column: Column[Any], value: Any, sqlite: bool, where: str) -> Any:
    """The Python value for `column` from its JSON form; DumpError if it cannot be one."""
    if value is None:
        return None
    kind = column.type
    problem = f"{where} 列 {column.name}：值 {str(value)[:40]!r} 不是"
    if isinstance(kind, DateTime):
        if not isinstance(value, str):
            raise DumpError(problem + "时间戳")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise DumpError(problem + "时间戳") from None
        if sqlite:
            return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(kind, Date):
        if not isinstance(value, str):
            raise DumpError(problem + "日期")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise DumpError(problem + "日期") from None
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise DumpError(problem + "布尔值")
        return value
    if isinstance(kind, Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DumpError(problem + "整数")
        return value
    if isinstance(kind, Float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DumpError(problem + "数字")
        return float(value)
    if isinstance(kind, String):  # Text is a String
        if not isinstance(value, str):
            raise DumpError(problem + "文本")
        return value
    raise DumpError(f"{where} 列 {column.name}：不认识的列类型 {kind!r}")


def _decode_row(table: Table, line: bytes, sqlite: bool, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise DumpError(f"{where}：不是有效的 JSON") from None
    if not isinstance(record, dict):
        raise DumpError(f"{where}：应为 JSON 对象")
    names = [column.name for column in table.columns]
    if set(record) != set(names):
        missing = sorted(set(names) - set(record))
        extra = sorted(set(record) - set(names))
        raise DumpError(f"{where}：列与数据库结构不符（缺少 {missing}，多出 {extra}）")
    return {column.name: _decode(column, record[column.name], sqlite, where)
            for column in table.columns}


def read_rows(folder: Path, table: Table, *, sqlite: bool) -> Iterator[dict[str, Any]]:
    """The rows of `table` in the dump `folder`, each checked against the schema (columns
    and types), as values for SQLite (naive UTC timestamps) or PostgreSQL (aware)."""
    with open(table_file(folder, table), "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield _decode_row(table, line, sqlite, f"表 {table.name} 第 {number} 行")


# --- dumping ---------------------------------------------------------------------------------


def _snapshot_options(engine: Engine) -> dict[str, Any]:
    if engine.dialect.name == "postgresql":
        return {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    return {}  # SQLite: see _pin_sqlite_snapshot


def _pin_sqlite_snapshot(connection: Connection) -> None:
    """Make every read of this SQLite connection see one WAL snapshot.

    The engine (corpora.db) postpones BEGIN until a transaction's first write, so its reads
    each see the latest commit; a dump through it would be torn. A plain (deferred) BEGIN
    on the driver connection takes no lock, the first read pins the snapshot, and writers
    carry on (WAL); the transaction's commit at the end releases it."""
    raw = connection.connection.dbapi_connection
    if raw is None or raw.in_transaction:
        raise DumpError("内部错误：无法为备份开启只读事务")
    raw.execute("BEGIN")
    raw.execute("SELECT count(*) FROM sqlite_master").fetchall()  # pins the snapshot


def dump_database(engine: Engine, folder: Path, on_table: TableCallback | None = None
                  ) -> tuple[str | None, dict[str, int]]:
    """Every table into the new folder `folder`, in one read-only transaction:
    (alembic revision, rows per table). The database must be at the schema head."""
    try:
        return _dump_database(engine, Path(folder), on_table)
    except SQLAlchemyError as error:
        raise DumpError(f"读取数据库失败：{error}") from error


def _dump_database(engine: Engine, folder: Path, on_table: TableCallback | None
                   ) -> tuple[str | None, dict[str, int]]:
    folder.mkdir(parents=True)
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        connection.execution_options(**_snapshot_options(engine))
        with connection.begin():
            if engine.dialect.name == "sqlite":
                _pin_sqlite_snapshot(connection)
            # The first read fixes the snapshot, so the revision belongs to the same one.
            revision = MigrationContext.configure(connection).get_current_revision()
            head = head_revision(engine)
            if revision != head:
                raise DumpError(
                    f"数据库结构版本为 {revision or '（未初始化）'}，而本程序为 {head}："
                    "请先运行 flask --app web init-db 再备份。")
            for table in tables():
                counts[table.name] = _dump_table(connection, table, folder)
                if on_table is not None:
                    on_table(table.name, counts[table.name])
    return revision, counts


def _dump_table(connection: Connection, table: Table, folder: Path) -> int:
    statement = select(table).order_by(*table.primary_key.columns)
    rows = 0
    with open(table_file(folder, table), "wb") as handle:
        result = connection.execute(statement, execution_options={"yield_per": BATCH})
        for row in result.mappings():
            where = f"表 {table.name} 第 {rows + 1} 行"
            record = {name: _encode(value, where) for name, value in row.items()}
            try:
                data = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                handle.write(data.encode("utf-8") + b"\n")
            except (UnicodeEncodeError, ValueError) as error:
                raise DumpError(f"{where}：无法写成 JSON（{error}）") from error
            rows += 1
        handle.flush()
        os.fsync(handle.fileno())
    return rows


# --- loading ---------------------------------------------------------------------------------


def _migrate(connection: Connection) -> None:
    """Bring the target to the schema head inside the caller's transaction."""
    config = alembic_config(connection.engine.url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _reset_sequences(connection: Connection) -> None:
    """PostgreSQL's id sequences continue after the restored ids, and never go back (with
    --force they may already be past them). SQLite needs nothing: its rowids, and the
    AUTOINCREMENT counter of `index_changes`, follow the largest id inserted."""
    for table in tables():
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        sequence = connection.scalar(text("SELECT pg_get_serial_sequence(:table, :column)"),
                                     {"table": table.name, "column": keys[0].name})
        if sequence is None:
            continue
        # `sequence` comes from PostgreSQL itself, already quoted where needed.
        last, called = connection.execute(
            text(f"SELECT last_value, is_called FROM {sequence}")).one()
        largest = connection.scalar(select(func.max(keys[0]))) or 0
        value = max(largest, last if called else 0)
        connection.execute(text("SELECT setval(CAST(:sequence AS regclass), :value, :called)"),
                           {"sequence": sequence, "value": max(value, 1),
                            "called": value > 0})


def _lock_for_restore(connection: Connection) -> None:
    """No other writer between "is it empty?" and the last insert. SQLite: a write that
    changes nothing takes the write lock (the engine opens its transaction at the first
    write). PostgreSQL: every table locked against writes; readers carry on."""
    if connection.dialect.name == "sqlite":
        connection.execute(text("UPDATE alembic_version SET version_num = version_num "
                                "WHERE 1 = 0"))
    else:
        names = ", ".join(f'"{table.name}"' for table in tables())
        connection.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))


def _row_counts(connection: Connection) -> dict[str, int]:
    return {table.name: connection.scalar(select(func.count()).select_from(table)) or 0
            for table in tables()}


def load_database(engine: Engine, folder: Path, counts: Mapping[str, int], *,
                  force: bool = False, on_table: TableCallback | None = None) -> None:
    """Replace the rows behind `engine` with the dump `folder`, all in one transaction, or
    change nothing. `counts`: the rows each table must end up with. Refuses a non-empty
    database unless `force`."""
    try:
        with engine.connect() as connection, connection.begin():
            _load(connection, Path(folder), counts, force, on_table)
    except (SQLAlchemyError, CommandError) as error:
        raise DumpError(f"恢复失败，数据库未做任何修改：{error}") from error


def _load(connection: Connection, folder: Path, counts: Mapping[str, int], force: bool,
          on_table: TableCallback | None) -> None:
    sqlite = connection.dialect.name == "sqlite"
    _migrate(connection)
    _lock_for_restore(connection)
    existing = _row_counts(connection)
    if any(existing.values()) and not force:
        filled = "、".join(f"{name} {count} 行" for name, count in existing.items() if count)
        raise DumpError(f"目标数据库不是空的（{filled}）：未做任何修改。"
                        "确认要用备份覆盖其中的全部数据时，加 --force。")
    for table in reversed(tables()):
        connection.execute(table.delete())
    for table in tables():
        batch: list[dict[str, Any]] = []
        for row in read_rows(folder, table, sqlite=sqlite):
            batch.append(row)
            if len(batch) >= BATCH:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
        if on_table is not None:
            on_table(table.name, counts[table.name])
    if connection.dialect.name == "postgresql":
        _reset_sequences(connection)
    if _row_counts(connection) != dict(counts):
        raise DumpError("写入后的行数与备份清单不符，已撤销恢复。")
