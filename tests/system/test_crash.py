"""A process killed outright (SIGKILL) loses no committed record and leaves no broken index.

Three real processes are killed at the worst moments: `flask import` while its transaction is
writing, and again just after it committed, while it indexes; `flask reindex --full` half-way
(one side saved, the other not); and a loop that saves index files, at random instants. After
each, a restart (the site's start-up repair) brings every committed record back into the
indexes: `check-index` agrees, searches find them, and no temporary file is left. SQLite, with
the fake encoder; the same code paths run on PostgreSQL in test_workers. The import and reindex
kills run with the vectors in the process (FAISS) and on Milvus (a Milvus Lite server).
"""

from __future__ import annotations

import csv
import inspect
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from sqlalchemy import func, select

from corpora.models import Result
from tests.support.milvus import milvus_server
from tests.support.servers import REPO, SECRET, flask_cli, seed_site, site_env
from web import create_app
from web.database import sessions
from web.matching import service

ORGANISATION = "示例理工大学"  # seeded by tests.support.web
BIG = 3000
KILLS = 4
WORDS = ["石墨烯", "锂电池", "正极", "涂层", "视觉", "检测", "机器人", "伺服", "传感器", "复合材料",
         "催化剂", "膜分离", "光伏", "封装", "芯片", "算法", "抗体", "疫苗", "纳米", "陶瓷"]


def write_results_csv(path: Path, count: int, tag: str) -> list[str]:
    """`count` distinct results; returns their titles. Each carries a unique code."""
    rng = random.Random(tag)
    titles = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["成果名称", "摘要"])
        for n in range(count):
            a, b, c = rng.sample(WORDS, 3)
            code = f"{tag}{n:05d}"
            titles.append(f"{a}{b}成果{code}")
            writer.writerow([titles[-1], f"一种{a}与{b}结合的{c}方法，编号{code}，提高性能。"])
    return titles


@contextmanager
def running(env: dict[str, str], *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `flask --app web ...` process, killed and reaped however the block ends."""
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "web", *args],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def kill_when(process: subprocess.Popen[bytes], condition: Callable[[], bool], log: Path,
              timeout: float = 60) -> None:
    """SIGKILL `process` the moment `condition()` holds; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=30) == -signal.SIGKILL
            return
        if process.poll() is not None:
            pytest.fail(f"finished ({process.returncode}) before the kill point:\n"
                        f"{log.read_text(encoding='utf-8', errors='replace')[-3000:]}")
        time.sleep(0.005)
    pytest.fail("kill point not reached")


def sqlite_writing(path: Path) -> bool:
    """Does some process hold the database's write lock (a write transaction is open)?"""
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        connection.close()


def count_titles(path: Path, titles: list[str]) -> int:
    connection = sqlite3.connect(path)
    try:
        wanted = set(titles)
        return sum(1 for (title,) in connection.execute("SELECT title FROM results")
                   if title in wanted)
    finally:
        connection.close()


