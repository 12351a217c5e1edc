"""Match strength on the pages and in the API: the label instead of the fused score, and a
plain notice on a need whose matches are all weak."""

from __future__ import annotations

import dataclasses

import pytest

from matcher import retriever
from matcher.strength import LABELS, default_model
from tests.support.api import API, bearer, need_id
from tests.support.web import Site
from web.api.answers import Match as MatchAnswer

NOTICE = "当前平台暂无较强匹配的成果"


def with_thresholds(monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    """Every match 强 (value 0) or every match 弱 (value above any probability)."""
    model = dataclasses.replace(default_model(),
                                thresholds=dict.fromkeys(LABELS[:-1], value))
    monkeypatch.setattr(retriever, "default_model", lambda: model)


def test_api_matches_carry_strength_as_described(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    body = client.get(f"{API}/needs/{need_id(sqlite_site)}/matches", query_string={"k": 3},
                      headers=bearer(sqlite_site, "firm_a")).get_json()
    for match in body["matches"]:
        MatchAnswer.model_validate(match)
        assert match["strength"]["label"] in LABELS
        assert 0 <= match["strength"]["probability"] <= 1


def test_need_page_shows_strength_labels_not_fused_scores(sqlite_site: Site) -> None:
    page = sqlite_site.client("firm_a").get(f"/needs/{need_id(sqlite_site)}")
    html = page.get_data(as_text=True)
    assert 'class="strength strength-' in html and "匹配强度" in html
    assert 'title="融合得分"' not in html
    assert "语义相似度" in html  # the engineer's detail stays in the explanation


def test_need_without_strong_match_says_so_and_what_to_do(
        sqlite_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    with_thresholds(monkeypatch, 1.01)
    html = sqlite_site.client("firm_a").get(f"/needs/{need_id(sqlite_site)}").get_data(
        as_text=True)
    assert NOTICE in html and "放宽筛选条件" in html and "相近结果" in html
    assert "strength-weak" in html and "strength-strong" not in html


def test_need_with_strong_matches_shows_no_notice(
        sqlite_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    with_thresholds(monkeypatch, 0.0)
    html = sqlite_site.client("firm_a").get(f"/needs/{need_id(sqlite_site)}").get_data(
        as_text=True)
    assert NOTICE not in html
    assert "strength-strong" in html
