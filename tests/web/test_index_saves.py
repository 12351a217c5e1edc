"""Index files are saved in the background, from snapshots, and never go back in time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corpora.changes import latest_change_id
from corpora.models import Need
from matcher import indexing
from matcher.indexing import IndexStore
from tests.support.web import Site, make_site
from web.database import sessions
from web.matching import build_service, service


@pytest.fixture
def new_site(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def make(**config: object) -> Site:
        made.append(make_site(db_url, tmp_path / "home", **config))
        return made[-1]

    yield make
    for site in made:
        with site.app.app_context():
            service().flush()  # no timer left to fire after the test
        site.app.extensions["matcher.engine"].dispose()


def saved_items(home: Path, side: str) -> dict[str, str]:
    hashes = json.loads((home / "indexes" / side / "hashes.json").read_text(encoding="utf-8"))
    return hashes["items"]


def post_need(site: Site, title: str) -> int:
    with site.app.app_context(), sessions()() as db:
        need = Need(title=title, description=f"{title}：需要相关技术方案",
                    organisation_id=site.ids["org"]["甲智能装备有限公司"])
        db.add(need)
        db.commit()
        service().changed(db, "need", [need.id])
        return need.id


def test_an_edit_is_matchable_at_once_and_saved_after_the_delay(new_site):
    site = new_site(INDEX_SAVE_SECONDS=0.3)
    home = site.app.config["MATCHER_HOME"]
    need_id = post_need(site, "量子点显示膜制备")
    with site.app.app_context():
        assert [m.id for m in service().search("量子点显示膜制备", "need", k=1)] == [need_id]
        assert service().store.unsaved() == {"need"}
    assert str(need_id) not in saved_items(home, "need")  # the request did not wait for it
    deadline = time.monotonic() + 10
    while str(need_id) not in saved_items(home, "need"):
        assert time.monotonic() < deadline, "the background save did not run"
        time.sleep(0.05)
    with site.app.app_context():
        assert service().store.unsaved() == set()
        assert not any(r.changed for r in build_service(site.app).check())


def test_edits_a_killed_process_never_saved_are_repaired_at_start(new_site):
    # A delay longer than the test: the files never see the edit, as if the process died.
    site = new_site(INDEX_SAVE_SECONDS=3600)
    need_id = post_need(site, "钙钛矿叠层电池封装")
    with site.app.app_context():
        stale = build_service(site.app).check()
        assert {r.side: r.added for r in stale}["need"] == 1
        restarted = build_service(site.app)  # what a new worker does at start
        reports = {r.side: r for r in restarted.start()}
        assert reports["need"].added == 1 and not reports["result"].changed
        assert [m.id for m in restarted.search("钙钛矿叠层电池封装", "need", k=1)] == [need_id]


def test_an_older_snapshot_never_replaces_a_newer_save(new_site):
    site = new_site(INDEX_SAVE_SECONDS=3600)
    home = site.app.config["MATCHER_HOME"]
    with site.app.app_context():
        svc = service()
        store: IndexStore = svc.store
        with svc._lock:
            older = store.snapshot("need", svc.applied_change)
        need_id = post_need(site, "高速列车轴承故障诊断")
        with svc._lock:
            newer = store.snapshot("need", svc.applied_change)
        assert newer.change_id > older.change_id
        assert store.write_snapshot(newer)
        assert str(need_id) in saved_items(home, "need")
        # A slow writer (another worker, or this one's earlier save) comes in late: skipped.
        assert not store.write_snapshot(older)
        assert str(need_id) in saved_items(home, "need")
        assert not store.write_snapshot(newer)  # the same state twice is written once
        with svc.sessions() as session:
            assert latest_change_id(session) == newer.change_id


def test_a_failed_background_save_is_retried(new_site, monkeypatch):
    site = new_site(INDEX_SAVE_SECONDS=0.2)
    home = site.app.config["MATCHER_HOME"]
    with site.app.app_context():
        store = service().store
    real_save = indexing.save_packed
    failures: list[Path] = []

    def failing_once(packed, directory):  # noqa: ANN001, ANN202
        if not failures:
            failures.append(directory)
            raise OSError("disk full")
        return real_save(packed, directory)

    monkeypatch.setattr(indexing, "save_packed", failing_once)
    need_id = post_need(site, "海上风电叶片防腐涂层")
    deadline = time.monotonic() + 10
    while str(need_id) not in saved_items(home, "need"):
        assert time.monotonic() < deadline, "the failed save was not retried"
        time.sleep(0.05)
    assert failures == [home / "indexes" / "need" / "lexical"] and store.unsaved() == set()


def test_coverage_follows_edits_at_most_every_max_age(new_site):
    site = new_site(COVERAGE_MAX_AGE_SECONDS=3600)
    with site.app.app_context():
        svc = service()
        first = svc.coverage()
        assert svc.coverage() is first  # nothing changed: computed once
        need_id = post_need(site, "机器人视觉定位误差补偿")
        # Changed since, but younger than the maximum age: the same figures are served.
        assert svc.coverage() is first
        assert need_id not in first.best_of_need  # not searched yet
        svc.coverage_max_age = 0
        # Old enough now: still served at once, while new figures are computed behind it.
        assert svc.coverage() is first
        deadline = time.monotonic() + 10
        while (fresh := svc.coverage()) is first:
            assert time.monotonic() < deadline, "the coverage was not recomputed"
            time.sleep(0.02)
        assert need_id in fresh.best_of_need  # searched for its matches
        assert svc.coverage() is fresh  # and cached again until the next edit


@pytest.mark.parametrize("name", ["INDEX_SAVE_SECONDS", "COVERAGE_MAX_AGE_SECONDS"])
def test_the_delays_come_from_the_environment_and_bad_values_are_refused(monkeypatch, name):
    from web.config import load_config

    monkeypatch.setenv(name, "2.5")
    assert load_config({"SECRET_KEY": "k", "MATCHER_HOME": "/nonexistent"})[name] == 2.5
    monkeypatch.delenv(name)
    assert load_config({"SECRET_KEY": "k", "MATCHER_HOME": "/nonexistent"})[name] == 30.0
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValueError, match=name):
            load_config({"SECRET_KEY": "k", "MATCHER_HOME": "/nonexistent"})
