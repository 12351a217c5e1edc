"""The officers' dashboard figures on a seeded database, on SQLite and PostgreSQL: volumes,
the funnel and its conversions, time to first answer, decline reasons, auction outcomes,
the open needs nothing answers well, the filters, and one institution's view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from corpora.connections import ConnectionRequest
from corpora.db import PlatformSession
from corpora.models import MatchFeedback, Need, Organisation, Result, Shortlist, ShortlistLot
from matcher.types import Strength
from service import connections as conn
from service import dashboard
from service.accounts import NewUser, create_user
from service.dashboard import DashboardFilters
from service.matching import Coverage

PASSWORD = "Passw0rd-test"
NOVEMBER = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(engine: Engine) -> Iterator[dict[str, Any]]:
    with PlatformSession(engine, expire_on_commit=False) as session:
        yield build(session)


def build(session: Any) -> dict[str, Any]:
    orgs = {name: Organisation(name=name, kind=kind, city=city) for name, kind, city in [
        ("甲企业", "firm", "嘉兴"), ("乙企业", "firm", "杭州"),
        ("示例大学", "university", "上海松江"), ("另一大学", "university", "合肥")]}
    session.add_all(orgs.values())
    session.flush()
    users = {name: create_user(session, NewUser(name, PASSWORD, role, name, org))
             for name, role, org in [("firm", "firm", "甲企业"), ("firm2", "firm", "乙企业"),
                                     ("office", "office", "示例大学"),
                                     ("office2", "office", "另一大学"),
                                     ("officer", "officer", None)]}

    def need(title: str, org: str, industry: str, created: datetime) -> Need:
        row = Need(organisation=orgs[org], title=title, description=title + "的描述",
                   industry=industry, contact="138 张经理", status="open", created_at=created)
        session.add(row)
        return row

    def result(title: str, org: str, industry: str, created: datetime) -> Result:
        row = Result(organisation=orgs[org], title=title, abstract=title + "的摘要",
                     industry=industry, status="active", created_at=created)
        session.add(row)
        return row

    needs = [need("视觉定位需求", "甲企业", "智能制造", NOVEMBER),
             need("振动抑制需求", "甲企业", "高端装备", NOVEMBER),
             need("抗体稳定需求", "乙企业", "生物医药", OCTOBER)]
    results = [result("视觉定位方法", "示例大学", "智能制造", NOVEMBER),
               result("振动控制器", "示例大学", "高端装备", OCTOBER),
               result("抗体配方", "另一大学", "生物医药", OCTOBER),
               result("无人问津的成果", "示例大学", "新材料", OCTOBER)]
    session.flush()
    return {"session": session, "needs": needs, "results": results, **users}


def coverage_of(w: dict[str, Any]) -> Coverage:
    """Strong pairs: vision need–vision result, vibration need–vibration result; the
    antibody need has nothing 较强 or better."""
    n, r = w["needs"], w["results"]
    good, weak = Strength("较强", 0.6), Strength("弱", 0.1)
    return Coverage(10, {r[0].id: {n[0].id: 1}, r[1].id: {n[1].id: 1}},
                    best_of_need={n[0].id: good, n[1].id: good, n[2].id: weak})


def mark(w: dict[str, Any], need: Need, result: Result, relevant: bool,
         when: datetime = NOVEMBER) -> None:
    w["session"].add(MatchFeedback(need_id=need.id, result_id=result.id, relevant=relevant,
                                   user_id=w["firm"].id, created_at=when))


def request(w: dict[str, Any], need: Need, result: Result, *, answer_after: float | None,
            outcome: str = "pending", reason: str = "价格不合适", signed: bool = False
            ) -> ConnectionRequest:
    """A request from the need's firm, answered `answer_after` hours later (accept or
    decline), optionally signed."""
    s = w["session"]
    firm = w["firm"] if need.organisation.name == "甲企业" else w["firm2"]
    office = w["office"] if result.organisation.name == "示例大学" else w["office2"]
    made = conn.start(s, firm, need, result, {"message": "希望洽谈"})
    if outcome == "accepted":
        conn.accept(s, office, made)
    elif outcome == "declined":
        conn.decline(s, office, made, {"reason": reason})
    if signed:
        conn.set_stage(s, office, made, {"stage": "signed", "deal_form": "转让",
                                         "deal_amount": 80, "signed_on": "2026-11-20"})
    made.created_at = NOVEMBER
    if answer_after is not None:
        made.answered_at = NOVEMBER + timedelta(hours=answer_after)
    s.flush()
    return made


def seeded(w: dict[str, Any]) -> dict[str, Any]:
    n, r = w["needs"], w["results"]
    mark(w, n[0], r[0], True)
    mark(w, n[1], r[1], True)
    mark(w, n[2], r[2], False)
    request(w, n[0], r[0], answer_after=10, outcome="accepted", signed=True)
    request(w, n[1], r[1], answer_after=50, outcome="declined", reason="价格不合适")
    request(w, n[2], r[2], answer_after=200, outcome="declined", reason="非本领域")
    request(w, n[1], r[0], answer_after=None)  # still waiting
    s = w["session"]
    shortlist = Shortlist(title="专场", created_by_id=w["officer"].id)
    s.add(shortlist)
    s.flush()
    s.add_all([
        ShortlistLot(shortlist_id=shortlist.id, result_id=r[0].id, position=1,
                     reserve_price=100, outcome="sold", sold_price=150, outcome_at=NOVEMBER),
        ShortlistLot(shortlist_id=shortlist.id, result_id=r[1].id, position=2,
                     reserve_price=50, outcome="sold", sold_price=50, outcome_at=NOVEMBER),
        ShortlistLot(shortlist_id=shortlist.id, result_id=r[2].id, position=3,
                     reserve_price=80, outcome="unsold", outcome_at=OCTOBER),
        ShortlistLot(shortlist_id=shortlist.id, result_id=r[3].id, position=4,
                     created_at=NOVEMBER)])
    s.flush()
    return w


def steps(funnel: list[dashboard.FunnelStep]) -> dict[str, tuple[int, float | None]]:
    return {step.step: (step.count, step.conversion) for step in funnel}


def test_the_funnel_counts_each_step_and_its_conversion(world: dict[str, Any]) -> None:
    w = seeded(world)
    got = steps(dashboard.funnel(w["session"], coverage_of(w), DashboardFilters()))
    assert got == {"matches": (2, None), "marks": (2, 1.0), "requests": (4, 2.0),
                   "accepted": (1, 0.25), "signed": (1, 1.0)}


def test_time_to_first_answer_and_the_requests_still_waiting(world: dict[str, Any]) -> None:
    w = seeded(world)
    got = dashboard.answer_time(w["session"], DashboardFilters())
    assert (got.answered, got.pending) == (3, 1)
    assert got.median_hours == pytest.approx(50)
    assert got.mean_hours == pytest.approx((10 + 50 + 200) / 3)
    assert [(b.label, b.count) for b in got.buckets] == [
        ("1天内", 1), ("1–3天", 1), ("3–7天", 0), ("7天以上", 1)]


def test_decline_reasons_list_every_reason_with_its_count(world: dict[str, Any]) -> None:
    w = seeded(world)
    got = {b.label: b.count for b in dashboard.decline_reasons(w["session"], DashboardFilters())}
    assert got["价格不合适"] == 1 and got["非本领域"] == 1 and got["时机尚早"] == 0
    assert sum(got.values()) == 2


def test_auction_outcomes_and_the_sold_to_reserve_ratio(world: dict[str, Any]) -> None:
    w = seeded(world)
    got = dashboard.auctions(w["session"], DashboardFilters())
    assert (got.sold, got.unsold, got.unrecorded) == (2, 1, 1)
    assert got.sold_total == pytest.approx(200)
    assert got.ratio == pytest.approx(200 / 150)
    assert got.with_reserve == 2
    november = DashboardFilters(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30))
    got = dashboard.auctions(w["session"], november)
    assert (got.sold, got.unsold, got.unrecorded) == (2, 0, 1)


def test_open_needs_with_no_strong_match_by_industry(world: dict[str, Any]) -> None:
    w = seeded(world)
    got = dashboard.unanswered_by_industry(w["session"], coverage_of(w), DashboardFilters())
    assert [(row.industry, row.open_needs, row.unanswered) for row in got][0] == (
        "生物医药", 1, 1)
    assert {row.industry: row.unanswered for row in got} == {
        "生物医药": 1, "智能制造": 0, "高端装备": 0}


def test_volumes_by_industry_city_and_month(world: dict[str, Any]) -> None:
    w = seeded(world)
    s, none = w["session"], DashboardFilters()
    industries = {v.label: (v.needs, v.results) for v in dashboard.by_industry(s, none)}
    assert industries == {"智能制造": (1, 1), "高端装备": (1, 1), "生物医药": (1, 1),
                          "新材料": (0, 1)}
    cities = [(v.label, v.needs, v.results) for v in dashboard.by_city(s, none)]
    assert cities == [("上海松江", 0, 3), ("嘉兴", 2, 0), ("杭州", 1, 0), ("合肥", 0, 1)]
    months = [(v.label, v.needs, v.results) for v in dashboard.by_month(s, none)]
    assert months == [("2026-10", 1, 3), ("2026-11", 2, 1)]


def test_filters_narrow_every_figure(world: dict[str, Any]) -> None:
    w = seeded(world)
    s, coverage = w["session"], coverage_of(w)
    industry = DashboardFilters(industry="生物医药")
    assert [(v.label, v.needs, v.results) for v in dashboard.by_industry(s, industry)] == [
        ("生物医药", 1, 1)]
    got = steps(dashboard.funnel(s, coverage, industry))
    assert got["matches"][0] == 0 and got["marks"][0] == 0 and got["requests"][0] == 1
    city = DashboardFilters(city="嘉兴")
    assert [(v.label, v.needs) for v in dashboard.by_city(s, city)] == [("嘉兴", 2)]
    # A pair is in when its need or its result is: 嘉兴's firm asked three times.
    assert steps(dashboard.funnel(s, coverage, city))["requests"][0] == 3
    october = DashboardFilters(date_from=date(2026, 10, 1), date_to=date(2026, 10, 31))
    assert [(v.label, v.needs, v.results) for v in dashboard.by_month(s, october)] == [
        ("2026-10", 1, 3)]
    assert steps(dashboard.funnel(s, coverage, october))["requests"][0] == 0
    # The last day is included.
    last_day = DashboardFilters(date_from=date(2026, 11, 10), date_to=date(2026, 11, 10))
    assert steps(dashboard.funnel(s, coverage, last_day))["marks"][0] == 2


def test_the_whole_dashboard_in_one_call(world: dict[str, Any]) -> None:
    w = seeded(world)
    got = dashboard.figures(w["session"], coverage_of(w), DashboardFilters())
    assert got.min_label == "较强" and got.top_k == 10
    assert got.auctions.sold == 2 and got.answer_time.answered == 3
    assert [step.step for step in got.funnel] == [
        "matches", "marks", "requests", "accepted", "signed"]


def test_an_office_sees_its_own_results_interest_and_the_unasked(world: dict[str, Any]
                                                                 ) -> None:
    w = seeded(world)
    s, r = w["session"], w["results"]
    uni = w["office"].organisation_id
    got = dashboard.office_figures(s, coverage_of(w), uni, DashboardFilters(city="嘉兴"))
    assert got.organisation == "示例大学" and got.filters.city is None
    rows = {row.title: (row.strong_matches, row.relevant_marks, row.requests, row.accepted,
                        row.signed) for row in got.results}
    assert rows == {"视觉定位方法": (1, 1, 2, 1, 1), "振动控制器": (1, 1, 1, 0, 0),
                    "无人问津的成果": (0, 0, 0, 0, 0)}
    assert [row.result_id for row in got.unasked] == [r[3].id]
    assert steps(got.funnel) == {"matches": (2, None), "marks": (2, 1.0),
                                 "requests": (3, 1.5), "accepted": (1, 1 / 3),
                                 "signed": (1, 1.0)}
    assert (got.answer_time.answered, got.answer_time.pending) == (2, 1)
    narrowed = dashboard.office_figures(s, coverage_of(w), uni,
                                        DashboardFilters(industry="智能制造"))
    assert [row.title for row in narrowed.results] == ["视觉定位方法"]
    assert steps(narrowed.funnel)["requests"][0] == 2
