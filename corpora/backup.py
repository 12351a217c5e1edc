"""Backups that can be taken while the site runs, and an all-or-nothing restore.

Why a logical dump on both databases. The database is the only thing that matters (indexes
and the embedding cache are derived from it), and the same format on SQLite and PostgreSQL
means one restore path, restores across backends (a laptop's SQLite into a server's
PostgreSQL), and a restore that can check every row before it writes any. Consistency comes
from reading every table in ONE read-only transaction: REPEATABLE READ on PostgreSQL, and on
SQLite a deferred read transaction opened on the driver connection, which in WAL mode sees
one snapshot from its first read to its end while writers carry on (the same mechanism the
sqlite3 online backup API relies on, without first copying the whole file, indexes and
free pages included, to dump it). A need and its audit entry, written in one transaction,
are therefore either both in the copy or both absent.

Layout of a backup folder (written under a temporary name and renamed when complete, so a
folder with that name is always a whole backup):

    manifest.json            created_at, database kind, alembic revision, rows per table,
                             sha256 and size of every other file, what happened to indexes
    database/<table>.jsonl   one JSON object per row, tables in dependency order
    indexes/<side>/...       a copy of MATCHER_HOME/indexes, when one could be taken

Indexes are an optimisation: the start-up sync compares them with the database by content
hash and repairs any difference, so a restore works without them. They are copied without
taking the index folder's lock (a backup neither waits for the site nor makes it wait); each
save's hashes.json records the checksum of every file of that save, so a copy that caught a
save half-way is recognised, retried a few times, and else left out for the sync to rebuild.
The embedding cache is not copied: it is a pure cache keyed by text and model, possibly
large, and only needed to re-embed what the copied indexes lack.

Restore checks the manifest and every file (checksums, row counts, each row's columns and
types) before it touches anything, refuses a non-empty database unless `force`, and writes
all rows in one transaction (deleting the old ones first under `force`), so a failure at any
row leaves the database as it was. Indexes are swapped in only after that commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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
from matcher.lexical import LexicalIndex
from matcher.types import SIDES

FORMAT = "g60-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DATABASE_DIR = "database"
INDEXES_DIR = "indexes"
DATABASE_KINDS = ("sqlite", "postgresql")
# Rows per INSERT batch and per fetch.
BATCH = 1000
# An index side that keeps changing while we copy it is tried this often, then left out.
INDEX_ATTEMPTS = 5
INDEX_RETRY_SECONDS = 0.2
# One index side on disk (matcher.indexing): hashes.json, written last by every save, names
# the checksum of each file of that save.
INDEX_HASHES = "hashes.json"
SIDECAR = "index.json"
VECTOR_FOLDERS = ("vectors", "windows")
LEXICAL = "lexical"
CHUNK = 1024 * 1024

TableCallback = Callable[[str, int], None]


class BackupError(RuntimeError):
    """A backup cannot be made or restored; the message is for the user (Chinese)."""


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    return list(Base.metadata.sorted_tables)


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine.url)).get_current_head()


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- values <-> JSON -------------------------------------------------------------------------


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, datetime):
        # Timestamps are UTC throughout the platform; SQLite gives them back naive.
        return (value.astimezone(UTC) if value.tzinfo is not None else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise BackupError(f"{where}：无法写入备份的值类型 {type(value).__name__}")


def _decode(column: Column[Any], value: Any, sqlite: bool, where: str) -> Any:
    """The Python value for `column` from its JSON form; BackupError if it cannot be one."""
    if value is None:
        return None
    kind = column.type
    problem = f"{where} 列 {column.name}：值 {str(value)[:40]!r} 不是"
    if isinstance(kind, DateTime):
        if not isinstance(value, str):
            raise BackupError(problem + "时间戳")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise BackupError(problem + "时间戳") from None
        if sqlite:
            return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(kind, Date):
        if not isinstance(value, str):
            raise BackupError(problem + "日期")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BackupError(problem + "日期") from None
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise BackupError(problem + "布尔值")
        return value
    if isinstance(kind, Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise BackupError(problem + "整数")
        return value
    if isinstance(kind, Float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BackupError(problem + "数字")
        return float(value)
    if isinstance(kind, String):  # Text is a String
        if not isinstance(value, str):
            raise BackupError(problem + "文本")
        return value
    raise BackupError(f"{where} 列 {column.name}：不认识的列类型 {kind!r}")


def _decode_row(table: Table, line: bytes, sqlite: bool, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise BackupError(f"{where}：不是有效的 JSON") from None
    if not isinstance(record, dict):
        raise BackupError(f"{where}：应为 JSON 对象")
    names = [column.name for column in table.columns]
    if set(record) != set(names):
        missing = sorted(set(names) - set(record))
        extra = sorted(set(record) - set(names))
        raise BackupError(f"{where}：列与数据库结构不符（缺少 {missing}，多出 {extra}）")
    return {column.name: _decode(column, record[column.name], sqlite, where)
            for column in table.columns}


# --- files -----------------------------------------------------------------------------------


def _fsync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy_file(source: Path, target: Path) -> tuple[str, int]:
    """Copy and hash in one read; the copy is fsynced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest(), size


