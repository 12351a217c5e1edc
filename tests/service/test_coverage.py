"""The officers' coverage counts a pair only when the engine rates it 较强 or better, and
knows the open needs nothing answers well."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from corpora.db import make_sessionmaker
from corpora.models import Need, Organisation, Result
from embeddings.fake import FakeEncoder
from matcher.indexing import IndexStore
from service.matching import COVERAGE_MIN_LABEL, MatchService

ROBOT = ("工业机器人视觉抓取精度提升",
         "我司焊装线上的工业机器人需要基于视觉的无序抓取，目前定位误差2毫米，希望引入深度学习"
         "视觉定位算法，将抓取误差降到0.5毫米以内。")
ANTIBODY = ("抗体药物稳定性改进",
            "单克隆抗体制剂在储存中出现聚集，希望获得提高抗体制剂稳定性的配方技术。")
# A near-copy of the robot need: the fake encoder's cosine and BM25 both rate it 较强 or
# better. The others share a few words with the needs at most: in their top 10, but 弱.
RESULTS = [
    ("机器人视觉抓取定位", ROBOT[1], "智能制造"),
    ("伺服系统振动抑制控制器", "一种伺服电机振动抑制控制器，采用陷波滤波与自适应控制。",
     "高端装备"),
    ("锂电池正极材料包覆工艺", "一种高镍三元正极材料的包覆改性工艺，提高循环稳定性。",
     "新能源汽车"),
]


@pytest.fixture
def seeded(sqlite_engine: Engine, tmp_path: Path) -> tuple[MatchService, dict[str, int]]:
    sessions = make_sessionmaker(sqlite_engine)
    ids: dict[str, int] = {}
    with sessions() as session:
        firm = Organisation(name="甲公司", kind="firm", is_sample=True)
        university = Organisation(name="示例大学", kind="university", is_sample=True)
        session.add_all([firm, university])
        for title, text in (ROBOT, ANTIBODY):
            need = Need(organisation=firm, title=title, description=text, industry="智能制造",
                        status="open")
            session.add(need)
            session.flush()
            ids[title] = need.id
        for title, text, industry in RESULTS:
            result = Result(organisation=university, title=title, abstract=text,
                            industry=industry, status="active")
            session.add(result)
            session.flush()
            ids[title] = result.id
        session.commit()
    svc = MatchService(IndexStore(tmp_path / "home", FakeEncoder()), sessions)
    svc.sync()
    return svc, ids


def test_only_strong_pairs_count(seeded: tuple[MatchService, dict[str, int]]) -> None:
    svc, ids = seeded
    coverage = svc.coverage()
    copy, robot = ids["机器人视觉抓取定位"], ids[ROBOT[0]]
    assert coverage.min_label == COVERAGE_MIN_LABEL == "较强"
    # Every result is in both needs' top 10; only the near-copy answers one of them well.
    assert coverage.needs_of == {copy: {robot: 1}}
    strength = coverage.strength(copy, robot)
    assert strength is not None and strength.label in ("强", "较强")
    assert coverage.strength_of == {copy: {robot: strength}}
    assert coverage.count(copy) == 1 and coverage.count(ids["锂电池正极材料包覆工艺"]) == 0


def test_open_needs_nothing_answers_well(seeded: tuple[MatchService, dict[str, int]]) -> None:
    svc, ids = seeded
    coverage = svc.coverage()
    antibody = ids[ANTIBODY[0]]
    assert coverage.unanswered() == [antibody]
    best = coverage.best_of_need[antibody]
    assert best is not None and best.label in ("一般", "弱")
    assert coverage.best_of_need[ids[ROBOT[0]]] == coverage.strength(
        ids["机器人视觉抓取定位"], ids[ROBOT[0]])


def test_the_threshold_is_a_setting(seeded: tuple[MatchService, dict[str, int]]) -> None:
    svc, ids = seeded
    strong = svc.coverage()
    svc.coverage_min_label = "弱"  # every ranked pair counts: the old top-K coverage
    every = svc.coverage()
    assert every is not strong and every.min_label == "弱" and every.unanswered() == []
    assert set(every.needs_of) == {ids[title] for title, _, _ in RESULTS}
    assert all(len(needs) == 2 for needs in every.needs_of.values())
    with pytest.raises(ValueError, match="strength label"):
        svc.coverage_min_label = "很强"
    with pytest.raises(ValueError, match="strength label"):
        MatchService(svc.store, svc.sessions, coverage_min_label="")


def test_a_pair_counts_only_for_the_results_nearest_needs(
        seeded: tuple[MatchService, dict[str, int]]) -> None:
    svc, ids = seeded
    svc.coverage_min_label = "弱"  # every result ranks for both needs
    assert svc.coverage().hub_pairs_dropped == 0  # two needs: all within the nearest 10
    guarded = MatchService(svc.store, svc.sessions, coverage_min_label="弱",
                           coverage_mutual_k=1)
    coverage = guarded.coverage()
    # Each result keeps the one need it is nearest to; the copy keeps the need it copies.
    assert all(len(needs) == 1 for needs in coverage.needs_of.values())
    assert coverage.needs_of[ids["机器人视觉抓取定位"]] == {ids[ROBOT[0]]: 1}
    assert coverage.hub_pairs_dropped == len(RESULTS)
    with pytest.raises(ValueError, match="coverage_mutual_k"):
        MatchService(svc.store, svc.sessions, coverage_mutual_k=0)
