"""Two worker processes over one database and one MATCHER_HOME see each other's edits.

Each worker holds its own in-memory indexes; the `index_changes` log (corpora.changes) tells
each what the others committed. These tests start two real gunicorn servers on two ports and,
over HTTP, write through one and search through the other: a new need is found within a second,
a withdrawn result is never served again. Then writers and searchers run on both at once, and
afterwards no request has failed and the saved indexes agree with the database, as a separate
`flask check-index` process sees them. On SQLite and on PostgreSQL, and with the vectors in
each worker (FAISS) or in one Milvus both share (a Milvus Lite server on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.milvus import milvus_server
from tests.support.servers import REPO, SECRET, flask_cli, seed_site, site_env
from tests.support.web import PASSWORD
from web import create_app

VISIBLE_WITHIN_S = 1.0


# --- running servers ----------------------------------------------------------------------


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now and not handed to another server of this test run: the OS may offer
    a just-closed port again before the first server has bound it."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class Worker:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


def start_worker(name: str, env: dict[str, str], log_dir: Path) -> Worker:
    """One gunicorn server (one worker process, four threads) on a free port. No control
    socket: its default path is per user, shared with any other gunicorn on the machine."""
    port = free_port()
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4",
             "-b", f"127.0.0.1:{port}", "--graceful-timeout", "3", "--no-control-socket",
             "web.wsgi:app"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Worker(name, port, process, log)


def wait_ready(worker: Worker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(f"{worker.name} exited with {worker.process.returncode}:\n"
                        f"{worker.output()}")
        try:
            if call(worker, "GET", "/login", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{worker.name} not serving after {timeout}s:\n{worker.output()}")


def stop_worker(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout=15)


# --- HTTP ---------------------------------------------------------------------------------


def call(worker: Worker, method: str, path: str, token: str | None = None,
         body: Any = None, timeout: float = 20) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", data=data,
                                     method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        try:
            status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        finally:
            error.close()
    text = raw.decode("utf-8", errors="replace")
    return status, json.loads(text) if "json" in kind else text


def api_token(worker: Worker, username: str) -> str:
    status, body = call(worker, "POST", "/api/v1/token", None,
                        {"username": username, "password": PASSWORD})
    assert status == 200, body
    return body["token"]


def found(worker: Worker, token: str, text: str, side: str, k: int = 10) -> list[int]:
    """Ids a search on `worker` returns, best first."""
    query = urllib.parse.urlencode({"q": text, "side": side, "k": k})
    status, body = call(worker, "GET", f"/api/v1/search?{query}", token)
    assert status == 200, body
    return [m["id"] for m in body["matches"]]


def wait_until(condition: Callable[[], bool], within: float) -> float:
    """Seconds until `condition()` held (polled every 20 ms); fails after `within`."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > within:
            pytest.fail(f"not true within {within}s")
        time.sleep(0.02)


@dataclass
class TwoWorkers:
    a: Worker
    b: Worker
    env: dict[str, str]
    ids: dict[str, Any]
    tokens: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=["faiss", pytest.param("milvus", marks=pytest.mark.milvus)])
def workers(request: pytest.FixtureRequest, db_url: str, tmp_path: Path
            ) -> Iterator[TwoWorkers]:
    if request.param == "milvus":
        with milvus_server(tmp_path / "milvus") as server:
            yield from _two_workers(db_url, tmp_path, {"INDEX_BACKEND": "milvus",
                                                       "MILVUS_URI": server.uri})
    else:
        yield from _two_workers(db_url, tmp_path, {})


def _two_workers(db_url: str, tmp_path: Path, backend: dict[str, str]
                 ) -> Iterator[TwoWorkers]:
    home = tmp_path / "home"
    ids = seed_site(home, db_url)
    env = site_env(home, db_url) | backend
    # Both start at once on a folder with no index yet: their start-up syncs meet too.
    started = [start_worker(name, env, tmp_path) for name in ("a", "b")]
    try:
        for worker in started:
            wait_ready(worker)
        pair = TwoWorkers(started[0], started[1], env, ids)
        for username in ("firm_a", "firm_b", "office_u1", "office_u2", "officer"):
            pair.tokens[username] = api_token(pair.a, username)
        for worker in started:  # the first search loads jieba's dictionary: not timed below
            for side in ("need", "result"):
                found(worker, pair.tokens["officer"], "机器人视觉", side)
        yield pair
    finally:
        for worker in started:
            stop_worker(worker)