def _files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# --- making a backup -------------------------------------------------------------------------


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
        raise BackupError("内部错误：无法为备份开启只读事务")
    raw.execute("BEGIN")
    raw.execute("SELECT count(*) FROM sqlite_master").fetchall()  # pins the snapshot


def _dump_database(engine: Engine, folder: Path, on_table: TableCallback | None
                   ) -> tuple[str | None, dict[str, int]]:
    """Every table in one read-only transaction: (alembic revision, rows per table)."""
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
                raise BackupError(
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
    with open(folder / f"{table.name}.jsonl", "wb") as handle:
        result = connection.execute(statement, execution_options={"yield_per": BATCH})
        for row in result.mappings():
            where = f"表 {table.name} 第 {rows + 1} 行"
            record = {name: _encode(value, where) for name, value in row.items()}
            try:
                data = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                handle.write(data.encode("utf-8") + b"\n")
            except (UnicodeEncodeError, ValueError) as error:
                raise BackupError(f"{where}：无法写成 JSON（{error}）") from error
            rows += 1
        handle.flush()
        os.fsync(handle.fileno())
    return rows


class _Moving(Exception):
    """The files read do not belong to one save: a save went on while we copied."""


def _copy_index_side(source: Path, target: Path) -> str | None:
    """Copy one side's committed files without taking any lock; None when done, else why
    the side was left out.

    Every save writes `hashes.json` last, and it records the checksum of each file of that
    save. So hashes.json is copied first and each file after it must carry that checksum:
    then the copy is exactly one save, whatever other processes did meanwhile. Otherwise a
    save was under way (or its data file was swept), and the side is tried again."""
    if not (source / INDEX_HASHES).is_file():
        return "索引不存在"
    reason = "索引正在写入"
    for attempt in range(INDEX_ATTEMPTS):
        if attempt:
            time.sleep(INDEX_RETRY_SECONDS)
        shutil.rmtree(target, ignore_errors=True)
        try:
            _copy_file(source / INDEX_HASHES, target / INDEX_HASHES)
            files = json.loads((target / INDEX_HASHES).read_text("utf-8")).get("files")
            if not isinstance(files, dict):
                reason = "索引格式较旧（hashes.json 未记录文件校验和）"
                break
            for folder in VECTOR_FOLDERS:
                _copy_file(source / folder / SIDECAR, target / folder / SIDECAR)
                sidecar = json.loads((target / folder / SIDECAR).read_text("utf-8"))
                if sidecar.get("sha256") != files.get(folder):
                    raise _Moving
                data_name = Path(str(sidecar["file"])).name
                digest, _size = _copy_file(source / folder / data_name,
                                           target / folder / data_name)
                if digest != sidecar["sha256"]:
                    raise _Moving
            words = LexicalIndex.data_path(source / LEXICAL)
            digest, _size = _copy_file(words, target / LEXICAL / words.name)
            if digest != files.get("lexical"):
                raise _Moving
            return None
        except (_Moving, FileNotFoundError):
            reason = "索引正在写入"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            reason = f"无法读取索引（{type(error).__name__}）"
    shutil.rmtree(target, ignore_errors=True)
    return reason


def _copy_indexes(home: Path, folder: Path) -> dict[str, dict[str, Any]]:
    status: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        reason = _copy_index_side(home / "indexes" / side, folder / side)
        status[side] = {"copied": True} if reason is None else {"copied": False,
                                                                 "reason": reason}
    return status


def create_backup(engine: Engine, dest: str | os.PathLike[str], *, home: Path | None = None,
                  on_table: TableCallback | None = None) -> dict[str, Any]:
    """Write a backup of the database (and of `home`'s indexes) to the new folder `dest`.

    `dest` must not exist, or be an empty folder. Returns the manifest."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"备份目标 {dest} 已存在且不是空目录：请指定一个新目录。")
    kind = engine.dialect.name
    if kind not in DATABASE_KINDS:
        raise BackupError(f"不支持的数据库类型 {kind}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
    work.mkdir()
    try:
        created_at = _utc_now()
        try:
            revision, counts = _dump_database(engine, work / DATABASE_DIR, on_table)
        except SQLAlchemyError as error:
            raise BackupError(f"读取数据库失败：{error}") from error
        indexes: dict[str, dict[str, Any]] = {}
        if home is not None:
            indexes = _copy_indexes(Path(home), work / INDEXES_DIR)
        files = {}
        for path in _files_under(work):
            digest, size = _sha256_file(path)
            files[_relative(path, work)] = {"sha256": digest, "bytes": size}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": created_at,
            "database": {"kind": kind, "alembic_revision": revision, "tables": counts},
            "indexes": indexes,
            "embedding_cache": "not included: derived data, rebuilt when needed",
            "files": files,
        }
        manifest_path = work / MANIFEST_NAME
        with open(manifest_path, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        for folder in [work, *(p for p in work.rglob("*") if p.is_dir())]:
            _fsync_directory(folder)
        os.replace(work, dest)  # an empty `dest` folder is replaced too
        _fsync_directory(dest.parent)
        return manifest
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


# --- checking a backup -----------------------------------------------------------------------


@dataclass
class CheckedBackup:
    folder: Path
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # what a restore could not do (indexes)

    @property
    def revision(self) -> str:
        return self.manifest["database"]["alembic_revision"]

    @property
    def counts(self) -> dict[str, int]:
        return self.manifest["database"]["tables"]

    def table_file(self, table: Table) -> Path:
        return self.folder / DATABASE_DIR / f"{table.name}.jsonl"

    def copied_sides(self) -> list[str]:
        return [side for side, status in self.manifest.get("indexes", {}).items()
                if isinstance(status, dict) and status.get("copied") is True]


def _bad(message: str) -> BackupError:
    return BackupError(f"备份清单校验失败，未做任何修改：{message}")


def _check_manifest_shape(manifest: Any) -> None:
    if not isinstance(manifest, dict):
        raise _bad("manifest.json 应为 JSON 对象")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise _bad(f"不是本程序的备份格式（需要 {FORMAT} 第 {FORMAT_VERSION} 版）")
    database = manifest.get("database")
    if not isinstance(database, dict) or database.get("kind") not in DATABASE_KINDS:
        raise _bad("缺少数据库信息")
    if not isinstance(database.get("alembic_revision"), str):
        raise _bad("缺少数据库结构版本（alembic revision）")
    counts = database.get("tables")
    if not isinstance(counts, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        raise _bad("各表行数应为非负整数")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str)
            and isinstance(v.get("bytes"), int) for v in files.values()):
        raise _bad("文件清单应为 路径 → {sha256, bytes}")
    if not isinstance(manifest.get("indexes", {}), dict):
        raise _bad("索引信息格式错误")


def check_backup(src: str | os.PathLike[str], *, head: str | None = None) -> CheckedBackup:
    """Verify a backup folder without touching any database: the manifest's shape, every
    file's size and sha256, no unlisted file, and every row of every table (columns, types,
    count). `head`: the alembic revision the backup must be at."""
    folder = Path(src)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise BackupError(f"找不到备份目录 {folder}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(f"{folder} 中没有 {MANIFEST_NAME}") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise _bad(f"{MANIFEST_NAME} 不是有效的 JSON（{error}）") from None
    _check_manifest_shape(manifest)
    listed: dict[str, dict[str, Any]] = manifest["files"]
    present = {_relative(p, folder) for p in _files_under(folder)} - {MANIFEST_NAME}
    if unlisted := sorted(present - set(listed)):
        raise _bad(f"有清单中没有的文件：{'、'.join(unlisted[:5])}")
    for name, expected in listed.items():
        target = (folder / name).resolve()
        if ".." in Path(name).parts or Path(name).is_absolute() or \
                not target.is_relative_to(folder.resolve()):
            raise _bad(f"文件路径不合法：{name}")
        if name not in present:
            raise _bad(f"缺少文件 {name}")
        digest, size = _sha256_file(folder / name)
        if size != expected["bytes"] or digest != expected["sha256"]:
            raise _bad(f"文件 {name} 已损坏或被修改（校验和不符）")
    checked = CheckedBackup(folder, manifest)
    if head is not None and checked.revision != head:
        raise BackupError(
            f"备份的数据库结构版本为 {checked.revision}，本程序为 {head}：请用与备份相同版本的"
            "程序恢复（恢复后再升级），未做任何修改。")
    wanted = {table.name for table in tables()}
    if set(checked.counts) != wanted:
        raise _bad(f"表的清单与数据库结构不符（备份：{sorted(checked.counts)}）")
    for table in tables():
        name = f"{DATABASE_DIR}/{table.name}.jsonl"
        if name not in listed:
            raise _bad(f"缺少表 {table.name} 的数据文件")
        rows = sum(1 for _ in _table_rows(checked, table, sqlite=True))
        if rows != checked.counts[table.name]:
            raise _bad(f"表 {table.name} 有 {rows} 行，清单记为 {checked.counts[table.name]} 行")
    return checked


def _table_rows(checked: CheckedBackup, table: Table, *, sqlite: bool
                ) -> Iterator[dict[str, Any]]:
    with open(checked.table_file(table), "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield _decode_row(table, line, sqlite, f"表 {table.name} 第 {number} 行")


# --- restoring -------------------------------------------------------------------------------


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


def _load(connection: Connection, checked: CheckedBackup, force: bool,
          on_table: TableCallback | None) -> None:
    sqlite = connection.dialect.name == "sqlite"
    _migrate(connection)
    _lock_for_restore(connection)
    existing = _row_counts(connection)
    if any(existing.values()) and not force:
        filled = "、".join(f"{name} {count} 行" for name, count in existing.items() if count)
        raise BackupError(f"目标数据库不是空的（{filled}）：未做任何修改。"
                          "确认要用备份覆盖其中的全部数据时，加 --force。")
    for table in reversed(tables()):
        connection.execute(table.delete())
    for table in tables():
        batch: list[dict[str, Any]] = []
        for row in _table_rows(checked, table, sqlite=sqlite):
            batch.append(row)
            if len(batch) >= BATCH:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
        if on_table is not None:
            on_table(table.name, checked.counts[table.name])
    if connection.dialect.name == "postgresql":
        _reset_sequences(connection)
    if _row_counts(connection) != checked.counts:
        raise BackupError("写入后的行数与备份清单不符，已撤销恢复。")


def _stage_indexes(checked: CheckedBackup, home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    staging = home / f".indexes-restore-{secrets.token_hex(4)}"
    staging.mkdir()
    for side in checked.copied_sides():
        if side not in SIDES:
            continue
        source = checked.folder / INDEXES_DIR / side
        for path in _files_under(source):
            _copy_file(path, staging / side / _relative(path, source))
    return staging


def _swap_indexes(staging: Path, home: Path) -> None:
    live = home / "indexes"
    old = home / f".indexes-old-{secrets.token_hex(4)}"
    if live.exists():
        os.replace(live, old)
    try:
        os.replace(staging, live)
    except OSError:
        if old.exists():
            os.replace(old, live)  # keep the indexes there were
        raise
    _fsync_directory(home)
    shutil.rmtree(old, ignore_errors=True)


def restore_backup(engine: Engine, src: str | os.PathLike[str], *, home: Path | None = None,
                   force: bool = False, on_table: TableCallback | None = None
                   ) -> CheckedBackup:
    """Restore the backup folder `src` into the database behind `engine` (and its indexes
    into `home/indexes`). Checks everything first; refuses a non-empty database unless
    `force`; all rows are written in one transaction. The site must not be running: it
    would keep its in-memory indexes and could overwrite the restored ones."""
    checked = check_backup(src, head=head_revision(engine))
    staging = _stage_indexes(checked, Path(home)) if home is not None else None
    try:
        try:
            with engine.connect() as connection, connection.begin():
                _load(connection, checked, force, on_table)
        except (SQLAlchemyError, CommandError) as error:
            raise BackupError(f"恢复失败，数据库未做任何修改：{error}") from error
        if staging is not None and home is not None:
            try:
                _swap_indexes(staging, Path(home))
                staging = None
            except OSError as error:
                # The rows are restored; indexes are derived, and whatever indexes stay in
                # place are checked against the rows by content hash at the next start.
                checked.notes.append(f"数据库已恢复，但未能替换索引（{error}）：下次启动时与数据库"
                                     "比对并补齐。")
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return checked


def describe(manifest: Mapping[str, Any]) -> str:
    """A few lines for the command line."""
    database = manifest["database"]
    lines = [f"数据库 {database['kind']}，结构版本 {database['alembic_revision']}，"
             f"备份于 {manifest['created_at']}"]
    lines.extend(f"  {name}: {count} 行" for name, count in database["tables"].items())
    for side, status in manifest.get("indexes", {}).items():
        shown = "已复制" if status.get("copied") else \
            f"未复制（{status.get('reason')}），启动时重建"
        lines.append(f"  索引 {side}: {shown}")
    return "\n".join(lines)
