"""No cache may keep a page of the site: tokens, contacts and private marks are in them.

Every response that is not a static file carries `Cache-Control: no-store` (web.security);
static files keep their own caching. Checked over HTTP on the pages that matter most.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.web import PASSWORD, Site
from web.security import SECURITY_HEADERS

NEED = "抗体药物稳定性改进"  # firm_b's, contact 13900000003
CONTACT = "13900000003"


def assert_no_store(response: TestResponse, what: str) -> None:
    assert "no-store" in response.headers.get("Cache-Control", ""), what


def test_the_new_api_token_page_is_not_stored(sqlite_site: Site) -> None:
    page = sqlite_site.client("firm_a").post("/account")
    assert page.status_code == 200 and 'id="api-token"' in page.get_data(as_text=True)
    assert_no_store(page, "token page")


def test_pages_that_show_a_contact_are_not_stored(sqlite_site: Site) -> None:
    need_id = sqlite_site.ids["need"][NEED]
    for username in ("firm_b", "office_u2", "officer"):
        client = sqlite_site.client(username)
        page = client.get(f"/needs/{need_id}")
        assert CONTACT in page.get_data(as_text=True), username
        assert_no_store(page, f"need detail for {username}")
    edit = sqlite_site.client("firm_b").get(f"/needs/{need_id}/edit")
    assert CONTACT in edit.get_data(as_text=True)
    assert_no_store(edit, "need edit form")


def _shortlist(client: FlaskClient, result_id: int) -> int:
    created = client.post("/shortlists/", data={"title": "G60 成果拍卖会"})
    assert created.status_code == 302, created.get_data(as_text=True)
    shortlist_id = int(created.headers["Location"].rstrip("/").split("/")[-1])
    added = client.post(f"/shortlists/{shortlist_id}/lots", data={"result_id": result_id})
    assert added.status_code == 302
    return shortlist_id


def test_every_page_export_and_error_is_not_stored(sqlite_site: Site) -> None:
    ids = sqlite_site.ids
    officer = sqlite_site.client("officer")
    shortlist_id = _shortlist(officer, ids["result"]["抗体制剂稳定配方"])
    pages = {
        "officer": [
            "/", "/search?q=抗体制剂稳定性", "/search?q=抗体制剂稳定性&side=need",
            f"/results/{ids['result']['抗体制剂稳定配方']}", "/results/coverage",
            "/shortlists/", f"/shortlists/{shortlist_id}",
            f"/shortlists/{shortlist_id}/export.csv", f"/shortlists/{shortlist_id}/export.xlsx",
            f"/shortlists/{shortlist_id}/print", f"/shortlists/{shortlist_id}/propose",
            "/account", "/no-such-page", "/needs/99999", "/admin/users",
        ],
        "office_u2": ["/results/mine", "/results/upload", f"/needs/{ids['need'][NEED]}",
                      "/search?q=抗体&side=need"],
        "firm_b": ["/needs/mine", "/needs/new", f"/needs/{ids['need'][NEED]}"],
        "admin": ["/admin/users"],
    }
    for username, paths in pages.items():
        client = sqlite_site.client(username)
        for path in paths:
            response = client.get(path)
            assert response.status_code in (200, 403, 404), (username, path)
            assert_no_store(response, f"{path} as {username}")
    anonymous = sqlite_site.app.test_client()
    for path in ("/login", "/needs/mine", "/api/v1/needs"):  # page, redirect, API 401
        assert_no_store(anonymous.get(path), path)
    signed_in = anonymous.post("/login", data={"username": "firm_a", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert_no_store(signed_in, "the sign-in redirect, which sets the session cookie")


def test_static_files_keep_their_caching_and_the_other_headers(sqlite_site: Site) -> None:
    response = sqlite_site.app.test_client().get("/static/style.css")
    try:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
        for name, value in SECURITY_HEADERS.items():
            if name != "Cache-Control":
                assert response.headers[name] == value, name
    finally:
        response.close()  # a file response holds the file open until closed


def test_security_headers_are_exported_with_their_values(sqlite_site: Site) -> None:
    """Other modules (the server's own error pages) send the same headers as the app."""
    assert SECURITY_HEADERS["Cache-Control"] == "no-store"
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY"
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert SECURITY_HEADERS["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["Content-Security-Policy"]
    headers = sqlite_site.client("firm_a").get("/needs/mine").headers
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name
