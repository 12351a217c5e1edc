"""对接 and notifications through the JSON API: the pages' operations with the pages'
checks; a refused request names the field and changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from corpora.connections import ConnectionEvent, ConnectionRequest, Notification
from corpora.models import AuditEntry
from tests.support.api import API, bearer, error_of, need_id, result_id
from tests.support.web import Site
from web.database import sessions


def snapshot(site: Site) -> list[tuple[Any, ...]]:
    with site.app.app_context(), sessions()() as db:
        return [tuple(getattr(row, c.key) for c in model.__table__.columns)
                for model in (ConnectionRequest, ConnectionEvent, Notification, AuditEntry)
                for row in db.scalars(select(model).order_by(model.id))]


def post(site: Site, user: str, path: str, body: Any = None) -> Any:
    return site.app.test_client().post(f"{API}{path}", json=body, headers=bearer(site, user))


def get(site: Site, user: str, path: str) -> Any:
    return site.app.test_client().get(f"{API}{path}", headers=bearer(site, user))


def new_request(site: Site) -> dict[str, Any]:
    response = post(site, "firm_a", "/connections",
                    {"need_id": need_id(site), "result_id": result_id(site),
                     "message": "希望洽谈许可", "wants": ["许可条款"]})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/connections/{body['id']}")
    return body


def test_request_accept_and_sign_through_the_api(site: Site) -> None:
    made = new_request(site)
    assert made["status"] == "pending" and made["party"] == "requester"
    assert "contacts" not in made
    rid = made["id"]
    notes = get(site, "office_u1", "/notifications").get_json()
    assert notes["unread"] == 1 and notes["items"][0]["request_id"] == rid
    # Not the other firm, not the requester: only the office may answer.
    error_of(get(site, "firm_b", f"/connections/{rid}"), 403)
    error_of(post(site, "firm_a", f"/connections/{rid}/accept", {}), 403)
    accepted = post(site, "office_u1", f"/connections/{rid}/accept", {"contact": "021-1 王"})
    assert accepted.status_code == 200
    assert accepted.get_json()["contacts"] == {"firm": "13800000001 张经理",
                                               "office": "021-1 王"}
    bad = post(site, "firm_a", f"/connections/{rid}/stage",
               {"stage": "signed", "deal_form": "许可"})
    assert "deal_amount" in error_of(bad, 400)["fields"]
    signed = post(site, "firm_a", f"/connections/{rid}/stage",
                  {"stage": "signed", "deal_form": "许可", "deal_amount": 66})
    body = signed.get_json()
    assert (body["stage"], body["deal_amount"], body["stage_label"]) == ("signed", 66, "已签约")
    assert [e["kind"] for e in body["events"]] == ["created", "accepted", "stage"]
    listed = get(site, "officer", "/connections?stage=signed").get_json()
    assert [item["id"] for item in listed["items"]] == [rid]
    assert get(site, "firm_b", "/connections").get_json()["total"] == 0
    assert get(site, "firm_a", "/connections?direction=received").get_json()["total"] == 0


def test_decline_withdraw_and_duplicates(site: Site) -> None:
    rid = new_request(site)["id"]
    error_of(post(site, "firm_a", "/connections",
                  {"need_id": need_id(site), "result_id": result_id(site), "message": "再次"}),
             409)
    missing = post(site, "office_u1", f"/connections/{rid}/decline", {"note": "不合适"})
    assert "reason" in error_of(missing, 400)["fields"]
    declined = post(site, "office_u1", f"/connections/{rid}/decline",
                    {"reason": "时机尚早", "note": "明年再议"})
    assert declined.get_json()["decline_reason"] == "时机尚早"
    seen = get(site, "firm_a", f"/connections/{rid}").get_json()
    assert (seen["status"], seen["decline_note"]) == ("declined", "明年再议")
    assert "contacts" not in seen
    error_of(post(site, "firm_a", f"/connections/{rid}/withdraw"), 400)
    again = new_request(site)["id"]
    error_of(post(site, "office_u1", f"/connections/{again}/withdraw"), 403)
    assert post(site, "firm_a", f"/connections/{again}/withdraw").get_json()["status"] == \
        "withdrawn"


def test_bad_input_names_the_field_and_changes_nothing(sqlite_site: Site) -> None:
    site = sqlite_site
    rid = new_request(site)["id"]
    bearer(site, "office_u1")  # issuing a token is audited: before the snapshot
    before = snapshot(site)
    for path, body, field in [
        ("/connections", {"need_id": "x", "result_id": 1, "message": "a"}, "need_id"),
        ("/connections", {"need_id": 1, "result_id": 1, "message": "a" * 1001}, "message"),
        ("/connections", {"need_id": 1, "result_id": 1, "message": "a", "wants": ["跳舞"]},
         "wants"),
        ("/connections", {"need_id": 1, "result_id": 1, "message": "a", "x": 1}, "x"),
        (f"/connections/{rid}/decline", {"reason": "价格不合适", "note": 5}, "note"),
        (f"/connections/{rid}/accept", {"contact": "\x00"}, "contact"),
        (f"/connections/{rid}/stage", {"stage": "signed", "deal_amount": True},
         "deal_amount"),
    ]:
        user = "firm_a" if path == "/connections" else "office_u1"
        assert field in error_of(post(site, user, path, body), 400)["fields"], (path, body)
    error_of(post(site, "firm_a", "/connections/99999/accept", {}), 404)
    error_of(get(site, "firm_a", "/connections/abc"), 400)
    error_of(post(site, "firm_a", "/connections",
                  {"need_id": 99999, "result_id": result_id(site), "message": "a"}), 404)
    error_of(post(site, "firm_a", "/notifications/99999/read"), 404)
    assert snapshot(site) == before
    marked = post(site, "office_u1", "/notifications/read").get_json()
    assert marked == {"marked": 1, "unread": 0}