@pytest.fixture(params=["faiss", pytest.param("milvus", marks=pytest.mark.milvus)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The settings that put the vectors in the process (none) or on a Milvus server."""
    if request.param == "faiss":
        yield {}
        return
    with milvus_server(tmp_path / "milvus") as server:
        yield {"INDEX_BACKEND": "milvus", "MILVUS_URI": server.uri}


def restarted_app(home: Path, db_url: str, backend: dict[str, str]) -> Flask:
    """The site as a fresh process builds it: load the saved indexes, repair, serve."""
    app = create_app({"TESTING": True, "MATCHER_HOME": home, "DATABASE_URL": db_url,
                      "MATCHER_MODEL": "fake", "SECRET_KEY": SECRET, **backend})
    with app.app_context():
        service()
    return app


def assert_matchable(app: Flask, titles: list[str]) -> None:
    """Each title's record is the best match of a search for that title."""
    with app.app_context(), sessions()() as db:
        ids = {title: id_ for title, id_ in db.execute(
            select(Result.title, Result.id).where(Result.title.in_(titles)))}
        assert set(ids) == set(titles)
        for title in titles:
            assert service().search(title, "result", k=3)[0].id == ids[title], title


def temporaries(home: Path) -> list[Path]:
    return list((home / "indexes").rglob(".tmp-*"))


def test_sigkill_during_a_bulk_import_loses_no_committed_record(tmp_path: Path,
        backend: dict[str, str]) -> None:
    home, db_path = tmp_path / "home", tmp_path / "site.sqlite"
    db_url = f"sqlite:///{db_path}"
    seed_site(home, db_url)
    env = site_env(home, db_url) | backend
    small = write_results_csv(tmp_path / "small.csv", 20, "QS")
    big = write_results_csv(tmp_path / "big.csv", BIG, "QB")
    done = flask_cli(env, "import", str(tmp_path / "small.csv"), "--side", "result",
                     "--organisation", ORGANISATION)
    assert done.returncode == 0, done.stdout + done.stderr

    # 1. Killed while its one transaction is writing: nothing of the file is in the database.
    log = tmp_path / "import1.log"
    with running(env, "import", str(tmp_path / "big.csv"), "--side", "result",
                 "--organisation", ORGANISATION, log=log) as process:
        kill_when(process, lambda: sqlite_writing(db_path), log)
    assert count_titles(db_path, big) in (0, BIG)  # all or nothing, never part
    assert count_titles(db_path, small) == len(small)

    # 2. Run again and killed right after its commit, while it brings the indexes up to date.
    log = tmp_path / "import2.log"
    with running(env, "import", str(tmp_path / "big.csv"), "--side", "result",
                 "--organisation", ORGANISATION, log=log) as process:
        kill_when(process, lambda: count_titles(db_path, big[-1:]) == 1, log)
    assert count_titles(db_path, big) == BIG
    stale = flask_cli(env, "check-index")  # the files as the killed process left them
    assert stale.returncode == 1 and "result: " in stale.stdout, stale.stdout + stale.stderr

    # Restart: the start-up repair indexes every committed record; nothing half-written stays.
    app = restarted_app(home, db_url, backend)
    try:
        assert temporaries(home) == []
        check = flask_cli(env, "check-index")
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"共 {BIG + 20 + 5} 条" in check.stdout  # the seeded 5, the small file, the big
        assert_matchable(app, small + big[::300] + big[-1:])
    finally:
        app.extensions["matcher.engine"].dispose()


def test_sigkill_during_a_full_reindex_then_restart_repairs(tmp_path: Path,
        backend: dict[str, str]) -> None:
    home, db_path = tmp_path / "home", tmp_path / "site.sqlite"
    db_url = f"sqlite:///{db_path}"
    seed_site(home, db_url)
    env = site_env(home, db_url) | backend
    titles = write_results_csv(tmp_path / "big.csv", BIG, "QR")
    done = flask_cli(env, "import", str(tmp_path / "big.csv"), "--side", "result",
                     "--organisation", ORGANISATION)
    assert done.returncode == 0, done.stdout + done.stderr
    # Change the database behind the saved indexes: the reindex (and then the repair) has
    # additions, edits and withdrawals to apply.
    app = restarted_app(home, db_url, backend)
    try:
        with app.app_context(), sessions()() as db:
            rows = {r.title: r for r in db.scalars(select(Result).where(
                Result.title.in_(titles[:30])))}
            for title in titles[:10]:
                rows[title].status = "withdrawn"
            for title in titles[10:20]:
                rows[title].abstract += "（已补充中试数据）"
            db.commit()
            total = db.scalar(select(func.count()).select_from(Result)
                              .where(Result.status == "active"))
    finally:
        app.extensions["matcher.engine"].dispose()

    # Killed half-way: the need side (saved first) is new, the result side is not yet.
    need_hashes = home / "indexes" / "need" / "hashes.json"
    before = need_hashes.stat().st_mtime_ns
    log = tmp_path / "reindex.log"
    with running(env, "reindex", "--full", log=log) as process:
        kill_when(process, lambda: need_hashes.stat().st_mtime_ns != before, log)
    stale = flask_cli(env, "check-index")
    assert stale.returncode == 1, stale.stdout + stale.stderr

    app = restarted_app(home, db_url, backend)
    try:
        assert temporaries(home) == []
        check = flask_cli(env, "check-index")
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"result: 增量同步, 新增 0, 更新 0, 删除 0, 共 {total} 条" in check.stdout
        assert_matchable(app, titles[10:20] + titles[30::500])
        with app.app_context():
            for title in titles[:10]:
                assert title not in [service().item("result", m.id).title  # type: ignore[union-attr]
                                     for m in service().search(title, "result", k=5)]
    finally:
        app.extensions["matcher.engine"].dispose()


SAVER = """
import sys
from pathlib import Path
from corpora.db import create_engine_for, make_sessionmaker
from corpora.items import DatabaseItems
from corpora.models import Result
from embeddings.fake import FakeEncoder
from matcher.indexing import IndexStore
from matcher.tokenize import tokenize

home, url, result_id = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sessions = make_sessionmaker(create_engine_for(url))
store = IndexStore(home, FakeEncoder())
store.load()
with sessions() as session:
    store.sync(DatabaseItems(session))
    row = session.get(Result, result_id)
    tokenize("预热分词词典")  # jieba loads its dictionary once (a second): not in the loop
    print("saving", flush=True)
    for n in range(1, 100000):  # edit one record over and over, re-indexing and saving each time
        row.abstract = version(n)
        session.commit()
        store.items_changed(DatabaseItems(session), "result", [result_id])
"""


def version(n: int) -> str:
    return f"第{n}版：一种{WORDS[n % len(WORDS)]}与{WORDS[n * 7 % len(WORDS)]}结合的方法"


def test_sigkill_while_saving_never_leaves_an_index_that_loads_wrong(tmp_path: Path) -> None:
    """Kill a process that saves the index in a loop, at random instants: what `load` then
    accepts is one whole save (the edited record's vector is the one of the text its hash
    names), or it is refused; either way a sync makes it whole again."""
    from corpora.db import create_engine_for, make_sessionmaker
    from corpora.items import DatabaseItems
    from corpora.models import content_hash_of
    from embeddings.base import encode_document_windows
    from embeddings.fake import FakeEncoder
    from matcher.indexing import IndexStore
    from matcher.types import Item
    from tests.support.web import RESULTS

    home, db_url = tmp_path / "home", f"sqlite:///{tmp_path / 'site.sqlite'}"
    result_id = seed_site(home, db_url)["result"]["锂电池正极材料包覆工艺"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = f"WORDS = {WORDS!r}\n" + inspect.getsource(version) + SAVER
    engine = create_engine_for(db_url)
    encoder = FakeEncoder()
    original = next(r[2] for r in RESULTS if r[1] == "锂电池正极材料包覆工艺")
    rng = random.Random(7)
    refused = 0
    try:
        for attempt in range(KILLS):
            log = tmp_path / f"saver{attempt}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-c", script, str(home), db_url, str(result_id)],
                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                # Once it saves in a loop, let it run a random while and kill it: most often
                # in the middle of a save, since that is where it spends its time.
                deadline = time.monotonic() + 30
                while b"saving" not in log.read_bytes():
                    assert process.poll() is None and time.monotonic() < deadline, \
                        log.read_text(encoding="utf-8", errors="replace")
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.02, 0.3))
                assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
                process.send_signal(signal.SIGKILL)
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=30)

            store = IndexStore(home, encoder)
            store.load()
            assert temporaries(home) == []
            with make_sessionmaker(engine)() as session:
                row = session.get(Result, result_id)
                assert row is not None
                indexed = store._indexed_hashes["result"].get(result_id)
                if "result" not in store.load_problems and indexed is not None:
                    # Accepted: the vector held is the one of the text hashes.json names.
                    texts = {content_hash_of("result", row.title, text, row.keyword_list): text
                             for text in [original, *map(version, range(1, 20000))]}
                    assert indexed in texts
                    item = Item(result_id, "result", row.title, texts[indexed],
                                keywords=tuple(row.keyword_list))
                    expected = encode_document_windows(encoder, [item.full_text])[0][0]
                    stored = store.matcher.collections["result"].vectors.vectors(
                        np.array([result_id], dtype=np.int64))[0]
                    np.testing.assert_allclose(stored, expected, atol=1e-5)
                else:
                    refused += 1
                store.sync(DatabaseItems(session))
                assert not any(r.changed for r in store.check(DatabaseItems(session)))
                assert store.matcher.search(row.abstract, side="result", k=1)[0].id == result_id
    finally:
        engine.dispose()
    print(f"{refused} of {KILLS} killed saves left files that load refused (then rebuilt)")
