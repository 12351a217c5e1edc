"""Gaps found by walking through each role, through HTTP: past deadlines refused, a second
step before closing, withdrawing and disabling, passwords (own and reset), organisations,
我的成果's search and counts, upload templates, GBK/GB18030 uploads, rejected rows named by
编号 or title, links to what an upload imported, the 单位 suggestions, tags."""

from __future__ import annotations

import codecs
import io
import re
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import select

from corpora.connections import ConnectionRequest
from corpora.models import AuditEntry, MatchFeedback, Need, Organisation, Result, User
from service.records import beijing_today
from tests.support.api import API, bearer
from tests.support.web import PASSWORD, Site
from web.database import sessions
from web.results import upload_columns

NEED = {"title": "视觉检测需求", "description": "需要视觉检测算法", "industry": "智能制造",
        "cooperation_mode": "合作开发", "budget_min": "10", "budget_max": "50",
        "region": "上海松江", "contact": "021-0000"}
NEW_PASSWORD = "Another-pass-2026"


def _location_id(response) -> int:  # noqa: ANN001 - a test client response
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _audited(site: Site, action: str, entity_id: int | None = None) -> bool:
    with site.app.app_context(), sessions()() as db:
        query = select(AuditEntry).where(AuditEntry.action == action)
        if entity_id is not None:
            query = query.where(AuditEntry.entity_id == entity_id)
        return db.scalar(query) is not None


# --- deadlines ------------------------------------------------------------------------------

def test_a_past_deadline_is_refused_on_create_and_edit(site: Site) -> None:
    client = site.client("firm_a")
    yesterday = (beijing_today() - timedelta(days=1)).isoformat()
    refused = client.post("/needs/new", data=NEED | {"deadline": yesterday})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert 'data-field="deadline"' in page and "已过" in page
    today = client.post("/needs/new", data=NEED | {"deadline": beijing_today().isoformat()})
    assert today.status_code == 302
    need_id = _location_id(today)
    moved = client.post(f"/needs/{need_id}/edit", data=NEED | {"deadline": yesterday})
    assert moved.status_code == 400 and 'data-field="deadline"' in moved.get_data(as_text=True)


def test_an_expired_need_can_still_be_edited_if_its_deadline_stays(site: Site) -> None:
    need_id = site.ids["need"]["伺服电机振动抑制"]
    expired = beijing_today() - timedelta(days=30)
    with site.app.app_context(), sessions()() as db:
        db.get(Need, need_id).deadline = expired
        db.commit()
    client = site.client("firm_a")
    kept = client.post(f"/needs/{need_id}/edit",
                       data=NEED | {"title": "伺服电机振动抑制（补充）",
                                    "deadline": expired.isoformat()})
    assert kept.status_code == 302
    earlier = (expired - timedelta(days=1)).isoformat()
    assert client.post(f"/needs/{need_id}/edit",
                       data=NEED | {"deadline": earlier}).status_code == 400


def test_the_api_refuses_a_past_deadline_naming_it(site: Site) -> None:
    yesterday = (beijing_today() - timedelta(days=1)).isoformat()
    firm = bearer(site, "firm_a")
    client = site.app.test_client()
    created = client.post(f"{API}/needs", json=NEED | {"deadline": yesterday},
                          headers=firm)
    assert created.status_code == 400
    assert "deadline" in created.get_json()["error"]["fields"]
    need_id = site.ids["need"]["伺服电机振动抑制"]
    patched = client.patch(f"{API}/needs/{need_id}", json={"deadline": yesterday},
                           headers=firm)
    assert patched.status_code == 400 and "deadline" in patched.get_json()["error"]["fields"]


# --- confirmation ---------------------------------------------------------------------------

def _confirmation(page: str, action: str) -> None:
    box = page.split('id="confirm"', 1)[-1]
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', box, re.S)
    assert form and form.group(1) == action, page
    assert 'name="csrf_token"' in form.group(2)
    assert '<input type="hidden" name="confirm" value="1">' in form.group(2)
    assert "确认" in form.group(2) and ">取消</a>" in page
    assert "<script" not in page.split("<main", 1)[-1]


