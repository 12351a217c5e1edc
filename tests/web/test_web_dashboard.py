"""The dashboard over HTTP: officers see every figure, an office only its own institution's,
firms nothing; a bad filter is a 400 naming it; charts are script-free SVG images; the XLSX
opens and has a sheet per figure; the JSON answer is its model."""

from __future__ import annotations

import io
import re
from typing import Any
from xml.etree import ElementTree

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from corpora.connections import ConnectionRequest
from corpora.models import MatchFeedback, Need, Organisation, Result, User
from service import connections as conn
from tests.support.api import bearer
from tests.support.web import Site
from web.api.dashboard import DashboardOut
from web.dashboard.charts import OFFICE_CHARTS, OFFICER_CHARTS
from web.database import sessions

NEED = "工业机器人视觉抓取精度提升"
RESULT = "基于深度学习的机器人视觉定位方法"  # 示例理工大学's (office_u1)
OTHER_RESULT = "抗体制剂稳定配方"  # 示例医科大学's (office_u2)
FORMULA_TITLE = "=HYPERLINK(\"http://x\")"
OFFICER_SHEETS = ["筛选条件", "各产业领域的需求与成果", "G60 各城市的需求与成果",
                  "每月新发布的需求与成果", "对接漏斗", "首次答复用时", "婉拒原因", "拍卖结果",
                  "暂无成果能较好解决的开放需求（按领域）"]


def seed_activity(site: Site) -> None:
    """A 相关 mark and a signed request on 示例理工大学's vision result, a declined request
    on 示例医科大学's, and a 示例理工大学 result whose title looks like a formula."""
    with site.app.app_context(), sessions()() as db:
        users = {u.username: u for u in db.scalars(select(User))}
        need = db.get(Need, site.ids["need"][NEED])
        vision = db.get(Result, site.ids["result"][RESULT])
        antibody_need = db.scalar(select(Need).where(Need.title == "抗体药物稳定性改进"))
        antibody = db.get(Result, site.ids["result"][OTHER_RESULT])
        db.add(MatchFeedback(need_id=need.id, result_id=vision.id, relevant=True,
                             user_id=users["firm_a"].id))
        made = conn.start(db, users["firm_a"], need, vision, {"message": "希望洽谈"})
        conn.accept(db, users["office_u1"], made)
        conn.set_stage(db, users["office_u1"], made, {
            "stage": "signed", "deal_form": "许可", "deal_amount": 30,
            "signed_on": "2026-11-20"})
        other = conn.start(db, users["firm_b"], antibody_need, antibody, {"message": "询价"})
        conn.decline(db, users["office_u2"], other, {"reason": "时机尚早"})
        uni = db.scalar(select(Organisation).where(Organisation.name == "示例理工大学"))
        db.add(Result(organisation=uni, title=FORMULA_TITLE, abstract="一种测试用的成果摘要",
                      industry="新材料", status="active"))
        db.commit()


@pytest.fixture
def busy(site: Site) -> Site:
    seed_activity(site)
    return site


@pytest.fixture
def busy_sqlite(sqlite_site: Site) -> Site:
    seed_activity(sqlite_site)
    return sqlite_site


def chart_sources(html: str) -> list[str]:
    return re.findall(r'<img class="chart" src="([^"]+)"', html)


def test_an_officer_sees_every_figure_with_its_chart_and_table(busy: Site) -> None:
    client = busy.client("officer")
    page = client.get("/dashboard")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/dashboard">数据看板</a>' in html
    for heading in ("对接漏斗", "首次答复用时", "婉拒原因", "拍卖结果",
                    "暂无成果能较好解决的开放需求（按领域）", "G60 各城市的需求与成果"):
        assert f"<h2>{heading}</h2>" in html
    assert len(chart_sources(html)) == len(OFFICER_CHARTS)
    assert "<td>时机尚早</td><td>1</td>" in html
    assert "<td>已签约</td><td>1</td>" in html
    assert "前 10 名" in html  # the definition of a match is on the page


def test_filters_carry_into_the_charts_and_the_download(busy_sqlite: Site) -> None:
    html = busy_sqlite.client("officer").get(
        "/dashboard?industry=生物医药&date_from=2020-01-01").get_data(as_text=True)
    sources = chart_sources(html)
    assert sources and all("date_from=2020-01-01" in src and "industry=" in src
                           for src in sources)
    assert "/dashboard/export.xlsx?date_from=2020-01-01&amp;industry=" in html
    assert "<option selected>生物医药</option>" in html


def test_an_office_sees_only_its_own_institution(busy: Site) -> None:
    client = busy.client("office_u1")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "数据看板：示例理工大学" in html and RESULT in html
    assert OTHER_RESULT not in html and "时机尚早" not in html
    assert "无人问津的成果" in html
    answer = client.get("/api/v1/dashboard").get_json()
    assert answer["scope"] == "institution" and answer["organisation"] == "示例理工大学"
    titles = {row["title"] for row in answer["results"]}
    assert RESULT in titles and OTHER_RESULT not in titles
    vision = next(row for row in answer["results"] if row["title"] == RESULT)
    assert (vision["relevant_marks"], vision["requests"], vision["signed"]) == (1, 1, 1)
    assert vision["unasked"] is False
    assert next(row for row in answer["results"] if row["title"] == FORMULA_TITLE)["unasked"]
    assert "auctions" not in answer and "decline_reasons" not in answer
    # An officer's chart is not an office's.
    assert client.get("/dashboard/chart/auctions.svg").status_code == 404