# --- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["faiss", pytest.param("milvus", marks=pytest.mark.milvus)])
def test_a_service_applies_what_another_process_committed(db_url: str, tmp_path: Path,
                                                          backend: str) -> None:
    """Two services in one test process stand for two workers (the same code path as HTTP,
    without servers): the second learns of the first's commits from the change log alone."""
    if backend == "milvus":
        with milvus_server(tmp_path / "milvus") as server:
            _two_services(db_url, tmp_path, {"INDEX_BACKEND": "milvus", "MILVUS_URI": server.uri})
    else:
        _two_services(db_url, tmp_path, {})


def _two_services(db_url: str, tmp_path: Path, backend: dict[str, str]) -> None:
    from corpora.models import Need, Result
    from web.database import sessions
    from web.matching import service

    home = tmp_path / "home"
    ids = seed_site(home, db_url)
    config = {"TESTING": True, "MATCHER_HOME": home, "DATABASE_URL": db_url,
              "MATCHER_MODEL": "fake", "SECRET_KEY": SECRET, "INDEX_POLL_SECONDS": 0,
              **backend}
    one, two = create_app(config), create_app(config)
    try:
        with one.app_context():
            first = service()
        with two.app_context():
            second = service()
        result_id = ids["result"]["抗体制剂稳定配方"]
        assert result_id in [m.id for m in second.search("抗体制剂稳定配方", "result")]
        with one.app_context(), sessions()() as db:
            need = Need(title="量子点显示膜", description="需要量子点显示膜的制备方法",
                        organisation_id=ids["org"]["甲智能装备有限公司"])
            db.add(need)
            db.get(Result, result_id).status = "withdrawn"
            db.commit()
            first.changed(db, "need", [need.id])
            first.changed(db, "result", [result_id])
        # Straight from the second's index, before any database filter: added and dropped.
        assert [m.id for m in second.search("量子点显示膜", "need", k=1)] == [need.id]
        assert result_id not in [m.id for m in second.search("抗体制剂稳定配方", "result")]
        assert second.check() == first.check()
        assert not any(r.changed for r in second.check())

        # A log that went backwards (another database behind this folder): a full sync.
        second.applied_change += 1000
        second.catch_up(force=True)
        assert second.applied_change < 1000 and not any(r.changed for r in second.check())
    finally:
        for app in (one, two):
            app.extensions["matcher.engine"].dispose()


def test_edits_on_one_worker_are_served_by_the_other_within_a_second(
        workers: TwoWorkers) -> None:
    a, b, tokens = workers.a, workers.b, workers.tokens
    firm, office = tokens["firm_a"], tokens["office_u1"]
    delays: dict[str, float] = {}

    # A new need posted through A: B's search finds it.
    title = "超导量子比特芯片低温封装工艺"
    status, need = call(a, "POST", "/api/v1/needs", firm, {
        "title": title, "description": "需要稀释制冷机内超导量子比特芯片的低温封装工艺。"})
    assert status == 201, need
    delays["new need A→B"] = wait_until(lambda: need["id"] in found(b, firm, title, "need"),
                                        VISIBLE_WITHIN_S)
    assert found(b, firm, title, "need")[0] == need["id"]

    # Its edit through B: A's search finds the new wording.
    new_title = "稀土永磁电机退磁检测装置"
    status, body = call(b, "PATCH", f"/api/v1/needs/{need['id']}", firm, {
        "title": new_title, "description": "需要在线检测稀土永磁同步电机转子退磁程度的装置。"})
    assert status == 200, body
    delays["edited need B→A"] = wait_until(
        lambda: found(a, firm, new_title, "need", k=1) == [need["id"]], VISIBLE_WITHIN_S)

    # A result withdrawn through A: B never returns it again, not even once.
    result_title = "基于深度学习的机器人视觉定位方法"
    result_id = workers.ids["result"][result_title]
    need_id = workers.ids["need"]["工业机器人视觉抓取精度提升"]
    assert result_id in found(b, firm, result_title, "result")
    status, body = call(a, "PATCH", f"/api/v1/results/{result_id}", office,
                        {"status": "withdrawn"})
    assert status == 200 and body["status"] == "withdrawn", body
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert result_id not in found(b, firm, result_title, "result")
        status, body = call(b, "GET", f"/api/v1/needs/{need_id}/matches?k=100", firm)
        assert status == 200 and result_id not in [m["id"] for m in body["matches"]]
    # Restored through B: A serves it again.
    status, body = call(b, "PATCH", f"/api/v1/results/{result_id}", office, {"status": "active"})
    assert status == 200, body
    delays["restored result B→A"] = wait_until(
        lambda: result_id in found(a, firm, result_title, "result"), VISIBLE_WITHIN_S)

    # A closed need leaves the other worker's searches at once as well.
    status, body = call(b, "PATCH", f"/api/v1/needs/{need['id']}", firm, {"status": "closed"})
    assert status == 200, body
    assert need["id"] not in found(a, firm, new_title, "need")

    print("propagation delays (s):", {k: round(v, 3) for k, v in delays.items()})
    assert all(delay < VISIBLE_WITHIN_S for delay in delays.values())