def test_closing_a_need_asks_first(site: Site) -> None:
    client = site.client("firm_a")
    need_id = site.ids["need"]["伺服电机振动抑制"]
    url = f"/needs/{need_id}/status"
    asked = client.post(url, data={"status": "closed"})
    assert asked.status_code == 200
    page = asked.get_data(as_text=True)
    _confirmation(page, url)
    assert "伺服电机振动抑制" in page and f'href="/needs/{need_id}"' in page
    with site.app.app_context(), sessions()() as db:
        assert db.get(Need, need_id).status == "open"
    assert client.post(url, data={"status": "closed", "confirm": "1"}).status_code == 302
    with site.app.app_context(), sessions()() as db:
        assert db.get(Need, need_id).status == "closed"
    # Reopening takes nothing back: no second step.
    assert client.post(url, data={"status": "open"}).status_code == 302


def test_withdrawing_a_result_asks_first(site: Site) -> None:
    client = site.client("office_u1")
    result_id = site.ids["result"]["伺服系统振动抑制控制器"]
    url = f"/results/{result_id}/status"
    asked = client.post(url, data={"status": "withdrawn"})
    assert asked.status_code == 200
    _confirmation(asked.get_data(as_text=True), url)
    with site.app.app_context(), sessions()() as db:
        assert db.get(Result, result_id).status == "active"
    assert client.post(url, data={"status": "withdrawn", "confirm": "1"}).status_code == 302
    with site.app.app_context(), sessions()() as db:
        assert db.get(Result, result_id).status == "withdrawn"


def test_disabling_an_account_asks_first(site: Site) -> None:
    admin = site.client("admin")
    user_id = site.ids["user"]["firm_b"]
    url = f"/admin/users/{user_id}/active"
    asked = admin.post(url, data={"active": "0"})
    assert asked.status_code == 200
    page = asked.get_data(as_text=True)
    _confirmation(page, url)
    assert "firm_b" in page
    with site.app.app_context(), sessions()() as db:
        assert db.get(User, user_id).is_active
    assert admin.post(url, data={"active": "0", "confirm": "1"}).status_code == 302
    with site.app.app_context(), sessions()() as db:
        assert not db.get(User, user_id).is_active


# --- passwords and organisations ------------------------------------------------------------

