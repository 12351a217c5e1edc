"""Backup while the site writes, restore all or nothing, on SQLite and PostgreSQL.

What the tests prove:
- a backup taken while a thread keeps posting needs is one snapshot: every need in it has
  its audit entry and every audit entry its need (they are written in one transaction, and
  the dump pauses between tables so a non-snapshot read would tear them apart);
- a quiet backup restored into a fresh database gives back every row of every table exactly,
  PostgreSQL's id sequences continue after the restored ids, and the restored indexes are
  already in step (the start-up sync has nothing to do and `check-index` passes);
- restore verifies first: a corrupt, tampered or incomplete backup is refused and nothing
  is touched; a non-empty database is refused without --force; a row that fails in the
  database rolls the whole restore back;
- indexes that keep changing never block a backup: that side is left out and rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

import service.backup as backup
from corpora.dump import tables
from corpora.models import Need, User
from service.backup import MANIFEST_NAME, create_backup
from service.records import create_need
from tests.support.databases import postgres_schema
from tests.support.web import Site
from web import create_app
from web.database import sessions
from web.matching import build_service, service

WRITER_TITLE = "并发写入的需求"


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture
def other_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend as `db_url`, to restore into."""
    if make_url(db_url).get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite'}"
    else:
        with postgres_schema() as url:
            yield url


def fresh_app(db_url: str, home: Path) -> Flask:
    return create_app({"TESTING": True, "MATCHER_HOME": home, "DATABASE_URL": db_url,
                       "MATCHER_MODEL": "fake", "SECRET_KEY": "test-secret"})


def engine_of(app: Flask) -> Engine:
    return app.extensions["matcher.engine"]


def all_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {table.name: [tuple(row) for row in connection.execute(
            select(table).order_by(*table.primary_key.columns))] for table in tables()}


def revision_of(engine: Engine) -> str:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT version_num FROM alembic_version"))


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def read_jsonl(folder: Path, table: str) -> list[dict[str, Any]]:
    lines = (folder / "database" / f"{table}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def rewrite(folder: Path, name: str, change: Callable[[bytes], bytes],
            count_delta: int = 0) -> None:
    """Edit a backup file and fix the manifest to match, as a careful forger would: only the
    row checks (or the database) can then catch the change."""
    path = folder / name
    path.write_bytes(change(path.read_bytes()))
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    data = path.read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if count_delta:
        manifest["database"]["tables"][Path(name).stem] += count_delta
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")


class NeedWriter(threading.Thread):
    """Posts needs as firm_a through the site's own write path (need + audit entry in one
    transaction, then the index update) until stopped."""

    def __init__(self, site: Site) -> None:
        super().__init__(daemon=True)
        self.site = site
        self.stop = threading.Event()
        self.written = 0
        self.first = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.site.app.app_context():
                while not self.stop.is_set():
                    with sessions()() as db:
                        user = db.get(User, self.site.ids["user"]["firm_a"])
                        need = create_need(db, user, {
                            "title": f"{WRITER_TITLE} {self.written}",
                            "description": f"机器人视觉定位第 {self.written} 次并发测试"})
                        db.commit()
                        service().changed(db, "need", [need.id])
                    self.written += 1
                    self.first.set()
        except BaseException as error:  # reported by the test
            self.error = error
            self.first.set()


# --- backup while writing, then restore -----------------------------------------------------


