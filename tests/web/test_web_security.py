"""The site's boundaries, proven through HTTP: CSRF, cookies, escaping, who may see and edit."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from corpora.models import Need, Result
from tests.support.web import PASSWORD, Site, csrf_token
from web.database import sessions


def test_forms_need_a_csrfcsrf_token(csrf_site: Site) -> None:
    client = csrf_site.app.test_client()
    page = client.get("/login").get_data(as_text=True)
    refused = client.post("/login", data={"username": "firm_a", "password": PASSWORD})
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)
    accepted = client.post("/login", data={"username": "firm_a", "password": PASSWORD,
                                           "csrf_token": csrf_token(page)})
    assert accepted.status_code == 302
    form = client.get("/needs/new").get_data(as_text=True)
    data = {"title": "需求", "description": "一段描述"}
    assert client.post("/needs/new", data=data).status_code == 400
    with csrf_site.app.app_context(), sessions()() as db:
        assert db.scalar(select(func.count()).select_from(Need)
                         .where(Need.description == "一段描述")) == 0
    posted = client.post("/needs/new", data=data | {"csrf_token": csrf_token(form)})
    assert posted.status_code == 302


def test_session_cookie_is_httponly_and_samesite(csrf_site: Site) -> None:
    client = csrf_site.app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "firm_a", "password": PASSWORD,
                                           "csrf_token": token})
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_security_headers_on_every_page(sqlite_site: Site) -> None:
    client = sqlite_site.client("firm_a")
    for path in ("/", "/login", "/search?q=机器人", "/needs/mine", "/no-such-page"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"


def test_no_inline_script_or_style_in_templates() -> None:
    root = Path(__file__).resolve().parents[2] / "web" / "templates"
    for template in root.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "<script>" not in text and " style=" not in text and "<style" not in text, template


def test_script_in_a_title_is_shown_as_text(site: Site) -> None:
    client = site.client("firm_a")
    evil = "<script>alert('x')</script>恶意标题"
    response = client.post("/needs/new", data={"title": evil, "description": "机器人视觉定位"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;恶意标题" in page
    office_search = site.client("office_u1").get(
        "/search", query_string={"q": "机器人视觉定位 恶意标题", "side": "need"})
    assert "<script>alert" not in office_search.get_data(as_text=True)


def test_login_never_redirects_off_site(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post(f"/login?next={target}",
                               data={"username": "firm_a", "password": PASSWORD})
        assert response.headers["Location"] == "/"
        client.post("/logout")


def test_a_firm_cannot_see_another_firms_contact_or_edit_its_needs(site: Site) -> None:
    need_id = site.ids["need"]["抗体药物稳定性改进"]  # firm_b's
    own = site.client("firm_b").get(f"/needs/{need_id}").get_data(as_text=True)
    assert "13900000003" in own
    other = site.client("firm_a")
    assert "13900000003" not in other.get(f"/needs/{need_id}").get_data(as_text=True)
    assert "13900000003" in site.client("office_u2").get(f"/needs/{need_id}").get_data(
        as_text=True)
    assert other.get(f"/needs/{need_id}/edit").status_code == 403
    form = {"title": "改掉", "description": "改掉"}
    assert other.post(f"/needs/{need_id}/edit", data=form).status_code == 403
    assert other.post(f"/needs/{need_id}/status",
                      data={"status": "closed", "confirm": "1"}).status_code == 403
    result_id = site.ids["result"]["抗体制剂稳定配方"]
    assert other.post(f"/needs/{need_id}/feedback",
                      data={"result_id": result_id, "relevant": "true"}).status_code == 403
    for office in ("office_u1", "officer"):
        assert site.client(office).post(f"/needs/{need_id}/edit", data=form).status_code == 403
    with site.app.app_context(), sessions()() as db:
        need = db.get(Need, need_id)
        assert need.title == "抗体药物稳定性改进" and need.status == "open"


def test_an_office_cannot_edit_another_institutions_results(site: Site) -> None:
    result_id = site.ids["result"]["抗体制剂稳定配方"]  # 示例医科大学 (office_u2)
    other = site.client("office_u1")
    form = {"title": "改掉", "abstract": "改掉"}
    assert other.get(f"/results/{result_id}/edit").status_code == 403
    assert other.post(f"/results/{result_id}/edit", data=form).status_code == 403
    assert other.post(f"/results/{result_id}/status",
                      data={"status": "withdrawn"}).status_code == 403
    for user in ("firm_a", "officer"):
        assert site.client(user).post(f"/results/{result_id}/edit",
                                      data=form).status_code == 403
    assert site.client("firm_a").post("/results/new", data=form).status_code == 403
    assert site.client("office_u1").post("/needs/new",
                                         data={"title": "x", "description": "y"}).status_code \
        == 403
    own = site.client("office_u2")
    assert own.post(f"/results/{result_id}/edit", data=form | {
        "title": "抗体制剂稳定配方（修订）", "abstract": "抗体制剂稳定配方"}).status_code == 302
    with site.app.app_context(), sessions()() as db:
        assert db.get(Result, result_id).title == "抗体制剂稳定配方（修订）"


def test_role_pages_are_closed_to_other_roles(sqlite_site: Site) -> None:
    firm = sqlite_site.client("firm_a")
    for path in ("/results/mine", "/results/upload", "/results/coverage", "/admin/users"):
        assert firm.get(path).status_code == 403, path
    office = sqlite_site.client("office_u1")
    for path in ("/needs/mine", "/results/coverage", "/admin/users"):
        assert office.get(path).status_code == 403, path
    officer = sqlite_site.client("officer")
    assert officer.get("/admin/users").status_code == 403
    assert officer.get("/results/coverage").status_code == 200


def test_unknown_records_are_404(sqlite_site: Site) -> None:
    client = sqlite_site.client("admin")
    for path in ("/needs/99999", "/results/99999", "/needs/99999/edit"):
        response = client.get(path)
        assert response.status_code == 404
        assert "不存在" in response.get_data(as_text=True)


def test_hostile_ids_and_nul_characters_get_4xx_not_500(site: Site) -> None:
    client = site.client("firm_a")
    need_id = site.ids["need"]["工业机器人视觉抓取精度提升"]
    for path in ("/needs/99999999999999999999", "/results/99999999999999999999/edit",
                 "/needs/0"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/needs/{need_id}/feedback",
                       data={"result_id": "²", "relevant": "true"}).status_code == 400
    assert client.post(f"/needs/{need_id}/feedback",
                       data={"result_id": "99999999999999999999",
                             "relevant": "true"}).status_code == 400
    nul = client.post(f"/needs/{need_id}/feedback", data={
        "result_id": site.ids["result"]["抗体制剂稳定配方"], "relevant": "true",
        "reason": "好\x00"})
    assert nul.status_code == 400 and "NUL" in nul.get_data(as_text=True)
    anonymous = site.app.test_client()
    assert anonymous.post("/login", data={"username": "firm\x00",
                                          "password": "x"}).status_code == 400
    assert anonymous.post("/login", data={"username": "no such user!",
                                          "password": "x"}).status_code == 401
    officer = site.client("officer")
    assert officer.get("/results/coverage?institution=a%00b").status_code == 400
    assert officer.get("/search?q=%00").status_code == 400
