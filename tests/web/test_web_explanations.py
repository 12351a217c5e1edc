"""A match explained as one plain sentence (strength, shared terms, the terms that agree and
those that clash), the engineer's figures behind 技术细节, and the same in the API."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpora.models import Need, Result
from matcher.types import Explanation, FacetClash, Strength
from tests.support.api import API, bearer, need_id, result_id
from tests.support.web import Site, seed
from web import create_app
from web.api.answers import Match as MatchAnswer
from web.database import sessions
from web.explanations import sentence


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The seeded site, with a budget ceiling on the robot-vision need (50 万元) below the
    asking price of the result that answers it (80 万元); that need wants 合作开发, which the
    result (技术转让;许可) does not offer."""
    app = create_app({"TESTING": True, "MATCHER_HOME": tmp_path / "home",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite'}",
                      "MATCHER_MODEL": "fake", "SECRET_KEY": "test-secret",
                      "WTF_CSRF_ENABLED": False})
    ids = seed(app)
    built = Site(app, ids)
    with app.app_context(), sessions()() as session:
        session.get(Need, need_id(built)).budget_max = 50
        session.get(Result, result_id(built)).asking_price = 80
        session.commit()
        from web.matching import service

        service()  # the indexes, built from the database as a server start builds them
    yield built
    app.extensions["matcher.engine"].dispose()


def match_block(page: str, result: int) -> str:
    start = page.index(f'id="match-{result}"')
    end = page.find('<div class="match"', start)
    return page[start:end if end > 0 else len(page)]


def why_of(block: str) -> str:
    return html.unescape(re.search(r'<p class="why">(.*?)</p>', block, re.S).group(1))


def test_need_page_explains_each_match_in_one_sentence(site: Site) -> None:
    page = site.client("firm_a").get(f"/needs/{need_id(site)}").get_data(as_text=True)
    block = match_block(page, result_id(site))
    why = why_of(block)
    assert why.startswith("匹配强度")
    assert "都涉及：" in why and "机器人" in why
    assert "条件一致：智能制造" in why
    # The engineer's figures are not in the sentence but behind the toggle.
    assert "语义相似度" not in why and "关键词得分" not in why and "第 1 名" not in why
    engineer = re.search(r'<details class="engineer">(.*?)</details>', block, re.S).group(1)
    assert "<summary>技术细节</summary>" in engineer
    assert "语义相似度" in engineer and "关键词得分" in engineer
    assert "融合得分" in engineer and "校准概率" in engineer


def test_need_page_shows_where_need_and_result_disagree(site: Site) -> None:
    page = site.client("firm_a").get(f"/needs/{need_id(site)}").get_data(as_text=True)
    why = why_of(match_block(page, result_id(site)))
    assert "不一致：" in why
    assert "预算上限 50 万元低于报价 80 万元" in why
    assert "合作方式：需求要合作开发，成果提供技术转让、许可" in why


def test_api_carries_the_sentence_the_clashes_and_the_figures(site: Site) -> None:
    body = site.app.test_client().get(
        f"{API}/needs/{need_id(site)}/matches", query_string={"k": 5},
        headers=bearer(site, "firm_a")).get_json()
    for match in body["matches"]:
        MatchAnswer.model_validate(match)
    [best] = [m for m in body["matches"] if m["id"] == result_id(site)]
    exp = best["explanation"]
    assert exp["facets_clashed"] == [
        {"facet": "cooperation_mode", "wanted": "合作开发", "offered": "技术转让;许可",
         "text": "合作方式：需求要合作开发，成果提供技术转让、许可"},
        {"facet": "budget", "wanted": "50", "offered": "80",
         "text": "预算上限 50 万元低于报价 80 万元"}]
    assert exp["why"].startswith("匹配强度") and "不一致：" in exp["why"]
    assert any(line.startswith("语义相似度") for line in exp["detail"])
    # The engineer's keys stay as they were.
    assert exp["dense_score"] is not None and exp["dense_rank"] >= 1
    assert exp["lexical_rank"] >= 1 and exp["shared_terms"]


def test_sentence_without_shared_terms_or_strength() -> None:
    exp = Explanation(dense_score=0.8, lexical_score=0.0, facets_agreed=("industry=生物医药",))
    assert sentence(exp, ()) == "无共同术语，按语义相近排出；条件一致：生物医药"
    rated = Explanation(dense_score=0.8, lexical_score=3.0, strength=Strength("较强", 0.6),
                        facets_agreed=("industry=集成电路", "cooperation_mode=许可;技术转让"),
                        facets_clashed=(FacetClash("budget", "50", "80"),))
    assert sentence(rated, ("清洗液", "颗粒残留")) == (
        "匹配强度较强。都涉及：清洗液、颗粒残留；条件一致：集成电路、许可、技术转让；"
        "不一致：预算上限 50 万元低于报价 80 万元")
    lexical = Explanation(dense_score=math.nan, lexical_score=2.0)
    assert sentence(lexical, ()) == "只有常用词相同"
