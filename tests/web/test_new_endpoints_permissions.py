"""Who may use each endpoint and form of the 对接, notification, outcome, dashboard and admin
work (issue 14), enumerated over every role: the allowed get a 2xx or a redirect, the signed-in
others a 403 (an API a JSON 403), no one signed in a redirect to the sign-in page (the API a
401), an unknown id a 404, and nobody a 500. A refused write changes no row of any table.

One seeded site serves the module; each write is tried by every refused role first (the
database compared before and after each), then once by an allowed one, on a 对接 request of its
own, so that the order of the writes cannot change what the next one finds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from corpora.connections import Notification
from corpora.dump import tables
from corpora.models import Need, Result, ShortlistLot, User
from service import connections
from service.accounts import NewUser, create_user
from tests.support.api import add_shortlist, bearer, error_of
from tests.support.web import PASSWORD, Site, make_site
from web.database import sessions

API = "/api/v1"
ROLES: tuple[str | None, ...] = ("firm_a", "firm_b", "office_u1", "office_u2", "officer",
                                 "admin", None)
SIGNED_IN = tuple(role for role in ROLES if role)
READERS = ("officer", "admin")
DASHBOARD = ("office_u1", "office_u2", "officer", "admin")
UNKNOWN = "999999"
# firm_a's needs × office_u1's results: one fresh 对接 request for each write that moves one.
PAIRS = [("工业机器人视觉抓取精度提升", "基于深度学习的机器人视觉定位方法"),
         ("工业机器人视觉抓取精度提升", "伺服系统振动抑制控制器"),
         ("工业机器人视觉抓取精度提升", "锂电池正极材料包覆工艺"),
         ("伺服电机振动抑制", "基于深度学习的机器人视觉定位方法"),
         ("伺服电机振动抑制", "伺服系统振动抑制控制器"),
         ("伺服电机振动抑制", "锂电池正极材料包覆工艺")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("new-permissions")
    site = make_site(f"sqlite:///{home / 'site.sqlite'}", home / "home", WTF_CSRF_ENABLED=False)
    shortlist = add_shortlist(site)
    with site.app.app_context(), sessions()() as db:
        lot, lot_result = db.execute(
            select(ShortlistLot.id, ShortlistLot.result_id)
            .where(ShortlistLot.shortlist_id == shortlist).order_by(ShortlistLot.position)
        ).first()  # type: ignore[misc]
        spare = create_user(db, NewUser("spare_firm", PASSWORD, "firm", "备用",
                                        "乙生物医药有限公司"))
        db.commit()
        spare_id = spare.id
    # The read-only request is between firm_b and office_u2: firm_a and office_u1 are others.
    read_id = start(site, "firm_b", "抗体药物稳定性改进", "抗体制剂稳定配方")
    yield {"site": site, "shortlist": shortlist, "lot": lot, "lot_result": lot_result,
           "spare": spare_id, "connection": read_id,
           "tokens": {name: bearer(site, name) for name in SIGNED_IN},
           "clients": {name: site.client(name) for name in SIGNED_IN}}
    site.app.extensions["matcher.engine"].dispose()


def start(site: Site, username: str, need: str, result: str) -> int:
    with site.app.app_context(), sessions()() as db:
        made = connections.start(db, db.get(User, site.ids["user"][username]),
                                 db.get(Need, site.ids["need"][need]),
                                 db.get(Result, site.ids["result"][result]),
                                 {"message": "希望洽谈", "wants": ["报价"]})
        db.commit()
        return made.id


def fresh_request(world: dict[str, Any], *, accepted: bool = False) -> int:
    """A new pending request from firm_a to office_u1 (accepted if asked)."""
    site: Site = world["site"]
    with site.app.app_context(), sessions()() as db:  # a declined or withdrawn one frees its pair
        need, result = next(
            (need, result) for need, result in PAIRS if connections.open_request(
                db, site.ids["need"][need], site.ids["result"][result], "firm") is None)
    made = start(site, "firm_a", need, result)
    if accepted:
        with site.app.app_context(), sessions()() as db:
            found = db.get(connections.ConnectionRequest, made)
            connections.accept(db, db.get(User, site.ids["user"]["office_u1"]), found,
                               {"contact": "021-0000"})
            db.commit()
    return made


def notification_of(world: dict[str, Any], username: str) -> int:
    site: Site = world["site"]
    with site.app.app_context(), sessions()() as db:
        found = db.scalar(select(Notification.id).where(
            Notification.user_id == site.ids["user"][username]).order_by(Notification.id))
    assert found is not None, username
    return found


def snapshot(site: Site) -> dict[str, list[Any]]:
    with site.app.extensions["matcher.engine"].connect() as connection:
        return {table.name: [tuple(row) for row in connection.execute(
            select(table).order_by(*table.primary_key.columns))] for table in tables()}


def send(world: dict[str, Any], role: str | None, api: bool, method: str, path: str,
         body: dict[str, Any] | None = None) -> Any:
    if api:
        client = world["site"].app.test_client()
        return client.open(API + path, method=method, json=body,
                           headers=world["tokens"][role] if role else {})
    client_: FlaskClient = world["clients"][role] if role else world["site"].app.test_client()
    return client_.open(path, method=method, data=body)


def expect_refused(response: Any, role: str | None, api: bool) -> None:
    """403 for a signed-in other; 401 (API) or the sign-in page (HTML) for no one."""
    status = response.status_code
    if role is None and api:
        error_of(response, 401)
    elif role is None:
        assert status == 302 and "/login" in response.headers["Location"], status
    elif api:
        error_of(response, 403)
    else:
        assert status == 403 and response.mimetype == "text/html", status


def fill(world: dict[str, Any], path: str) -> str:
    for key in ("shortlist", "lot", "lot_result", "spare", "connection"):
        path = path.replace("{" + key + "}", str(world[key]))
    return path


# --- reads: (HTML or API, path, the roles allowed) ---------------------------------------------

READS: list[tuple[bool, str, tuple[str, ...]]] = [
    (False, "/inbox", SIGNED_IN),
    (False, "/inbox?status=pending&direction=received", SIGNED_IN),
    (False, "/connections/{connection}", ("firm_b", "office_u2", *READERS)),
    (False, "/account/notifications", SIGNED_IN),
    (False, "/dashboard", DASHBOARD),
    (False, "/dashboard?industry=智能制造&date_from=2025-01-01", DASHBOARD),
    (False, "/dashboard/export.xlsx", DASHBOARD),
    (False, "/dashboard/chart/funnel.svg", DASHBOARD),
    (False, "/dashboard/chart/industry.svg", READERS),  # an office's dashboard has no such
    (False, "/admin/users/{spare}/password", ("admin",)),
    (False, "/shortlists/{shortlist}/export.xlsx", READERS),
    (True, "/connections", SIGNED_IN),
    (True, "/connections/{connection}", ("firm_b", "office_u2", *READERS)),
    (True, "/notifications", SIGNED_IN),
    (True, "/dashboard", DASHBOARD),
    (True, "/dashboard?city=嘉兴", DASHBOARD),
]


@pytest.mark.parametrize(("api", "path", "allowed"), READS,
                         ids=[f"{'api' if a else 'page'}:{p}" for a, p, _ in READS])
def test_reads_by_role(world: dict[str, Any], api: bool, path: str,
                       allowed: tuple[str, ...]) -> None:
    before = snapshot(world["site"])
    for role in ROLES:
        response = send(world, role, api, "GET", fill(world, path))
        if role in allowed:
            assert response.status_code == 200, (role, response.status_code)
        elif role in DASHBOARD and path.startswith("/dashboard/chart/"):
            assert response.status_code == 404, role  # allowed in, but not this chart
        else:
            expect_refused(response, role, api)
    assert snapshot(world["site"]) == before, path


UNKNOWN_IDS: list[tuple[bool, str, str]] = [
    (False, f"/connections/{UNKNOWN}", "admin"),
    (False, f"/connections/{UNKNOWN}", "firm_a"),
    (False, f"/admin/users/{UNKNOWN}/password", "admin"),
    (False, f"/shortlists/{UNKNOWN}/export.xlsx", "officer"),
    (False, "/dashboard/chart/nowhere.svg", "officer"),
    (True, f"/connections/{UNKNOWN}", "office_u1"),
]


@pytest.mark.parametrize(("api", "path", "role"), UNKNOWN_IDS)
def test_unknown_ids_are_404(world: dict[str, Any], api: bool, path: str, role: str) -> None:
    response = send(world, role, api, "GET", path)
    if api:
        error_of(response, 404)
    else:
        assert response.status_code == 404 and response.mimetype == "text/html"


# --- writes: refused roles first (nothing changes), then one allowed role ---------------------

# (HTML or API, method, path, body, the roles allowed, the one that does it, what it acts on:
# "accepted"/"pending" for a fresh request of its own, None for the module's ids)
WRITES: list[tuple[bool, str, str, dict[str, Any], tuple[str, ...], str, str | None]] = [
    (True, "PUT", "/shortlists/{shortlist}/lots/{lot_result}/outcome", {"outcome": "unsold"},
     READERS, "officer", None),
    (True, "PUT", "/shortlists/{shortlist}/lots/{lot_result}/outcome",
     {"outcome": "sold", "sold_price": 60, "buyer": "甲智能装备有限公司"}, READERS, "admin", None),
    (False, "POST", "/shortlists/{shortlist}/lots/{lot}/outcome", {"outcome": "clear"},
     READERS, "officer", None),
    (False, "POST", "/shortlists/{shortlist}/lots/{lot}/outcome", {"outcome": "unsold"},
     READERS, "admin", None),
    (True, "POST", "/connections/{connection}/accept", {"contact": "021-0000"},
     ("office_u1",), "office_u1", "pending"),
    (True, "POST", "/connections/{connection}/decline", {"reason": "非本领域"},
     ("office_u1",), "office_u1", "pending"),
    (True, "POST", "/connections/{connection}/withdraw", {}, ("firm_a",), "firm_a", "pending"),
    (True, "POST", "/connections/{connection}/stage", {"stage": "failed"},
     ("firm_a", "office_u1"), "office_u1", "accepted"),
    (False, "POST", "/connections/{connection}/accept", {"contact": "021-0000"},
     ("office_u1",), "office_u1", "pending"),
    (False, "POST", "/connections/{connection}/decline", {"reason": "非本领域"},
     ("office_u1",), "office_u1", "pending"),
    (False, "POST", "/connections/{connection}/stage", {"stage": "failed"},
     ("firm_a", "office_u1"), "firm_a", "accepted"),
    (False, "POST", "/admin/organisations", {"name": "新单位", "kind": "firm", "city": "嘉兴"},
     ("admin",), "admin", None),
    (False, "POST", "/admin/users/{spare}/password",
     {"new_password": "Long-enough-123", "confirm_password": "Long-enough-123"},
     ("admin",), "admin", None),
]


@pytest.mark.parametrize(("api", "method", "path", "body", "allowed", "doer", "on"), WRITES,
                         ids=[f"{'api' if w[0] else 'form'}:{w[2]}:{w[5]}" for w in WRITES])
def test_writes_by_role(world: dict[str, Any], api: bool, method: str, path: str,
                        body: dict[str, Any], allowed: tuple[str, ...], doer: str,
                        on: str | None) -> None:
    site: Site = world["site"]
    target = dict(world)
    if on is not None:
        target["connection"] = fresh_request(world, accepted=on == "accepted")
    url = fill(target, path)
    for role in ROLES:
        if role in allowed:
            continue
        before = snapshot(site)
        expect_refused(send(world, role, api, method, url, body), role, api)
        assert snapshot(site) == before, role
    response = send(world, doer, api, method, url, body)
    assert response.status_code in (200, 201, 302), (doer, response.get_data(as_text=True)[:500])


def test_starting_a_request_by_role(world: dict[str, Any]) -> None:
    """firm_b's need × office_u2's result: either of them may start it, no one else."""
    site: Site = world["site"]
    body = {"need_id": site.ids["need"]["抗体药物稳定性改进"],
            "result_id": site.ids["result"]["肿瘤早筛血液检测方法"], "message": "希望洽谈"}
    for role in ROLES:
        if role in ("firm_b", "office_u2"):
            continue
        before = snapshot(site)
        expect_refused(send(world, role, True, "POST", "/connections", body), role, True)
        before_page = snapshot(site)
        assert before_page == before, role
        expect_refused(send(world, role, False, "POST", "/connections/new", body), role, False)
        assert snapshot(site) == before, role
    assert send(world, "firm_b", True, "POST", "/connections", body).status_code == 201
    # The same side again while it is open: the one that exists, never a second.
    error_of(send(world, "firm_b", True, "POST", "/connections", body), 409)
    assert send(world, "office_u2", False, "POST", "/connections/new", body).status_code == 302
    error_of(send(world, "firm_b", True, "POST", "/connections",
                  body | {"need_id": int(UNKNOWN)}), 404)


def test_notifications_are_their_owners_only(world: dict[str, Any]) -> None:
    """Someone else's notification does not exist for you (404), whoever you are."""
    site: Site = world["site"]
    note = notification_of(world, "office_u2")  # of the read-only request, to office_u2
    for role in ROLES:
        if role == "office_u2":
            continue
        before = snapshot(site)
        api = send(world, role, True, "POST", f"/notifications/{note}/read")
        page = send(world, role, False, "POST", "/inbox/read", {"notification_id": str(note)})
        if role is None:
            expect_refused(api, role, True)
            expect_refused(page, role, False)
        else:
            error_of(api, 404)
            assert page.status_code == 404, (role, page.status_code)
        assert snapshot(site) == before, role
    answer = send(world, "office_u2", True, "POST", f"/notifications/{note}/read")
    assert answer.status_code == 200 and answer.get_json()["marked"] == 1
    for role in SIGNED_IN:  # everyone may mark their own as read, all at once
        assert send(world, role, True, "POST", "/notifications/read").status_code == 200
        assert send(world, role, False, "POST", "/inbox/read", {}).status_code == 302
    expect_refused(send(world, None, True, "POST", "/notifications/read"), None, True)


def test_email_settings_are_each_users_own(world: dict[str, Any]) -> None:
    site: Site = world["site"]
    body = {"email": "someone@example.com", "email_mode": "daily"}
    before = snapshot(site)
    expect_refused(send(world, None, False, "POST", "/account/notifications", body), None, False)
    assert snapshot(site) == before
    for role in SIGNED_IN:
        response = send(world, role, False, "POST", "/account/notifications",
                        body | {"email": f"{role}@example.com"})
        assert response.status_code == 302, role
    with site.app.app_context(), sessions()() as db:
        emails = {user.username: user.email for user in db.scalars(select(User))}
    assert all(emails[role] == f"{role}@example.com" for role in SIGNED_IN), emails
