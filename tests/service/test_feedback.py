"""A need's marks shape its ranking (service.feedback): 不相关 results leave the list and come
back on undo, 相关 ones pull similar results up; the marks export as a set `evaluate` scores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from corpora.db import make_sessionmaker
from corpora.models import Need, Organisation, Result, User
from embeddings.fake import FakeEncoder
from matcher.cli import main as matcher_main
from matcher.indexing import IndexStore
from service.cli import main as service_main
from service.feedback import BETA, marked_matches, rocchio
from service.judgments import export_judgments
from service.matching import MatchService
from service.records import mark_match, unmark_match

NEED = ("伺服电机振动抑制", "伺服电机在高速换向时振动明显，需要振动抑制控制算法。")
# LIKED answers the need; SIMILAR shares its notch-filter vocabulary but few of the need's
# words, so it ranks below the OTHERS until a 相关 mark on LIKED moves the query toward it.
LIKED = ("伺服电机振动抑制控制器",
         "一种伺服电机振动抑制控制器，采用陷波滤波与自适应谐振辨识，降低高速换向振动。")
SIMILAR = ("伺服驱动陷波滤波自适应谐振辨识方法",
           "一种伺服驱动器的陷波滤波与自适应谐振辨识方法，在线辨识机械谐振频率，整定陷波滤波参数，"
           "降低振动。")
OTHERS = [
    ("电机控制算法教学平台", "面向高校的电机控制算法教学实验平台，演示换向。"),
    ("高速列车换向装置", "一种列车的换向结构。"),
    ("振动传感器封装", "一种振动传感器的封装结构，提高可靠性，适合电机。"),
    ("锂电池正极材料包覆工艺", "一种高镍三元正极材料的包覆改性工艺，提高循环稳定性。"),
]


@pytest.fixture
def seeded(sqlite_engine: Engine, tmp_path: Path) -> tuple[MatchService, dict[str, int]]:
    sessions = make_sessionmaker(sqlite_engine)
    ids: dict[str, int] = {}
    with sessions() as session:
        firm = Organisation(name="甲公司", kind="firm", is_sample=True)
        university = Organisation(name="示例大学", kind="university", is_sample=True)
        session.add_all([firm, university])
        need = Need(organisation=firm, title=NEED[0], description=NEED[1], status="open")
        session.add(need)
        session.add(User(username="firm", display_name="甲公司", role="firm", organisation=firm,
                         password_hash="x"))
        for title, text in (LIKED, SIMILAR, *OTHERS):
            result = Result(organisation=university, title=title, abstract=text,
                            keywords="陷波滤波;谐振" if title == LIKED[0] else None,
                            status="active")
            session.add(result)
            session.flush()
            ids[title] = result.id
        session.flush()
        ids["need"] = need.id
        session.commit()
    svc = MatchService(IndexStore(tmp_path / "home", FakeEncoder()), sessions)
    svc.sync()
    return svc, ids


def _ranked(svc: MatchService, ids: dict[str, int], **options: float) -> list[int]:
    with svc.sessions() as session:
        need = session.get(Need, ids["need"])
        return [m.id for m in marked_matches(svc, session, need, k=10, **options).matches]


def _mark(svc: MatchService, ids: dict[str, int], title: str, relevant: bool) -> None:
    with svc.sessions() as session:
        user = session.query(User).one()
        mark_match(session, user, session.get(Need, ids["need"]), ids[title], relevant, None)
        session.commit()


def test_not_relevant_results_are_hidden_until_undone(
        seeded: tuple[MatchService, dict[str, int]]) -> None:
    svc, ids = seeded
    before = _ranked(svc, ids)
    gone = ids[OTHERS[0][0]]
    assert gone in before
    _mark(svc, ids, OTHERS[0][0], False)
    with svc.sessions() as session:
        marked = marked_matches(svc, session, session.get(Need, ids["need"]), k=3)
        assert gone not in [m.id for m in marked.matches] and len(marked.matches) == 3
        assert [(h.result_id, h.result.title) for h in marked.hidden] == [(gone, OTHERS[0][0])]
    assert _ranked(svc, ids) == [i for i in before if i != gone]
    with svc.sessions() as session:
        user = session.query(User).one()
        unmark_match(session, user, session.get(Need, ids["need"]), str(gone))
        session.commit()
        assert marked_matches(svc, session, session.get(Need, ids["need"])).hidden == []
    assert _ranked(svc, ids) == before


def test_a_relevant_mark_pulls_a_similar_result_up(
        seeded: tuple[MatchService, dict[str, int]]) -> None:
    svc, ids = seeded
    similar, liked = ids[SIMILAR[0]], ids[LIKED[0]]
    before = _ranked(svc, ids)
    _mark(svc, ids, LIKED[0], True)
    # β = 0 is the ranking without the Rocchio step: the mark alone changes nothing.
    assert _ranked(svc, ids, beta=0.0) == before
    after = _ranked(svc, ids)
    assert after.index(similar) < before.index(similar)
    assert after[0] == liked  # a 相关 result stays in the list: it is still an answer


def test_rocchio_moves_the_query_toward_the_marked_mean() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    marked = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    moved = rocchio(query, marked, 1.0)
    assert np.allclose(moved, [2 ** -0.5, 2 ** -0.5])
    assert rocchio(query, marked, 0.0) is query
    assert rocchio(query, marked[:0], BETA) is query


def test_export_writes_a_set_evaluate_scores(
        seeded: tuple[MatchService, dict[str, int]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    svc, ids = seeded
    _mark(svc, ids, LIKED[0], True)
    _mark(svc, ids, OTHERS[3][0], False)
    out = tmp_path / "judged"
    with svc.sessions() as session:
        exported = export_judgments(session, out)
    assert (exported.queries, exported.documents, exported.relevant,
            exported.not_relevant) == (1, 2, 1, 1)
    need = str(ids["need"])
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert queries == [{"id": need, "text": "\n".join(NEED)}]
    corpus = {d["id"]: d for d in map(json.loads, (out / "corpus.jsonl").read_text()
                                      .splitlines())}
    assert corpus[str(ids[LIKED[0]])] == {"id": str(ids[LIKED[0]]), "title": LIKED[0],
                                          "text": LIKED[1], "keywords": ["陷波滤波", "谐振"]}
    assert (out / "qrels.tsv").read_text().splitlines() == sorted([
        f"{need}\t0\t{ids[LIKED[0]]}\t2", f"{need}\t0\t{ids[OTHERS[3][0]]}\t0"])
    assert matcher_main(["evaluate", str(out), "--model", "fake", "--quiet"]) == 0
    scores = capsys.readouterr().out
    assert "1 queries" in scores and "hybrid" in scores
    # The liked result outranks the other among the two judged: every metric is perfect.
    assert re.search(r"^hybrid(\s+1\.0000){4}\s", scores, re.M), scores


def test_export_command(seeded: tuple[MatchService, dict[str, int]], tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    svc, ids = seeded
    _mark(svc, ids, LIKED[0], True)
    monkeypatch.setenv("DATABASE_URL", str(svc.sessions.kw["bind"].url))
    assert service_main(["export-judgments", str(tmp_path / "out")]) == 0
    assert "1 needs, 1 results, 1 相关" in capsys.readouterr().out
    assert (tmp_path / "out" / "qrels.tsv").read_text() == \
        f"{ids['need']}\t0\t{ids[LIKED[0]]}\t2\n"