def test_a_firm_is_refused_everywhere(sqlite_site: Site) -> None:
    client = sqlite_site.client("firm_a")
    for path in ("/dashboard", "/dashboard/chart/funnel.svg", "/dashboard/export.xlsx"):
        assert client.get(path).status_code == 403, path
    assert "数据看板" not in client.get("/").get_data(as_text=True)
    answer = sqlite_site.app.test_client().get("/api/v1/dashboard",
                                               headers=bearer(sqlite_site, "firm_a"))
    assert answer.status_code == 403
    assert sqlite_site.app.test_client().get("/dashboard").status_code == 302  # to sign in


@pytest.mark.parametrize(("query", "field"), [
    ("date_from=2025-13-01", "date_from"), ("date_to=yesterday", "date_to"),
    ("date_from=2026-02-01&date_to=2026-01-01", "date_from"), ("city=北京", "city"),
    ("industry=" + "长" * 51, "industry"), ("industry=a%07b", "industry"),
])
def test_a_bad_filter_is_a_400_naming_the_field(sqlite_site: Site, query: str,
                                                field: str) -> None:
    client = sqlite_site.client("officer")
    for path in ("/dashboard", "/dashboard/chart/funnel.svg", "/dashboard/export.xlsx"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, path
        assert f"（{field}）" in response.get_data(as_text=True)
    answer = client.get(f"/api/v1/dashboard?{query}")
    assert answer.status_code == 400
    assert field in answer.get_json()["error"]["fields"]


@pytest.mark.parametrize(("user", "names"), [("officer", sorted(OFFICER_CHARTS)),
                                             ("office_u1", sorted(OFFICE_CHARTS))])
def test_charts_are_svg_images_without_script(busy_sqlite: Site, user: str,
                                              names: list[str]) -> None:
    client = busy_sqlite.client(user)
    for name in names:
        response = client.get(f"/dashboard/chart/{name}.svg?industry=智能制造")
        assert response.status_code == 200, name
        assert response.mimetype == "image/svg+xml"
        body = response.get_data(as_text=True)
        assert "<script" not in body.lower() and "onload" not in body.lower()
        root = ElementTree.fromstring(response.data)
        assert root.tag.endswith("svg")
        assert re.search(r"[\u4e00-\u9fff]", body), name  # the text is Chinese, as text
    assert client.get("/dashboard/chart/nothing.svg").status_code == 404


def test_the_xlsx_has_a_sheet_per_figure_and_escapes_formulas(busy_sqlite: Site) -> None:
    response = busy_sqlite.client("officer").get("/dashboard/export.xlsx?city=上海松江")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == OFFICER_SHEETS
    info = {row[0]: row[1] for row in book["筛选条件"].iter_rows(values_only=True)}
    assert info["所在城市"] == "上海松江" and info["范围"] == "全平台"
    funnel = list(book["对接漏斗"].iter_rows(values_only=True))
    assert funnel[0] == ("步骤", "数量", "相对上一步的转化率")
    assert ("已签约", 1, 1.0) in funnel

    office = busy_sqlite.client("office_u1").get("/dashboard/export.xlsx")
    book = load_workbook(io.BytesIO(office.data))
    assert book.sheetnames == ["筛选条件", "本单位成果受到的关注", "对接漏斗", "首次答复用时",
                               "无人问津的成果（无相关标记、无对接请求）"]
    titles = [row[0] for row in book["本单位成果受到的关注"].iter_rows(values_only=True)]
    assert "'" + FORMULA_TITLE in titles and FORMULA_TITLE not in titles
    assert OTHER_RESULT not in titles


def test_the_json_answer_is_its_model(busy: Site) -> None:
    client = busy.app.test_client()
    response = client.get("/api/v1/dashboard", headers=bearer(busy, "officer"))
    assert response.status_code == 200
    answer: dict[str, Any] = response.get_json()
    DashboardOut.model_validate(answer)
    assert answer["scope"] == "all"
    funnel = {step["step"]: step["count"] for step in answer["funnel"]}
    assert (funnel["marks"], funnel["requests"], funnel["accepted"], funnel["signed"]) == (
        1, 2, 1, 1)
    reasons = {row["label"]: row["count"] for row in answer["decline_reasons"]}
    assert reasons["时机尚早"] == 1
    assert answer["answer_time"]["answered"] == 2
    narrowed = client.get("/api/v1/dashboard?industry=生物医药",
                          headers=bearer(busy, "officer")).get_json()
    assert [row["label"] for row in narrowed["by_industry"]] == ["生物医药"]
    assert narrowed["filters"]["industry"] == "生物医药"
    with busy.app.app_context(), sessions()() as db:
        assert db.scalar(select(ConnectionRequest.stage).where(
            ConnectionRequest.status == "accepted")) == "signed"