def test_concurrent_writers_and_searchers_leave_consistent_indexes(
        workers: TwoWorkers) -> None:
    """Both workers write and search for a few seconds at once; no request fails, every
    record ends up where the database says, and `check-index` finds no difference."""
    a, b, tokens, ids = workers.a, workers.b, workers.tokens, workers.ids
    failures: list[str] = []
    created: dict[int, str] = {}  # need id -> its unique title
    final_status: dict[int, str] = {}
    stop = threading.Event()
    lock = threading.Lock()
    done: dict[str, int] = {}

    def request(worker: Worker, method: str, path: str, token: str, body: Any = None,
                expect: int = 200) -> Any:
        with lock:
            key = f"{worker.name} {'search' if method == 'GET' else 'write'}"
            done[key] = done.get(key, 0) + 1
        try:
            status, answer = call(worker, method, path, token, body)
        except Exception as error:  # noqa: BLE001 - every failure is reported below
            with lock:
                failures.append(f"{worker.name} {method} {path}: {error!r}")
            return None
        if status != expect:
            with lock:
                failures.append(f"{worker.name} {method} {path}: {status} {answer}")
            return None
        return answer

    def firm_writer(worker: Worker, firm: str, tag: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            code = hashlib.sha256(f"{tag}{n}".encode()).hexdigest()[:8]  # one unique word
            title = f"{tag}第{n}号需求 高精度传感器标定 {code}"
            need = request(worker, "POST", "/api/v1/needs", tokens[firm],
                           {"title": title, "description": f"{tag}需要第{n}代传感器自动标定方法。"},
                           expect=201)
            if need is None:
                continue
            if n % 2 == 0:  # edit every other one through the *other* worker
                other = b if worker is a else a
                title = f"{tag}第{n}号需求 激光雷达点云配准 {code}"
                if request(other, "PATCH", f"/api/v1/needs/{need['id']}", tokens[firm],
                           {"title": title}) is None:
                    continue
            with lock:
                created[need["id"]] = title

    def office_writer(worker: Worker, office: str, result_id: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            status = "withdrawn" if n % 2 else "active"
            if request(worker, "PATCH", f"/api/v1/results/{result_id}", tokens[office],
                       {"status": status}) is not None:
                final_status[result_id] = status
            time.sleep(0.05)

    def searcher(worker: Worker) -> None:
        queries = [("传感器标定", "need"), ("抗体制剂稳定性", "result"),
                   ("机器人视觉定位", "result"), ("激光雷达点云", "need")]
        n = 0
        while not stop.is_set():
            q, side = queries[n % len(queries)]
            n += 1
            request(worker, "GET", "/api/v1/search?" + urllib.parse.urlencode(
                {"q": q, "side": side}), tokens["officer"])

    titles = {ids["result"][t]: t for t in ("基于深度学习的机器人视觉定位方法", "抗体制剂稳定配方")}
    visual, antibody = titles
    threads = [
        threading.Thread(target=firm_writer, args=(a, "firm_a", "甲")),
        threading.Thread(target=firm_writer, args=(b, "firm_b", "乙")),
        threading.Thread(target=office_writer, args=(a, "office_u1", visual)),
        threading.Thread(target=office_writer, args=(b, "office_u2", antibody)),
        threading.Thread(target=searcher, args=(a,)),
        threading.Thread(target=searcher, args=(b,)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    print("requests in 3 s:", done)
    assert failures == []
    assert len(created) >= 4, created

    firm = tokens["firm_a"]
    for worker in (a, b):
        for need_id, title in created.items():
            wait_until(lambda w=worker, i=need_id, t=title: found(w, firm, t, "need", k=1) == [i],
                       VISIBLE_WITHIN_S)
        for result_id, status in final_status.items():
            title = titles[result_id]
            if status == "active":
                wait_until(lambda w=worker, i=result_id, t=title: i in found(w, firm, t, "result"),
                           VISIBLE_WITHIN_S)
            else:
                assert result_id not in found(worker, firm, title, "result")

    # The files on disk, loaded by a third process without a start-up repair, once the
    # workers' background saves have run: whichever worker saved last, no older state won.
    checks: list[subprocess.CompletedProcess[str]] = []
    wait_until(lambda: checks.append(flask_cli(workers.env, "check-index"))
               or checks[-1].returncode == 0, 30)
    assert checks[-1].stdout.count("新增 0, 更新 0, 删除 0") == 2, checks[-1].stdout
    for worker in (a, b):
        assert "Traceback" not in worker.log.read_text(encoding="utf-8"), worker.output()
