"""对接 through HTTP: a firm asks on a match, the office declines with a reason (the firm
sees it) or accepts (contacts appear only then) and the deal is signed; the inbox, its
counts and the unread badge; permissions, CSRF and bad input."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from corpora.connections import ConnectionEvent, ConnectionRequest, Notification
from corpora.models import AuditEntry
from tests.support.web import Site, csrf_token
from web.database import sessions

NEED = "工业机器人视觉抓取精度提升"
RESULT = "基于深度学习的机器人视觉定位方法"
OFFICE_CONTACT = "021-5555 技转办周老师"


def ids(site: Site, need: str = NEED, result: str = RESULT) -> tuple[int, int]:
    return site.ids["need"][need], site.ids["result"][result]


def ask(site: Site, client: FlaskClient, need: str = NEED, result: str = RESULT,
        **form: Any) -> Any:
    need_id, result_id = ids(site, need, result)
    return client.post("/connections/new", data={
        "need_id": need_id, "result_id": result_id, "message": "希望了解授权条件",
        "wants": ["会面洽谈", "许可条款"], **form})


def request_id(response: Any) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def rows(site: Site, model: Any) -> int:
    with site.app.app_context(), sessions()() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


def test_the_match_offers_a_request_to_the_owners_only(sqlite_site: Site) -> None:
    site = sqlite_site
    need_id, result_id = ids(site)
    page = site.client("firm_a").get(f"/needs/{need_id}").get_data(as_text=True)
    assert f"/connections/new?need_id={need_id}&amp;result_id={result_id}" in page
    other = site.client("firm_b").get(f"/needs/{need_id}").get_data(as_text=True)
    assert "发起对接" not in other
    office = site.client("office_u1").get(f"/results/{result_id}").get_data(as_text=True)
    assert f"need_id={need_id}&amp;result_id={result_id}" in office
    assert "发起对接" not in site.client("office_u2").get(
        f"/results/{result_id}").get_data(as_text=True)
    form = site.client("firm_a").get(f"/connections/new?need_id={need_id}&result_id={result_id}")
    assert form.status_code == 200 and "许可条款" in form.get_data(as_text=True)


def test_decline_with_a_reason_the_firm_sees(site: Site) -> None:
    firm, office = site.client("firm_a"), site.client("office_u1")
    rid = request_id(ask(site, firm))
    # The office's badge and inbox say so.
    inbox = office.get("/inbox").get_data(as_text=True)
    assert 'class="tag unread-count"' in inbox and "发起对接" in inbox
    assert re.search(r'data-status="pending">1<', inbox)
    page = office.get(f"/connections/{rid}").get_data(as_text=True)
    assert "婉拒原因" in page and "13800000001" not in page  # no contact before acceptance
    declined = office.post(f"/connections/{rid}/decline",
                           data={"reason": "已有合作方", "note": "已与其他团队合作"})
    assert declined.status_code == 302
    seen = firm.get(f"/connections/{rid}").get_data(as_text=True)
    assert "已婉拒" in seen and "已有合作方：已与其他团队合作" in seen
    assert OFFICE_CONTACT not in seen
    assert "对接请求被婉拒（已有合作方）" in firm.get("/inbox").get_data(as_text=True)
    with site.app.app_context(), sessions()() as db:
        actions = db.scalars(select(AuditEntry.action).where(
            AuditEntry.entity == "connection")).all()
        assert actions == ["connection_start", "connection_decline"]


def test_accept_shows_contacts_and_stages_to_signed(site: Site) -> None:
    firm, office = site.client("firm_a"), site.client("office_u1")
    rid = request_id(ask(site, firm))
    before = firm.get(f"/connections/{rid}").get_data(as_text=True)
    assert "13800000001" not in before and "对方接受请求后" in before
    assert office.post(f"/connections/{rid}/accept",
                       data={"contact": OFFICE_CONTACT}).status_code == 302
    for client in (firm, office):
        page = client.get(f"/connections/{rid}").get_data(as_text=True)
        assert OFFICE_CONTACT in page and "13800000001 张经理" in page
        assert "洽谈中" in page
    # Another firm and another office: 403, and nothing of it leaks.
    for other in ("firm_b", "office_u2"):
        refused = site.client(other).get(f"/connections/{rid}")
        assert refused.status_code == 403
        assert OFFICE_CONTACT not in refused.get_data(as_text=True)
        assert site.client(other).post(f"/connections/{rid}/stage",
                                       data={"stage": "failed"}).status_code == 403
    # The officer sees it, contacts included, in the list of all requests.
    officer = site.client("officer")
    assert OFFICE_CONTACT in officer.get(f"/connections/{rid}").get_data(as_text=True)
    assert f"/connections/{rid}" in officer.get("/inbox").get_data(as_text=True)
    signed = firm.post(f"/connections/{rid}/stage",
                       data={"stage": "signed", "deal_form": "许可", "deal_amount": "120",
                             "signed_on": "2026-12-01"})
    assert signed.status_code == 302
    page = office.get(f"/connections/{rid}").get_data(as_text=True)
    assert "已签约" in page and "许可 · 120 万元" in page and "洽谈中 → 已签约" in page
    listed = firm.get("/inbox?stage=signed&direction=sent").get_data(as_text=True)
    assert f"/connections/{rid}" in listed
    assert f"/connections/{rid}\"" not in firm.get("/inbox?direction=received").get_data(
        as_text=True)


def test_bad_fields_are_named_and_nothing_is_half_saved(sqlite_site: Site) -> None:
    site = sqlite_site
    firm, office = site.client("firm_a"), site.client("office_u1")
    bad = ask(site, firm, message="", wants=["跳舞"])
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert 'data-field="message"' in page and 'data-field="wants"' in page
    assert rows(site, ConnectionRequest) == 0 and rows(site, Notification) == 0
    rid = request_id(ask(site, firm))
    counts = (rows(site, ConnectionEvent), rows(site, Notification))
    no_reason = office.post(f"/connections/{rid}/decline", data={"reason": "", "note": "x"})
    assert no_reason.status_code == 400
    assert 'data-field="reason"' in no_reason.get_data(as_text=True)
    long_note = office.post(f"/connections/{rid}/decline",
                            data={"reason": "其他", "note": "长" * 501})
    assert 'data-field="note"' in long_note.get_data(as_text=True)
    early = firm.post(f"/connections/{rid}/stage", data={"stage": "signed"})
    assert early.status_code == 400 and 'data-field="stage"' in early.get_data(as_text=True)
    office.post(f"/connections/{rid}/accept", data={})
    no_amount = firm.post(f"/connections/{rid}/stage",
                          data={"stage": "signed", "deal_form": "转让", "deal_amount": "-3"})
    assert no_amount.status_code == 400
    assert 'data-field="deal_amount"' in no_amount.get_data(as_text=True)
    with site.app.app_context(), sessions()() as db:
        found = db.get(ConnectionRequest, rid)
        assert (found.status, found.stage, found.deal_amount) == ("accepted", "talking", None)
    assert rows(site, ConnectionEvent) == counts[0] + 1  # the acceptance only
    # Junk ids: a 400 naming the field, an unknown one a 404.
    assert firm.get("/connections/new?need_id=abc&result_id=1").status_code == 400
    assert firm.get("/connections/new?need_id=99999&result_id=1").status_code == 404
    assert firm.get("/connections/99999").status_code == 404
    assert firm.get("/inbox?status=nope").status_code == 400
    assert firm.post("/inbox/read", data={"notification_id": "99999"}).status_code == 404


def test_a_double_click_makes_one_request(sqlite_site: Site) -> None:
    site = sqlite_site
    firm = site.client("firm_a")
    first = request_id(ask(site, firm))
    again = ask(site, firm)
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/{first}")
    assert rows(site, ConnectionRequest) == 1
    # Only the need's firm or the result's office may ask.
    assert ask(site, site.client("firm_b")).status_code == 403
    assert ask(site, site.client("officer")).status_code == 403


def test_withdraw_and_read_notifications(sqlite_site: Site) -> None:
    site = sqlite_site
    firm, office = site.client("firm_a"), site.client("office_u1")
    rid = request_id(ask(site, firm))
    assert office.post(f"/connections/{rid}/withdraw").status_code == 403
    assert firm.post(f"/connections/{rid}/withdraw").status_code == 302
    assert "已撤回" in firm.get(f"/connections/{rid}").get_data(as_text=True)
    with site.app.app_context(), sessions()() as db:
        note_ids = db.scalars(select(Notification.id).where(
            Notification.user_id == site.ids["user"]["office_u1"])).all()
    assert len(note_ids) == 2  # the request, then its withdrawal
    assert firm.post("/inbox/read", data={"notification_id": note_ids[0]}).status_code == 404
    opened = office.post("/inbox/read", data={"notification_id": note_ids[0]})
    assert opened.headers["Location"].endswith(f"/connections/{rid}")
    assert office.post("/inbox/read").status_code == 302
    assert 'class="tag unread-count"' not in office.get("/inbox").get_data(as_text=True)


def test_forms_refuse_a_missing_csrf_token(csrf_site: Site) -> None:
    site = csrf_site
    client = site.app.test_client()
    login = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "firm_a", "password": "Passw0rd-test",
                                "csrf_token": csrf_token(login)})
    need_id, result_id = ids(site)
    form = client.get(f"/connections/new?need_id={need_id}&result_id={result_id}")
    data = {"need_id": need_id, "result_id": result_id, "message": "你好"}
    assert client.post("/connections/new", data=data).status_code == 400
    assert rows(site, ConnectionRequest) == 0
    token = csrf_token(form.get_data(as_text=True))
    assert client.post("/connections/new", data=data | {"csrf_token": token}).status_code == 302
    assert client.post("/inbox/read").status_code == 400