def test_every_role_can_change_its_password_from_the_account_page(site: Site) -> None:
    for username in ("firm_a", "office_u1", "officer", "admin"):
        client = site.client(username)
        home = client.get("/").get_data(as_text=True)
        assert 'href="/account"' in home, username
        assert 'action="/account/password"' in client.get("/account").get_data(as_text=True)
        changed = client.post("/account/password", data={
            "current_password": PASSWORD, "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD})
        assert changed.status_code == 302, (username, changed.get_data(as_text=True))
        login = site.app.test_client().post(
            "/login", data={"username": username, "password": NEW_PASSWORD})
        assert login.status_code == 302, username


def test_admin_resets_a_password_ending_sessions_and_the_token(site: Site) -> None:
    user_id = site.ids["user"]["office_u2"]
    victim = site.client("office_u2")
    token = bearer(site, "office_u2")
    assert site.app.test_client().get(f"{API}/results", headers=token).status_code == 200
    admin = site.client("admin")
    url = f"/admin/users/{user_id}/password"
    assert url in admin.get("/admin/users").get_data(as_text=True)
    assert admin.get(url).status_code == 200
    weak = admin.post(url, data={"new_password": "short", "confirm_password": "short"})
    assert weak.status_code == 400 and 'data-field="new_password"' in weak.get_data(as_text=True)
    differ = admin.post(url, data={"new_password": NEW_PASSWORD, "confirm_password": "x"})
    assert differ.status_code == 400
    assert 'data-field="confirm_password"' in differ.get_data(as_text=True)
    done = admin.post(url, data={"new_password": NEW_PASSWORD,
                                 "confirm_password": NEW_PASSWORD})
    assert done.status_code == 302
    assert victim.get("/results/mine").status_code == 302  # signed out
    assert site.app.test_client().get(f"{API}/results", headers=token).status_code == 401
    assert site.app.test_client().post("/login", data={
        "username": "office_u2", "password": NEW_PASSWORD}).status_code == 302
    assert _audited(site, "reset_password", user_id)
    assert site.client("firm_a").post(url, data={
        "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}).status_code == 403
    own = admin.post(f"/admin/users/{site.ids['user']['admin']}/password",
                     data={"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert own.status_code == 400


def test_admin_creates_an_organisation_and_binds_an_account_to_it(site: Site) -> None:
    admin = site.client("admin")
    made = admin.post("/admin/organisations", data={
        "name": "新设研究院", "kind": "institute", "city": "苏州", "tier": "新型研发机构"})
    assert made.status_code == 302
    with site.app.app_context(), sessions()() as db:
        org = db.scalar(select(Organisation).where(Organisation.name == "新设研究院"))
        assert (org.kind, org.city, org.tier, org.is_sample) == (
            "institute", "苏州", "新型研发机构", False)
    assert _audited(site, "create_organisation", org.id)
    twice = admin.post("/admin/organisations", data={"name": " 新设研究院 ", "kind": "firm"})
    assert twice.status_code == 400 and 'data-field="name"' in twice.get_data(as_text=True)
    for bad, field in (({"name": "", "kind": "firm"}, "name"),
                       ({"name": "某公司", "kind": "bank"}, "kind"),
                       ({"name": "某公司", "kind": "firm", "city": "北京"}, "city"),
                       ({"name": "某公司", "kind": "firm", "tier": "x" * 60}, "tier")):
        refused = admin.post("/admin/organisations", data=bad)
        assert refused.status_code == 400, bad
        assert f'data-field="{field}"' in refused.get_data(as_text=True), bad
    bound = admin.post("/admin/users", data={
        "username": "institute_office", "display_name": "研究院", "role": "office",
        "organisation": "新设研究院", "password": "Long-enough-123"})
    assert bound.status_code == 302
    assert site.client("office_u1").post(
        "/admin/organisations", data={"name": "x", "kind": "firm"}).status_code == 403


# --- 我的成果 ---------------------------------------------------------------------------------

def test_my_results_search_total_and_counts(site: Site) -> None:
    result_id = site.ids["result"]["基于深度学习的机器人视觉定位方法"]
    need_id = site.ids["need"]["工业机器人视觉抓取精度提升"]
    firm = site.client("firm_a")
    assert firm.post(f"/needs/{need_id}/feedback",
                     data={"result_id": result_id, "relevant": "1"}).status_code == 302
    with site.app.app_context(), sessions()() as db:
        db.add(ConnectionRequest(need_id=need_id, result_id=result_id,
                                 requester_id=site.ids["user"]["firm_a"],
                                 requester_side="firm", message="想进一步洽谈"))
        db.commit()
        total = len(db.scalars(select(Result.id).where(
            Result.organisation_id == site.ids["org"]["示例理工大学"])).all())
    client = site.client("office_u1")
    page = client.get("/results/mine").get_data(as_text=True)
    assert f"共有成果 {total} 项" in page
    assert f'<td data-interest="{result_id}">1</td>' in page
    assert f'<td data-requests="{result_id}">1</td>' in page
    other = site.ids["result"]["伺服系统振动抑制控制器"]
    assert f'<td data-interest="{other}">0</td>' in page
    found = client.get("/results/mine", query_string={"q": "振动抑制"}).get_data(as_text=True)
    assert "含「振动抑制」的成果 1 项" in found
    assert "伺服系统振动抑制控制器" in found and "机器人视觉定位方法" not in found
    by_keyword = client.get("/results/mine", query_string={"q": "正极材料"})
    assert "锂电池正极材料包覆工艺" in by_keyword.get_data(as_text=True)
    nothing = client.get("/results/mine", query_string={"q": "100%_"}).get_data(as_text=True)
    assert "含「100%_」的成果 0 项" in nothing and "没有符合条件的成果" in nothing
    assert client.get("/results/mine", query_string={"q": "振动\x00"}).status_code == 400


# --- uploads --------------------------------------------------------------------------------

def _upload(site: Site, data: bytes, name: str = "成果.csv"):  # noqa: ANN202 - a response
    return site.client("office_u1").post(
        "/results/upload", data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data")


def test_upload_templates_have_the_importers_columns_and_import(site: Site) -> None:
    client = site.client("office_u1")
    page = client.get("/results/upload").get_data(as_text=True)
    assert "/results/upload/template.csv" in page and "/results/upload/template.xlsx" in page
    labels = [spec.label for spec in upload_columns()]
    assert "标题" in labels and "单位名称" not in labels
    csv_file = client.get("/results/upload/template.csv")
    assert csv_file.status_code == 200 and csv_file.mimetype == "text/csv"
    assert "attachment" in csv_file.headers["Content-Disposition"]
    body = csv_file.data
    assert body.startswith(codecs.BOM_UTF8)
    assert body[len(codecs.BOM_UTF8):].decode("utf-8").strip() == ",".join(labels)
    xlsx = client.get("/results/upload/template.xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.data), read_only=True).active
    assert [cell for cell in next(sheet.iter_rows(values_only=True))] == labels
    # Filled in, the CSV template imports.
    row = {label: "" for label in labels} | {"标题": "模板导入的成果", "摘要": "一种模板导入方法"}
    filled = body + (",".join(row[label] for label in labels) + "\n").encode("utf-8")
    assert _upload(site, filled).status_code == 200
    assert site.app.test_client().get("/results/upload/template.csv").status_code == 302
    assert site.client("firm_a").get("/results/upload/template.csv").status_code == 403
    assert client.get("/results/upload/template.xls").status_code == 404


def test_a_gbk_or_gb18030_csv_uploads_and_links_to_what_it_imported(site: Site) -> None:
    gbk = "编号,成果名称,成果简介\nGB-1,国标编码成果甲,一种在中文系统上保存的成果\n".encode("gbk")
    done = _upload(site, gbk)
    assert done.status_code == 200, done.get_data(as_text=True)
    page = done.get_data(as_text=True)
    with site.app.app_context(), sessions()() as db:
        result = db.scalar(select(Result).where(Result.external_id == "GB-1"))
        assert result.title == "国标编码成果甲"
    assert f'href="/results/{result.id}">国标编码成果甲</a>' in page
    # 䶮 is in GB18030, not in GBK.
    rare = "成果名称,成果简介\n刘䶮的成果,一种𠀀字摘要\n".encode("gb18030")
    assert _upload(site, rare).status_code == 200
    with site.app.app_context(), sessions()() as db:
        rare_row = db.scalar(select(Result).where(Result.title == "刘䶮的成果"))
        assert rare_row.abstract == "一种𠀀字摘要"
    junk = _upload(site, bytes(range(0x80, 0x100)) * 20)
    assert junk.status_code == 400 and "UTF-8" in junk.get_data(as_text=True)


def test_many_imported_results_are_linked_up_to_a_count(site: Site) -> None:
    lines = "".join(f"批量成果第{n}号,一种批量方法之{n}\n" for n in range(25))
    page = _upload(site, ("标题,摘要\n" + lines).encode()).get_data(as_text=True)
    imported = re.search(r'<ul id="imported">(.*?)</ul>', page, re.S)
    assert imported and imported.group(1).count("<li>") == 20
    assert "另有 5 项" in page


def test_rejected_rows_are_named_by_their_number_or_title(site: Site) -> None:
    bad = ("编号,标题,摘要,意向价格\n"
           "A-7,有编号的成果,摘要一,很贵\n"
           ",只有标题的成果,摘要二,也很贵\n").encode()
    response = _upload(site, bad)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert '<td class="row-name">编号 A-7</td>' in page
    assert '<td class="row-name">《只有标题的成果》</td>' in page
    answer = site.app.test_client().post(
        f"{API}/results/import", data={"file": (io.BytesIO(bad), "成果.csv")},
        headers=bearer(site, "office_u1"), content_type="multipart/form-data")
    assert answer.status_code == 400
    shown = answer.get_json()["rejected"]["shown"]
    assert [(row["line"], row["row"]) for row in shown] == [
        (2, "编号 A-7"), (3, "《只有标题的成果》")]


# --- filters and tags -----------------------------------------------------------------------

def test_the_institution_filter_offers_the_known_institutions(site: Site) -> None:
    need_id = site.ids["need"]["工业机器人视觉抓取精度提升"]
    page = site.client("firm_a").get(f"/needs/{need_id}").get_data(as_text=True)
    datalist = re.search(r'<datalist id="institution-names">(.*?)</datalist>', page, re.S)
    assert datalist and 'list="institution-names"' in page
    assert '<option value="示例理工大学">' in datalist.group(1)
    assert "甲智能装备有限公司" not in datalist.group(1)  # a firm lists no results
    # The filter's value is still an exact name.
    filtered = site.client("firm_a").get(f"/needs/{need_id}",
                                         query_string={"institution": "示例理工大学"})
    assert filtered.status_code == 200


def test_lists_on_the_result_page_are_separate_tags(site: Site) -> None:
    result_id = site.ids["result"]["基于深度学习的机器人视觉定位方法"]
    with site.app.app_context(), sessions()() as db:
        db.get(Result, result_id).inventors = "张三;李四"
        db.commit()
    page = site.client("firm_a").get(f"/results/{result_id}").get_data(as_text=True)
    for part in ("深度学习", "视觉定位", "机器人", "张三", "李四", "技术转让", "许可"):
        assert f'<span class="tag">{part}</span>' in page, part
    assert "技术转让;许可" not in page and "张三;李四" not in page


def test_transfer_modes_on_a_need_s_matches_are_separate_tags(site: Site) -> None:
    need_id = site.ids["need"]["工业机器人视觉抓取精度提升"]
    page = site.client("firm_a").get(f"/needs/{need_id}").get_data(as_text=True)
    match = page[page.index('class="match"'):]
    assert '<span class="tag">技术转让</span><span class="tag">许可</span>' in match
    assert "· 技术转让;许可" not in match


def test_marks_feed_the_interest_count_only_when_relevant(site: Site) -> None:
    result_id = site.ids["result"]["抗体制剂稳定配方"]
    need_id = site.ids["need"]["抗体药物稳定性改进"]
    assert site.client("firm_b").post(f"/needs/{need_id}/feedback", data={
        "result_id": result_id, "relevant": "0"}).status_code == 302
    with site.app.app_context(), sessions()() as db:
        assert db.scalar(select(MatchFeedback.relevant).where(
            MatchFeedback.result_id == result_id)) is False
    page = site.client("office_u2").get("/results/mine").get_data(as_text=True)
    assert f'<td data-interest="{result_id}">0</td>' in page


def test_the_firm_filter_on_a_result_s_needs_suggests_the_firms_and_filters(site: Site) -> None:
    result_id = site.ids["result"]["基于深度学习的机器人视觉定位方法"]
    client = site.client("office_u1")
    page = client.get(f"/results/{result_id}").get_data(as_text=True)
    datalist = re.search(r'<datalist id="firm-names">(.*?)</datalist>', page, re.S)
    assert datalist and 'list="firm-names"' in page
    assert '<option value="甲智能装备有限公司">' in datalist.group(1)
    assert "示例理工大学" not in datalist.group(1)  # a university posts no needs
    filtered = client.get(f"/results/{result_id}",
                          query_string={"institution": "乙生物医药有限公司"})
    text = filtered.get_data(as_text=True)
    assert filtered.status_code == 200
    assert "抗体药物稳定性改进" in text and "工业机器人视觉抓取精度提升" not in text
