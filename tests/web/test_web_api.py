"""The JSON API through HTTP: tokens, the pages' operations, the pages' permissions, and the
robustness contract: a success or a 4xx naming the field, never a 500, and a rejected request
leaves the database exactly as it was.

Behaviour that touches the database runs on SQLite and PostgreSQL (`site`); checks decided
before any SQL runs use `sqlite_site` only, to keep the suite fast.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from corpora.models import AuditEntry, MatchFeedback, Need, Result, Shortlist, ShortlistLot, User
from tests.support.api import (
    A_YEAR_AHEAD,
    API,
    NEW_NEED,
    NEW_RESULT,
    add_shortlist,
    bearer,
    error_of,
    need_id,
    result_id,
)
from tests.support.web import PASSWORD, Site, make_site
from web.database import sessions

MODELS = (Need, Result, MatchFeedback, AuditEntry, User, Shortlist, ShortlistLot)


# --- helpers --------------------------------------------------------------------------------


def snapshot(site: Site) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the API may write, so "unchanged" means unchanged."""
    with site.app.app_context(), sessions()() as db:
        return {
            model.__tablename__: [
                tuple(getattr(row, column.key) for column in model.__table__.columns)
                for row in db.scalars(select(model).order_by(model.id))
            ]
            for model in MODELS
        }


def post_json(client: FlaskClient, url: str, body: Any, headers: dict[str, str],
              method: str = "POST") -> Any:
    return client.open(url, method=method, data=json.dumps(body), headers=headers,
                       content_type="application/json")


# --- tokens and authentication ----------------------------------------------------------


