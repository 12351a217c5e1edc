"""Backups that can be taken while the site runs, and an all-or-nothing restore.

The database is the only thing that matters (indexes and the embedding cache are derived
from it); `corpora.dump` reads every table in one read-only transaction and writes it back
in one transaction. This module wraps that dump into a folder that can be checked before
anything is touched, and adds a copy of the index files (`matcher.index_files`).

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
types) before it touches anything, then loads the rows (`corpora.dump.load_database`: a
non-empty database is refused unless `force`, and a failure at any row changes nothing).
Indexes are swapped in only after that commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table

from corpora.dump import (
    DumpError,
    TableCallback,
    dump_database,
    head_revision,
    load_database,
    read_rows,
    table_file,
    tables,
)
from matcher.index_files import copy_saved_side, indexes_folder, side_folder
from matcher.types import SIDES

FORMAT = "g60-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DATABASE_DIR = "database"
INDEXES_DIR = "indexes"  # in the backup folder; the live layout is matcher.index_files'
DATABASE_KINDS = ("sqlite", "postgresql")
# An index side that keeps changing while we copy it is tried this often, then left out.
INDEX_ATTEMPTS = 5
INDEX_RETRY_SECONDS = 0.2
CHUNK = 1024 * 1024

class BackupError(RuntimeError):
    """A backup cannot be made or restored; the message is for the user (Chinese)."""


@contextlib.contextmanager
def _as_backup_error() -> Iterator[None]:
    """The dump's refusals, as this module's error (same message)."""
    try:
        yield
    except DumpError as error:
        raise BackupError(str(error)) from error


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


def _copy_file(source: Path, target: Path) -> None:
    """Copy; the copy is fsynced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, CHUNK)
        writer.flush()
        os.fsync(writer.fileno())


def _files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# --- making a backup -------------------------------------------------------------------------


def _copy_indexes(home: Path, folder: Path) -> dict[str, dict[str, Any]]:
    status: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        reason = copy_saved_side(side_folder(home, side), folder / side,
                                 attempts=INDEX_ATTEMPTS, retry_seconds=INDEX_RETRY_SECONDS)
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
        with _as_backup_error():
            revision, counts = dump_database(engine, work / DATABASE_DIR, on_table)
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

    @property
    def database_folder(self) -> Path:
        return self.folder / DATABASE_DIR

    def table_file(self, table: Table) -> Path:
        return table_file(self.database_folder, table)

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
        if _relative(checked.table_file(table), folder) not in listed:
            raise _bad(f"缺少表 {table.name} 的数据文件")
        with _as_backup_error():
            rows = sum(1 for _ in read_rows(checked.database_folder, table, sqlite=True))
        if rows != checked.counts[table.name]:
            raise _bad(f"表 {table.name} 有 {rows} 行，清单记为 {checked.counts[table.name]} 行")
    return checked


# --- restoring -------------------------------------------------------------------------------


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
    live = indexes_folder(home)
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
        with _as_backup_error():
            load_database(engine, checked.database_folder, checked.counts, force=force,
                          on_table=on_table)
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