def test_backup_while_writing_is_one_snapshot_and_restores_every_row(
        site: Site, other_db_url: str, tmp_path: Path) -> None:
    home = site.app.config["MATCHER_HOME"]
    writer = NeedWriter(site)
    writer.start()
    assert writer.first.wait(30) and writer.error is None
    written_before = writer.written
    live = tmp_path / "live-backup"
    # Pausing between tables gives the writer time to commit while the dump is under way.
    manifest = create_backup(engine_of(site.app), live, home=home,
                             on_table=lambda _name, _rows: writer.stop.wait(0.1))
    written_during = writer.written - written_before
    writer.stop.set()
    writer.join(30)
    assert writer.error is None
    assert written_during >= 2, "the writer did not run during the backup"

    needs = read_jsonl(live, "needs")
    audit = read_jsonl(live, "audit_log")
    created = {entry["entity_id"] for entry in audit
               if entry["action"] == "create" and entry["entity"] == "need"}
    concurrent = {need["id"] for need in needs if need["title"].startswith(WRITER_TITLE)}
    assert concurrent, "the snapshot holds none of the concurrent needs"
    assert created == concurrent  # every need with its audit entry, and the other way round
    assert manifest["database"]["tables"]["needs"] == len(needs)
    assert manifest["database"]["tables"]["audit_log"] == len(audit)
    assert set(manifest["files"]) >= {f"database/{t.name}.jsonl" for t in tables()}

    # A quiet backup through the command line restores to exactly the same rows. Quiet: the
    # site has saved its index files since the last edit (it does so in the background).
    with site.app.app_context():
        service().flush()
    quiet = tmp_path / "quiet-backup"
    made = invoke(site.app, "backup", str(quiet))
    assert made.exit_code == 0, made.output
    assert "备份完成" in made.output
    stored = json.loads((quiet / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert stored["indexes"] == {"need": {"copied": True}, "result": {"copied": True}}
    assert stored["database"]["alembic_revision"] == revision_of(engine_of(site.app))
    for name, entry in stored["files"].items():
        data = (quiet / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name

    restored = fresh_app(other_db_url, tmp_path / "restored-home")
    try:
        done = invoke(restored, "restore", str(quiet))
        assert done.exit_code == 0, done.output
        assert all_rows(engine_of(restored)) == all_rows(engine_of(site.app))
        assert revision_of(engine_of(restored)) == revision_of(engine_of(site.app))
        # The copied indexes are in step with the restored rows: no sync work at all.
        with restored.app_context():
            reports = build_service(restored).check()
        assert not any(report.changed for report in reports), reports
        check = invoke(restored, "check-index")
        assert check.exit_code == 0, check.output
        # New rows continue after the restored ids (PostgreSQL's sequences were reset).
        with restored.app_context(), sessions()() as db:
            user = db.get(User, site.ids["user"]["firm_a"])
            need = create_need(db, user, {"title": "恢复后的新需求", "description": "描述"})
            db.commit()
            assert need.id > max(row["id"] for row in needs)

        # The live (concurrent) backup restores too, over the rows just restored; its index
        # copy may be newer than its rows (or left out): the site's start-up sync repairs it.
        again = invoke(restored, "restore", str(live), "--force")
        assert again.exit_code == 0, again.output
        with restored.app_context(), sessions()() as db:
            titles = db.scalars(select(Need.title)).all()
            assert len(titles) == len(needs)
            service()  # the site starts: load the restored indexes, sync with the rows
        check = invoke(restored, "check-index")
        assert check.exit_code == 0, check.output
    finally:
        engine_of(restored).dispose()


def _utc(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Timestamps as aware UTC: SQLite gives them back naive, PostgreSQL aware."""
    def fix(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value
    return {name: [tuple(fix(v) for v in row) for row in table] for name, table in rows.items()}


@pytest.mark.postgres
def test_a_sqlite_backup_restores_into_postgresql(sqlite_site: Site, tmp_path: Path) -> None:
    """One logical format for both databases: a laptop's data moves to a server."""
    folder = tmp_path / "backup"
    assert invoke(sqlite_site.app, "backup", str(folder)).exit_code == 0
    with postgres_schema() as url:
        target = fresh_app(url, tmp_path / "pg-home")
        try:
            done = invoke(target, "restore", str(folder))
            assert done.exit_code == 0, done.output
            assert _utc(all_rows(engine_of(target))) == _utc(all_rows(engine_of(sqlite_site.app)))
            with target.app_context():
                assert not any(r.changed for r in build_service(target).check())
        finally:
            engine_of(target).dispose()


# --- restore refuses, and is all or nothing -------------------------------------------------


def test_restore_needs_force_and_rolls_back_a_failing_row(site: Site, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    assert invoke(site.app, "backup", str(folder)).exit_code == 0
    at_backup = all_rows(engine_of(site.app))
    with site.app.app_context(), sessions()() as db:
        create_need(db, db.get(User, site.ids["user"]["firm_b"]),
                    {"title": "备份之后的需求", "description": "描述"})
        db.commit()
    changed = all_rows(engine_of(site.app))

    refused = invoke(site.app, "restore", str(folder))
    assert refused.exit_code != 0 and "--force" in refused.output
    assert all_rows(engine_of(site.app)) == changed

    # A row the database refuses (a duplicate id in the last table that has rows), with the
    # checksums fixed up: the deletes and every insert before it are rolled back.
    broken = tmp_path / "broken"
    invoke(site.app, "backup", str(broken))
    last = [t.name for t in tables() if changed[t.name]][-1]
    rewrite(broken, f"database/{last}.jsonl",
            lambda data: data + data.splitlines(keepends=True)[0], count_delta=1)
    failed = invoke(site.app, "restore", str(broken), "--force")
    assert failed.exit_code != 0 and "未做任何修改" in failed.output, failed.output
    assert all_rows(engine_of(site.app)) == changed

    forced = invoke(site.app, "restore", str(folder), "--force")
    assert forced.exit_code == 0, forced.output
    assert all_rows(engine_of(site.app)) == at_backup
    # The in-process service was dropped: the next use syncs with the restored rows.
    check = invoke(site.app, "check-index")
    assert check.exit_code == 0, check.output


def _flip_a_byte(folder: Path) -> None:
    path = folder / "database" / "needs.jsonl"
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        change(manifest)
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    return apply


def _set_count(manifest: dict[str, Any]) -> None:
    manifest["database"]["tables"]["needs"] += 1


def _set_revision(manifest: dict[str, Any]) -> None:
    manifest["database"]["alembic_revision"] = "9999"


def _traversal(manifest: dict[str, Any]) -> None:
    manifest["files"]["../outside.txt"] = {"sha256": "0" * 64, "bytes": 0}


def _typed_wrong(folder: Path) -> None:
    def change(data: bytes) -> bytes:
        rows = [json.loads(line) for line in data.splitlines()]
        rows[0]["budget_min"] = "很多"
        return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)
    rewrite(folder, "database/needs.jsonl", change)


def _extra_column(folder: Path) -> None:
    def change(data: bytes) -> bytes:
        rows = [json.loads(line) for line in data.splitlines()]
        rows[0]["is_admin"] = True
        return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)
    rewrite(folder, "database/users.jsonl", change)


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "manifest not json": (lambda f: (f / MANIFEST_NAME).write_text("{oops", "utf-8"), "JSON"),
    "manifest missing": (lambda f: (f / MANIFEST_NAME).unlink(), MANIFEST_NAME),
    "manifest a list": (lambda f: (f / MANIFEST_NAME).write_text("[]", "utf-8"), "对象"),
    "other format": (_edit_manifest(lambda m: m.update(format="zip")), "格式"),
    "flipped byte": (_flip_a_byte, "校验和不符"),
    "file missing": (lambda f: (f / "database" / "users.jsonl").unlink(), "缺少文件"),
    "unlisted file": (lambda f: (f / "database" / "evil.jsonl").write_text("{}\n"), "清单中没有"),
    "row count": (_edit_manifest(_set_count), "行"),
    "unknown revision": (_edit_manifest(_set_revision), "9999"),
    "path traversal": (_edit_manifest(_traversal), "路径不合法"),
    "wrong type, rehashed": (_typed_wrong, "不是数字"),
    "extra column, rehashed": (_extra_column, "is_admin"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_a_corrupt_backup_is_refused_before_anything_is_touched(
        sqlite_site: Site, tmp_path: Path, case: str) -> None:
    folder = tmp_path / "backup"
    assert invoke(sqlite_site.app, "backup", str(folder)).exit_code == 0
    corrupt, fragment = CORRUPTIONS[case]
    corrupt(folder)
    home = tmp_path / "target-home"
    target = fresh_app(f"sqlite:///{tmp_path / 'target.sqlite'}", home)
    try:
        before = all_rows(engine_of(target))
        result = invoke(target, "restore", str(folder), "--force")
        assert result.exit_code != 0
        assert fragment in result.output, result.output
        assert all_rows(engine_of(target)) == before
        assert not (home / "indexes").exists()
        assert not list(home.glob(".indexes-*"))
    finally:
        engine_of(target).dispose()


# --- indexes never block a backup -----------------------------------------------------------


def test_indexes_never_block_a_backup_and_a_torn_side_is_rebuilt(
        sqlite_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup, "INDEX_RETRY_SECONDS", 0)
    home = sqlite_site.app.config["MATCHER_HOME"]
    # A save of the need side half-way: its BM25 file is not the one hashes.json names.
    words = home / "indexes" / "need" / "lexical" / "postings.npz"
    words.write_bytes(words.read_bytes() + b"\0")
    folder = tmp_path / "backup"
    # A writer holding the index folder's lock (a long save) does not hold the backup up.
    with open(home / "indexes" / ".write.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        made = invoke(sqlite_site.app, "backup", str(folder))
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    assert made.exit_code == 0, made.output
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["indexes"]["need"] == {"copied": False, "reason": "索引正在写入"}
    assert manifest["indexes"]["result"] == {"copied": True}
    assert not (folder / "indexes" / "need").exists()

    target = fresh_app(f"sqlite:///{tmp_path / 'target.sqlite'}", tmp_path / "target-home")
    try:
        assert invoke(target, "restore", str(folder)).exit_code == 0
        saved = {r.side: r for r in invoke_check(target)}
        assert saved["need"].added == 3 and not saved["result"].changed
        with target.app_context():
            service()  # the site starts: the need side is rebuilt by the start-up sync
        check = invoke(target, "check-index")
        assert check.exit_code == 0, check.output
    finally:
        engine_of(target).dispose()


def invoke_check(app: Flask) -> list[Any]:
    """How the saved index files differ from the database, without starting the service."""
    with app.app_context():
        return build_service(app).check()


def test_backup_refuses_a_folder_in_use(sqlite_site: Site, tmp_path: Path) -> None:
    folder = tmp_path / "used"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine", encoding="utf-8")
    result = invoke(sqlite_site.app, "backup", str(folder))
    assert result.exit_code != 0 and "不是空目录" in result.output
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".used.partial-*"))