def test_token_bearer_and_bad_tokens(site: Site) -> None:
    client = site.app.test_client()
    error = error_of(client.get(f"{API}/needs"), 401)
    assert "Bearer" in error["message"]
    headers = bearer(site, "firm_a")
    assert client.get(f"{API}/needs", headers=headers).status_code == 200
    for value in ("Bearer g60_wrong", "Basic Zm9vOmJhcg==", "Bearer", "Bearer " + "x" * 5000):
        response = client.get(f"{API}/needs", headers={"Authorization": value})
        error_of(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # A new token replaces the old one.
    newer = bearer(site, "firm_a", fresh=True)
    error_of(client.get(f"{API}/needs", headers=headers), 401)
    assert client.get(f"{API}/needs", headers=newer).status_code == 200
    # Wrong password: 401, audited, no token.
    bad = client.post(f"{API}/token", json={"username": "firm_a", "password": "nope-123456"})
    assert "token" not in error_of(bad, 401)
    with site.app.app_context(), sessions()() as db:
        failed = db.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")).all()
        assert [json.loads(e.detail)["username"] for e in failed] == ["firm_a"]
        issued = db.scalars(select(AuditEntry).where(AuditEntry.action == "issue_token")).all()
        assert len(issued) == 2


def test_token_request_validation(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    cases = [
        ({"username": "firm_a"}, "password"),
        ({"username": 5, "password": PASSWORD}, "username"),
        ({"username": "firm_a", "password": PASSWORD, "remember": True}, "remember"),
    ]
    for body, field in cases:
        assert field in error_of(client.post(f"{API}/token", json=body), 400)["fields"]
    # Values no account can have are refused as credentials, not crashed on.
    for username, password in [("firm_a\x00", PASSWORD), ("\ud800", PASSWORD),
                               ("firm_a", "\ud800\udfff"), ("x" * 10_000, PASSWORD)]:
        response = post_json(client, f"{API}/token",
                             {"username": username, "password": password}, {})
        error_of(response, 401)


# --- needs ------------------------------------------------------------------------------


def test_need_create_get_list_update_match(site: Site) -> None:
    client = site.app.test_client()
    firm = bearer(site, "firm_a")
    created = post_json(client, f"{API}/needs", NEW_NEED, firm)
    assert created.status_code == 201, created.get_data(as_text=True)
    need = created.get_json()
    assert created.headers["Location"].endswith(f"{API}/needs/{need['id']}")
    assert need["title"] == NEW_NEED["title"] and need["status"] == "open"
    assert need["budget_max"] == 120 and need["deadline"] == A_YEAR_AHEAD
    assert need["contact"] == NEW_NEED["contact"] and need["editable"] is True
    assert need["organisation"]["name"] == "甲智能装备有限公司"
    assert client.get(f"{API}/needs/{need['id']}", headers=firm).get_json() == need

    mine = client.get(f"{API}/needs", query_string={"mine": 1}, headers=firm).get_json()
    assert mine["total"] == 3 and {n["organisation"]["id"] for n in mine["items"]} == {
        site.ids["org"]["甲智能装备有限公司"]}
    page = client.get(f"{API}/needs", query_string={"per_page": 2, "page": 2},
                      headers=firm).get_json()
    assert page["total"] == 4 and len(page["items"]) == 2 and page["page"] == 2
    bio = client.get(f"{API}/needs", query_string={"industry": "生物医药"}, headers=firm)
    assert [n["title"] for n in bio.get_json()["items"]] == ["抗体药物稳定性改进"]

    patched = post_json(client, f"{API}/needs/{need['id']}",
                        {"budget_max": 200, "region": None, "status": "closed"}, firm, "PATCH")
    assert patched.status_code == 200, patched.get_data(as_text=True)
    body = patched.get_json()
    assert body["budget_max"] == 200 and body["region"] is None and body["status"] == "closed"
    assert body["title"] == NEW_NEED["title"]  # partial: untouched fields stay
    closed = client.get(f"{API}/needs", query_string={"status": "closed"}, headers=firm)
    assert [n["id"] for n in closed.get_json()["items"]] == [need["id"]]

    matches = client.get(f"{API}/needs/{need['id']}/matches", query_string={"k": 3},
                         headers=firm).get_json()
    assert matches["k"] == 3 and len(matches["matches"]) == 3
    best = matches["matches"][0]
    assert best["title"] == "基于深度学习的机器人视觉定位方法" and best["rank"] == 1
    assert best["explanation"]["why"] and "视觉" in "".join(best["explanation"]["shared_terms"])
    papers = client.get(f"{API}/needs/{need['id']}/matches",
                        query_string={"result_type": "论文"}, headers=firm).get_json()
    assert [m["title"] for m in papers["matches"]] == ["锂电池正极材料包覆工艺"]
    with site.app.app_context(), sessions()() as db:
        actions = db.scalars(select(AuditEntry.action).where(
            AuditEntry.entity == "need", AuditEntry.entity_id == need["id"])).all()
        assert sorted(actions) == ["close", "create", "update"]


def test_created_need_is_found_by_search_at_once(site: Site) -> None:
    client = site.app.test_client()
    body = NEW_NEED | {"title": "独一无二的石墨烯散热膜需求",
                       "description": "石墨烯散热膜导热系数提升"}
    created = post_json(client, f"{API}/needs", body, bearer(site, "firm_a"))
    assert created.status_code == 201
    hits = client.get(f"{API}/search", query_string={"q": "石墨烯散热膜", "side": "need"},
                      headers=bearer(site, "office_u1")).get_json()
    assert hits["matches"][0]["id"] == created.get_json()["id"]
    assert "contact" not in hits["matches"][0]
    results = client.get(f"{API}/search", query_string={"q": "抗体制剂稳定性", "k": 2},
                         headers=bearer(site, "firm_b")).get_json()
    assert results["side"] == "result" and results["matches"][0]["title"] == "抗体制剂稳定配方"


# --- results ----------------------------------------------------------------------------


def test_result_create_get_list_update_match_interest(site: Site) -> None:
    client = site.app.test_client()
    office = bearer(site, "office_u1")
    created = post_json(client, f"{API}/results", NEW_RESULT, office)
    assert created.status_code == 201, created.get_data(as_text=True)
    result = created.get_json()
    assert result["keywords"] == ["石墨烯", "导热膜", "散热"]
    assert result["inventors"] == ["张三", "李四"]
    assert result["transfer_modes"] == ["技术转让", "许可"]
    assert result["asking_price"] == 300 and result["published_on"] == "2024-05-01"
    assert result["status"] == "active" and result["organisation"]["name"] == "示例理工大学"
    assert result["title_derived"] is False  # an office's own title; only the demo derives one
    got = client.get(f"{API}/results/{result['id']}", headers=bearer(site, "firm_a")).get_json()
    assert got["editable"] is False and got["keywords"] == result["keywords"]

    mine = client.get(f"{API}/results", query_string={"mine": "1"}, headers=office).get_json()
    assert mine["total"] == 4
    papers = client.get(f"{API}/results", query_string={"result_type": "论文"}, headers=office)
    assert [r["title"] for r in papers.get_json()["items"]] == ["锂电池正极材料包覆工艺"]

    patched = post_json(client, f"{API}/results/{result['id']}",
                        {"keywords": "石墨烯;散热膜", "status": "withdrawn"}, office, "PATCH")
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert patched.get_json()["keywords"] == ["石墨烯", "散热膜"]
    assert patched.get_json()["status"] == "withdrawn"
    # Withdrawn results are no longer matchable; restoring makes them so again.
    firm = bearer(site, "firm_a")
    hits = client.get(f"{API}/search", query_string={"q": "石墨烯散热膜"}, headers=firm)
    assert result["id"] not in [m["id"] for m in hits.get_json()["matches"]]
    post_json(client, f"{API}/results/{result['id']}", {"status": "active"}, office, "PATCH")
    hits = client.get(f"{API}/search", query_string={"q": "石墨烯散热膜"}, headers=firm)
    assert hits.get_json()["matches"][0]["id"] == result["id"]

    servo = result_id(site, "伺服系统振动抑制控制器")
    needs = client.get(f"{API}/results/{servo}/matches", headers=firm).get_json()
    assert needs["matches"][0]["title"] == "伺服电机振动抑制"
    assert needs["matches"][0]["explanation"]["why"]


def test_feedback_and_interest(site: Site) -> None:
    client = site.app.test_client()
    firm = bearer(site, "firm_a")
    need, result = need_id(site), result_id(site)
    marked = post_json(client, f"{API}/needs/{need}/feedback",
                       {"result_id": result, "relevant": True, "reason": "精度满足要求"}, firm)
    assert marked.status_code == 200, marked.get_data(as_text=True)
    assert marked.get_json()["relevant"] is True
    again = post_json(client, f"{API}/needs/{need}/feedback",
                      {"result_id": str(result), "relevant": "true", "reason": "希望洽谈"}, firm)
    assert again.get_json()["reason"] == "希望洽谈"
    matches = client.get(f"{API}/needs/{need}/matches", headers=firm).get_json()["matches"]
    assert next(m for m in matches if m["id"] == result)["mark"] == {
        "relevant": True, "reason": "希望洽谈"}
    interest = client.get(f"{API}/results/{result}/interest",
                          headers=bearer(site, "office_u1")).get_json()
    assert [(i["need"]["id"], i["relevant"], i["reason"]) for i in interest["items"]] == [
        (need, True, "希望洽谈")]
    assert interest["items"][0]["need"]["contact"] == "13800000001 张经理"
    for who in ("office_u2", "firm_a", "firm_b"):
        error_of(client.get(f"{API}/results/{result}/interest", headers=bearer(site, who)), 403)
    assert client.get(f"{API}/results/{result}/interest",
                      headers=bearer(site, "officer")).status_code == 200

    before = snapshot(site)
    for body, field in [
        ({"result_id": "²", "relevant": True}, "result_id"),
        ({"result_id": "9" * 30, "relevant": True}, "result_id"),
        ({"result_id": 999_999, "relevant": True}, "result_id"),
        ({"result_id": True, "relevant": True}, "result_id"),
        ({"result_id": result, "relevant": "maybe"}, "relevant"),
        ({"result_id": result}, "relevant"),
        ({"result_id": result, "relevant": False, "reason": "a\x00b"}, "reason"),
        ({"result_id": result, "relevant": False, "reason": "\udc80"}, "reason"),
        ({"result_id": result, "relevant": False, "reason": "长" * 501}, "reason"),
        ({"result_id": result, "relevant": False, "reason": ["x"]}, "reason"),
        ({"result_id": result, "relevant": False, "score": 5}, "score"),
    ]:
        response = post_json(client, f"{API}/needs/{need}/feedback", body, firm)
        assert field in error_of(response, 400)["fields"], body
    other = post_json(client, f"{API}/needs/{need}/feedback",
                      {"result_id": result, "relevant": False}, bearer(site, "firm_b"))
    error_of(other, 403)
    assert snapshot(site) == before


# --- permissions ------------------------------------------------------------------------


def test_permissions_match_the_pages(site: Site) -> None:
    client = site.app.test_client()
    firm_a, firm_b = bearer(site, "firm_a"), bearer(site, "firm_b")
    office_u1, office_u2 = bearer(site, "office_u1"), bearer(site, "office_u2")
    officer, admin = bearer(site, "officer"), bearer(site, "admin")
    need, result = need_id(site), result_id(site)
    before = snapshot(site)

    error_of(post_json(client, f"{API}/needs/{need}", {"title": "改"}, firm_b, "PATCH"), 403)
    error_of(post_json(client, f"{API}/results/{result}", {"title": "改"}, office_u2,
                       "PATCH"), 403)
    error_of(post_json(client, f"{API}/results/{result}", {"title": "改"}, firm_a, "PATCH"), 403)
    error_of(post_json(client, f"{API}/results", NEW_RESULT, firm_a), 403)
    error_of(post_json(client, f"{API}/needs", NEW_NEED, office_u1), 403)
    error_of(post_json(client, f"{API}/needs", NEW_NEED, officer), 403)
    error_of(client.get(f"{API}/needs", query_string={"mine": 1}, headers=office_u1), 403)
    error_of(client.get(f"{API}/results", query_string={"mine": 1}, headers=firm_a), 403)
    assert snapshot(site) == before

    # Contacts: the owning firm, offices, officers and admins; never another firm.
    assert "contact" not in client.get(f"{API}/needs/{need}", headers=firm_b).get_json()
    listed = client.get(f"{API}/needs", headers=firm_b).get_json()["items"]
    assert ["contact" in n for n in listed if n["id"] == need] == [False]
    assert all("contact" in n for n in listed if n["organisation"]["name"] == "乙生物医药有限公司")
    for headers in (firm_a, office_u1, officer, admin):
        body = client.get(f"{API}/needs/{need}", headers=headers).get_json()
        assert body["contact"] == "13800000001 张经理"

    # Admins edit anything, as on the pages.
    patched = post_json(client, f"{API}/needs/{need}", {"region": "嘉兴"}, admin, "PATCH")
    assert patched.status_code == 200 and patched.get_json()["region"] == "嘉兴"


def test_shortlists_for_officers_only(site: Site) -> None:
    shortlist = add_shortlist(site)
    client = site.app.test_client()
    for who in ("firm_a", "office_u1"):
        error_of(client.get(f"{API}/shortlists", headers=bearer(site, who)), 403)
        error_of(client.get(f"{API}/shortlists/{shortlist}", headers=bearer(site, who)), 403)
    officer = bearer(site, "officer")
    listed = client.get(f"{API}/shortlists", headers=officer).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == shortlist
    detail = client.get(f"{API}/shortlists/{shortlist}", headers=bearer(site, "admin")).get_json()
    assert detail["title"] == "2025 松江成果拍卖会" and detail["event_date"] == "2025-11-20"
    assert [(lot["position"], lot["result_id"], lot["reserve_price"], lot["note"])
            for lot in detail["lots"]] == [
        (1, result_id(site), 80.0, "起拍"), (2, result_id(site, "抗体制剂稳定配方"), None, None)]
    assert detail["lots"][0]["title"] == "基于深度学习的机器人视觉定位方法"
    error_of(client.get(f"{API}/shortlists/999999", headers=officer), 404)


def test_not_found(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    headers = bearer(sqlite_site, "admin")
    for url in ("/needs/999999", "/results/999999", "/needs/999999/matches",
                "/results/999999/matches", "/results/999999/interest", "/nothing-here"):
        error_of(client.get(API + url, headers=headers), 404)
    error_of(post_json(client, f"{API}/needs/999999", {"title": "x"}, headers, "PATCH"), 404)
    error_of(client.delete(f"{API}/needs/1", headers=headers), 405)


# --- validation: 400 naming the field, nothing saved ------------------------------------


NEED_CASES = [
    ({k: v for k, v in NEW_NEED.items() if k != "title"}, "title"),
    (NEW_NEED | {"title": ""}, "title"),
    (NEW_NEED | {"title": None}, "title"),
    (NEW_NEED | {"title": 12345}, "title"),
    (NEW_NEED | {"title": ["a"]}, "title"),
    (NEW_NEED | {"title": "标" * 201}, "title"),
    (NEW_NEED | {"title": "a\u202eb"}, "title"),
    (NEW_NEED | {"description": "长" * 20_001}, "description"),
    (NEW_NEED | {"description": {"text": "x"}}, "description"),
    (NEW_NEED | {"budget_min": [50]}, "budget_min"),
    (NEW_NEED | {"budget_min": "50"}, "budget_min"),
    (NEW_NEED | {"budget_min": True}, "budget_min"),
    (NEW_NEED | {"budget_min": -1}, "budget_min"),
    (NEW_NEED | {"budget_min": 10**400}, "budget_min"),
    (NEW_NEED | {"budget_min": -(10**400)}, "budget_min"),
    (NEW_NEED | {"budget_max": 1e308}, "budget_max"),
    (NEW_NEED | {"budget_min": 200, "budget_max": 100}, "budget_max"),
    (NEW_NEED | {"deadline": "明天"}, "deadline"),
    (NEW_NEED | {"deadline": "2027-02-30"}, "deadline"),
    (NEW_NEED | {"deadline": 20270630}, "deadline"),
    (NEW_NEED | {"industry": "炼金术"}, "industry"),
    (NEW_NEED | {"cooperation_mode": "赠送"}, "cooperation_mode"),
    (NEW_NEED | {"contact": "x\x00y"}, "contact"),
    (NEW_NEED | {"status": "open"}, "status"),
    (NEW_NEED | {"organisation_id": 2}, "organisation_id"),
    (NEW_NEED | {"\ud800" * 3: 1}, "\\ud800\\ud800\\ud800"),
]


@pytest.mark.parametrize(("body", "field"), NEED_CASES,
                         ids=[f"{n}-{field}" for n, (_, field) in enumerate(NEED_CASES)])
def test_bad_need_is_refused_with_its_field(sqlite_site: Site, body: dict[str, Any],
                                            field: str) -> None:
    client = sqlite_site.app.test_client()
    headers = bearer(sqlite_site, "firm_a")
    before = snapshot(sqlite_site)
    error = error_of(post_json(client, f"{API}/needs", body, headers), 400)
    assert field in error["fields"], error
    assert snapshot(sqlite_site) == before


def test_bad_result_is_refused_with_its_field(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    headers = bearer(sqlite_site, "office_u1")
    before = snapshot(sqlite_site)
    for body, field in [
        ({k: v for k, v in NEW_RESULT.items() if k != "abstract"}, "abstract"),
        (NEW_RESULT | {"keywords": [1, 2]}, "keywords"),
        (NEW_RESULT | {"keywords": {"a": 1}}, "keywords"),
        (NEW_RESULT | {"keywords": [f"词{i}" for i in range(101)]}, "keywords"),
        (NEW_RESULT | {"inventors": 7}, "inventors"),
        (NEW_RESULT | {"transfer_modes": ["送人"]}, "transfer_modes"),
        (NEW_RESULT | {"result_type": "秘籍"}, "result_type"),
        (NEW_RESULT | {"maturity": 3}, "maturity"),
        (NEW_RESULT | {"asking_price": "很贵"}, "asking_price"),
        (NEW_RESULT | {"published_on": "2024-13-01"}, "published_on"),
        (NEW_RESULT | {"abstract": "摘" * 20_001}, "abstract"),
        (NEW_RESULT | {"status": "active"}, "status"),
    ]:
        error = error_of(post_json(client, f"{API}/results", body, headers), 400)
        assert field in error["fields"], (body, error)
    assert snapshot(sqlite_site) == before


def test_bad_patch_changes_nothing(site: Site) -> None:
    """One bad field spoils the whole request: the good fields beside it are not saved."""
    client = site.app.test_client()
    firm, office = bearer(site, "firm_a"), bearer(site, "office_u1")
    need, result = need_id(site), result_id(site)
    assert post_json(client, f"{API}/needs/{need}", {"budget_max": 100}, firm,
                     "PATCH").status_code == 200
    before = snapshot(site)
    for body, field in [
        ({"title": "新标题", "budget_min": 500}, "budget_max"),  # min above the stored max
        ({"title": "新标题", "status": "archived"}, "status"),
        ({"title": "新标题", "status": 1}, "status"),
        ({"title": "新标题", "budget_max": "多"}, "budget_max"),
        ({"title": None}, "title"),
        ({"description": "  "}, "description"),
        ({"title": "新标题", "owner": "firm_b"}, "owner"),
    ]:
        error = error_of(post_json(client, f"{API}/needs/{need}", body, firm, "PATCH"), 400)
        assert field in error["fields"], (body, error)
    for body, field in [
        ({"title": "新标题", "status": "deleted"}, "status"),
        ({"title": "新标题", "keywords": [None]}, "keywords"),
        ({"abstract": None}, "abstract"),
    ]:
        error = error_of(post_json(client, f"{API}/results/{result}", body, office, "PATCH"),
                         400)
        assert field in error["fields"], (body, error)
    assert snapshot(site) == before


@pytest.mark.parametrize(("data", "content_type", "hint"), [
    ("[1, 2]", "application/json", "对象"),
    ('"title"', "application/json", "对象"),
    ("null", "application/json", "对象"),
    ('{"title": ', "application/json", "JSON"),
    ("", "application/json", "为空"),
    ('{"title": NaN}', "application/json", "NaN"),
    ('{"title": "a", "title": "b"}', "application/json", "重复"),
    ("[" * 100_000, "application/json", "JSON"),
    ('{"budget_min": 1' + "0" * 5000 + "}", "application/json", "JSON"),
    (b'{"title": "\xff\xfe"}', "application/json", "UTF-8"),
    ("title=x", "application/x-www-form-urlencoded", "Content-Type"),
    ('{"title": "x"}', "text/plain", "Content-Type"),
])
def test_body_must_be_a_json_object(sqlite_site: Site, data: str | bytes, content_type: str,
                                    hint: str) -> None:
    client = sqlite_site.app.test_client()
    headers = bearer(sqlite_site, "firm_a")
    before = snapshot(sqlite_site)
    response = client.post(f"{API}/needs", data=data, content_type=content_type,
                           headers=headers)
    assert hint in error_of(response, 400)["message"]
    assert snapshot(sqlite_site) == before


def test_query_parameters_are_validated(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    headers = bearer(sqlite_site, "office_u1")
    need = need_id(sqlite_site)
    for url, params, field in [
        ("/needs", {"page": "abc"}, "page"),
        ("/needs", {"page": "0"}, "page"),
        ("/needs", {"per_page": "101"}, "per_page"),
        ("/needs", {"per_page": "١٠"}, "per_page"),
        ("/needs", {"organisation_id": "9" * 20}, "organisation_id"),
        ("/needs", {"industry": "炼金术"}, "industry"),
        ("/needs", {"industry": "智能\x00制造"}, "industry"),
        ("/needs", {"status": "deleted"}, "status"),
        ("/needs", {"mine": "maybe"}, "mine"),
        ("/needs", {"industy": "智能制造"}, "industy"),
        ("/results", {"maturity": "量产"}, "maturity"),
        ("/results", {"page": ["1", "2"]}, "page"),
        (f"/needs/{need}/matches", {"k": "0"}, "k"),
        (f"/needs/{need}/matches", {"k": "101"}, "k"),
        (f"/needs/{need}/matches", {"k": "1e3"}, "k"),
        (f"/needs/{need}/matches", {"date_from": "yesterday"}, "date_from"),
        (f"/needs/{need}/matches", {"city": "嘉兴"}, "city"),  # a need filter, not a result one
        ("/search", {}, "q"),
        ("/search", {"q": "   "}, "q"),
        ("/search", {"q": "x" * 2001}, "q"),
        ("/search", {"q": "a\x07b"}, "q"),
        ("/search", {"q": "机器人", "side": "firm"}, "side"),
        ("/search", {"q": "机器人", "k": "-1"}, "k"),
        ("/search", {"q": "机器人", "industry": "x" * 201}, "industry"),
        ("/needs/abc", {}, "need_id"),
        ("/needs/0", {}, "need_id"),
        ("/results/99999999999999999999", {}, "result_id"),
        ("/shortlists/1.5", {}, "shortlist_id"),
    ]:
        token = bearer(sqlite_site, "officer") if url.startswith("/shortlists") else headers
        response = client.get(API + url, query_string=params, headers=token)
        error = error_of(response, 400)
        assert field in error.get("fields", {}), (url, params, error)
    # A NUL byte is refused before it reaches SQL or the engine; invalid UTF-8 arrives
    # still percent-encoded (Werkzeug) and is searched as that text.
    for raw in ("industry=%00", "status=open%00"):
        error = error_of(client.get(f"{API}/needs", query_string=raw, headers=headers), 400)
        assert raw.split("=")[0] in error["fields"]
    response = client.get(f"{API}/search", query_string="q=%ff%fe", headers=headers)
    assert response.status_code == 200 and response.get_json()["q"] == "%FF%FE"


def test_oversized_body_is_413(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    headers = bearer(sqlite_site, "firm_a")
    before = snapshot(sqlite_site)
    body = json.dumps(NEW_NEED | {"description": "长" * (6 * 1024 * 1024 // 3)})
    response = client.post(f"{API}/needs", data=body, content_type="application/json",
                           headers=headers)
    error_of(response, 413)
    assert snapshot(sqlite_site) == before


# --- the browser's cookie: CSRF for writes ------------------------------------------------


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_cookie_writes_need_the_csrf_token(tmp_path: Path) -> None:
    site = make_site(f"sqlite:///{tmp_path / 'csrf.sqlite'}", tmp_path / "home")
    try:
        client = site.app.test_client()
        token = CSRF_INPUT.search(client.get("/login").get_data(as_text=True)).group(1)
        login = client.post("/login", data={"username": "firm_a", "password": PASSWORD,
                                            "csrf_token": token})
        assert login.status_code == 302
        # Reads need no token.
        assert client.get(f"{API}/needs").status_code == 200
        before = snapshot(site)
        refused = client.post(f"{API}/needs", json=NEW_NEED)
        assert "CSRF" in error_of(refused, 400)["message"]
        wrong = client.post(f"{API}/needs", json=NEW_NEED, headers={"X-CSRFToken": "forged"})
        error_of(wrong, 400)
        assert snapshot(site) == before

        token = CSRF_INPUT.search(client.get("/account").get_data(as_text=True)).group(1)
        accepted = client.post(f"{API}/needs", json=NEW_NEED, headers={"X-CSRFToken": token})
        assert accepted.status_code == 201, accepted.get_data(as_text=True)
        # A bearer token carries no ambient authority: no CSRF token needed.
        fresh = site.app.test_client()
        tokened = fresh.post(f"{API}/token", json={"username": "firm_a", "password": PASSWORD})
        assert tokened.status_code == 200
        headers = {"Authorization": f"Bearer {tokened.get_json()['token']}"}
        assert fresh.post(f"{API}/needs", json=NEW_NEED | {"title": "第二条"},
                          headers=headers).status_code == 201
    finally:
        site.app.extensions["matcher.engine"].dispose()


# --- robustness: random input never makes a 500 -------------------------------------------


def _random_text(rng: random.Random) -> str:
    pools = [
        lambda: chr(rng.randrange(0x20, 0x7F)),
        lambda: chr(rng.randrange(0x4E00, 0x9FFF)),
        lambda: chr(rng.randrange(0, 0x20)),
        lambda: chr(rng.randrange(0xD800, 0xE000)),  # lone surrogates
        lambda: chr(rng.choice([0x202E, 0x2066, 0xFFFE, 0xFFFD, 0xFEFF, 0x200B])),
        lambda: chr(rng.randrange(0x1F300, 0x1FAFF)),
        lambda: chr(rng.randrange(0x10000, 0x110000)),
    ]
    length = rng.choice([0, 1, 3, 10, 60, 250, 20_050])
    return "".join(rng.choice(pools)() for _ in range(min(length, 300))) * (
        1 if length < 20_000 else 70)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 2 else 9)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63, 10**30, -(10**300), 10**400])
    if choice == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e308, 1e-320, 123.456])
    if choice in (4, 5, 6):
        return _random_text(rng)
    if choice == 7:
        return rng.choice(["2025-01-31", "2025-02-30", "0000-01-01", "9999-12-31",
                           "智能制造", "合作开发", "发明专利", "中试", "open", "closed",
                           "withdrawn", "active", "50", "1e999", "-5"])
    if choice == 8:
        return str(rng.randrange(-5, 10**12))
    if choice in (9, 10):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_random_text(rng)[:20]: _random_value(rng, depth + 1)
            for _ in range(rng.randrange(3))}


def _random_body(rng: random.Random, fields: tuple[str, ...], base: dict[str, Any]) -> Any:
    if rng.random() < 0.05:
        return _random_value(rng)
    body = dict(base) if rng.random() < 0.5 else {}
    for _ in range(rng.randrange(1, 5)):
        name = rng.choice(fields) if rng.random() < 0.85 else _random_text(rng)[:30]
        if rng.random() < 0.15:
            body.pop(name, None)
        else:
            body[name] = _random_value(rng)
    return body


def _random_query(rng: random.Random, names: tuple[str, ...]) -> str:
    parts = []
    for _ in range(rng.randrange(4)):
        name = rng.choice(names)
        raw = rng.choice([
            "".join(f"%{rng.randrange(256):02x}" for _ in range(rng.randrange(1, 8))),
            str(rng.randrange(-10, 10**rng.randrange(1, 25))), "智能制造", "", "1", "abc",
            "2025-01-31", "9" * 400,
        ])
        parts.append(f"{name}={raw}")
    return "&".join(parts)


def test_random_requests_never_500_and_rejections_change_nothing(sqlite_site: Site) -> None:
    site = sqlite_site
    rng = random.Random(20250531)
    client = site.app.test_client()
    firm, office = bearer(site, "firm_a"), bearer(site, "office_u1")
    need, result = need_id(site), result_id(site)
    need_fields = (*NEW_NEED, "status")
    result_fields = (*NEW_RESULT, "status")
    targets = [
        ("POST", f"{API}/needs", firm, need_fields, NEW_NEED),
        ("PATCH", f"{API}/needs/{need}", firm, need_fields, {}),
        ("POST", f"{API}/results", office, result_fields, NEW_RESULT),
        ("PATCH", f"{API}/results/{result}", office, result_fields, {}),
        ("POST", f"{API}/needs/{need}/feedback", firm, ("result_id", "relevant", "reason"),
         {"result_id": result, "relevant": True}),
    ]
    before = snapshot(site)
    for _ in range(150):
        method, url, headers, fields, base = rng.choice(targets)
        body = _random_body(rng, fields, base)
        if rng.random() < 0.05:
            data: str | bytes = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            data = json.dumps(body)  # ensure_ascii: lone surrogates travel as \udxxx escapes
        response = client.open(url, method=method, data=data, headers=headers,
                               content_type="application/json")
        assert response.status_code < 500
        after = snapshot(site)
        if response.status_code >= 400:
            error_of(response, response.status_code)
            assert after == before, (method, url, data[:300])
        before = after
    gets = [
        (f"{API}/needs", ("industry", "cooperation_mode", "status", "organisation_id", "mine",
                          "page", "per_page", "bogus")),
        (f"{API}/results", ("industry", "result_type", "maturity", "status", "page", "mine")),
        (f"{API}/needs/{need}/matches", ("k", "industry", "result_type", "date_from",
                                         "date_to", "institution")),
        (f"{API}/results/{result}/matches", ("k", "city", "industry", "date_to")),
        (f"{API}/search", ("q", "q", "side", "k", "industry", "maturity", "date_from")),
    ]
    for _ in range(150):
        url, names = rng.choice(gets)
        response = client.get(url, query_string=_random_query(rng, names), headers=office)
        assert response.status_code < 500
        if response.status_code >= 400:
            error_of(response, response.status_code)
    assert snapshot(site) == before
