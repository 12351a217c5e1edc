"""Firms' workflows through HTTP: post, edit, close, reopen, explained matches, marks."""

from __future__ import annotations

from sqlalchemy import select

from corpora.models import AuditEntry, MatchFeedback, Need
from tests.support.api import A_YEAR_AHEAD
from tests.support.web import Site
from web.database import sessions

NEW_NEED = {
    "title": "机器人视觉定位算法需求",
    "description": "需要深度学习视觉定位算法用于工业机器人无序抓取，误差小于0.5毫米。",
    "industry": "智能制造", "cooperation_mode": "合作开发", "budget_min": "50",
    "budget_max": "120", "region": "上海松江", "deadline": A_YEAR_AHEAD,
    "contact": "021-00000000 赵经理",
}


def test_login_required_and_wrong_password(site: Site) -> None:
    client = site.app.test_client()
    assert client.get("/").status_code == 302
    bad = client.post("/login", data={"username": "firm_a", "password": "wrong-1234567"})
    assert bad.status_code == 401
    assert "用户名或密码错误" in bad.get_data(as_text=True)


def test_firm_posts_need_and_sees_explained_matches(site: Site) -> None:
    client = site.client("firm_a")
    response = client.post("/needs/new", data=NEW_NEED)
    assert response.status_code == 302
    need_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    page = client.get(f"/needs/{need_id}").get_data(as_text=True)
    # The matching result is there, first, with its explanation and highlighted shared terms.
    first = page.index("基于深度学习的机器人视觉定位方法")
    assert first < page.index("抗体制剂稳定配方") if "抗体制剂稳定配方" in page else True
    assert "共同术语" in page and "<mark>" in page
    assert "语义相似度" in page and "关键词得分" in page
    with site.app.app_context(), sessions()() as db:
        need = db.get(Need, need_id)
        assert need.budget_max == 120 and need.deadline.isoformat() == A_YEAR_AHEAD
        assert db.scalar(select(AuditEntry).where(AuditEntry.entity == "need",
                                                  AuditEntry.entity_id == need_id))


def test_new_need_is_matchable_at_once(site: Site) -> None:
    client = site.client("firm_a")
    client.post("/needs/new", data=NEW_NEED | {"title": "独一无二的石墨烯散热膜需求",
                                               "description": "石墨烯散热膜导热系数提升"})
    office = site.client("office_u1")
    page = office.get("/search", query_string={"q": "石墨烯散热膜", "side": "need"})
    assert "独一无二的石墨烯散热膜需求" in page.get_data(as_text=True)


def test_bad_need_form_shows_field_errors_and_saves_nothing(site: Site) -> None:
    client = site.client("firm_a")
    bad = NEW_NEED | {"title": "", "budget_min": "abc", "deadline": "明天"}
    response = client.post("/needs/new", data=bad)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for name in ("title", "budget_min", "deadline"):
        assert f'data-field="{name}"' in page
    with site.app.app_context(), sessions()() as db:
        assert db.scalar(select(Need).where(Need.description == NEW_NEED["description"])) is None


def test_edit_close_reopen(site: Site) -> None:
    client = site.client("firm_a")
    need_id = site.ids["need"]["伺服电机振动抑制"]
    form = NEW_NEED | {"title": "伺服电机高速换向振动抑制", "description": "伺服电机振动抑制算法"}
    assert client.post(f"/needs/{need_id}/edit", data=form).status_code == 302
    closed = client.post(f"/needs/{need_id}/status", data={"status": "closed", "confirm": "1"})
    assert closed.status_code == 302
    office = site.client("office_u1")
    hits = office.get("/search", query_string={"q": "伺服电机高速换向", "side": "need"})
    assert "伺服电机高速换向振动抑制" not in hits.get_data(as_text=True)
    client.post(f"/needs/{need_id}/status", data={"status": "open"})
    hits = office.get("/search", query_string={"q": "伺服电机高速换向", "side": "need"})
    assert "伺服电机高速换向振动抑制" in hits.get_data(as_text=True)


def test_filters_keep_only_matching_results(site: Site) -> None:
    client = site.client("firm_a")
    need_id = site.ids["need"]["工业机器人视觉抓取精度提升"]
    page = client.get(f"/needs/{need_id}", query_string={"result_type": "论文"})
    text = page.get_data(as_text=True)
    assert "锂电池正极材料包覆工艺" in text
    assert "基于深度学习的机器人视觉定位方法" not in text
    bad = client.get(f"/needs/{need_id}", query_string={"date_from": "not-a-date"})
    assert bad.status_code == 400


def test_marks_are_stored_and_shown_to_the_office(site: Site) -> None:
    client = site.client("firm_a")
    need_id = site.ids["need"]["工业机器人视觉抓取精度提升"]
    result_id = site.ids["result"]["基于深度学习的机器人视觉定位方法"]
    response = client.post(f"/needs/{need_id}/feedback", data={
        "result_id": result_id, "relevant": "true", "reason": "精度满足要求，希望洽谈"})
    assert response.status_code == 302
    # Marking again updates the same mark.
    client.post(f"/needs/{need_id}/feedback", data={
        "result_id": result_id, "relevant": "true", "reason": "精度满足要求，希望尽快洽谈"})
    with site.app.app_context(), sessions()() as db:
        marks = list(db.scalars(select(MatchFeedback).where(MatchFeedback.need_id == need_id)))
        assert [(m.result_id, m.relevant, m.reason) for m in marks] == [
            (result_id, True, "精度满足要求，希望尽快洽谈")]
    office_page = site.client("office_u1").get(f"/results/{result_id}").get_data(as_text=True)
    assert "甲智能装备有限公司" in office_page and "希望尽快洽谈" in office_page
    office_home = site.client("office_u1").get("/").get_data(as_text=True)
    assert "希望尽快洽谈" in office_home
    # Another institution's office does not see who is interested.
    other = site.client("office_u2").get(f"/results/{result_id}").get_data(as_text=True)
    assert "希望尽快洽谈" not in other
    bad = client.post(f"/needs/{need_id}/feedback", data={"result_id": "x", "relevant": "maybe"})
    assert bad.status_code == 400
