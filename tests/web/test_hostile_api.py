"""Property-based robustness of every /api/v1 endpoint and every HTML form (hypothesis).

The contract (docs/api.md §2): whatever a client sends — random Unicode with control
characters, lone surrogates, RTL marks and emoji, 100 KB strings, wrong JSON types, missing
and extra fields, huge numbers, broken bodies, junk ids and query strings, any identity —
the answer is a success or a 4xx that explains itself (a JSON error with a message under
/api/, an HTML page elsewhere), never a 500, and a rejected request leaves every table of
the database exactly as it was. GET requests never write at all. Failed sign-ins are the one
deliberate exception: they are recorded in the audit log (that is how rate limits count).

Random search (hypothesis) rarely breaks exactly one field of an otherwise valid request,
which is where a missing length or character check hides, so a deterministic sweep tries
every field of every form and JSON write with each of a dozen bad values too. Bugs these
tests found are kept below as regression tests.

One seeded site per database serves the whole module (building one per example would
dominate the run time); each example compares the database before and after its own
request. Both SQLite and PostgreSQL run: PostgreSQL refuses what SQLite stores (NUL bytes,
ids past 32 bits), so a value that slips past validation fails there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import (
    HealthCheck,
    Phase,
    currently_in_test_context,
    event,
    given,
    settings,
)
from hypothesis import strategies as st
from sqlalchemy import select

from corpora.connections import Notification
from corpora.dump import tables
from corpora.models import AuditEntry, Need, Result, ShortlistLot, User
from service import connections
from service.accounts import NewUser, create_user
from service.records import NEED_FIELDS, RESULT_FIELDS
from tests.support.api import NEW_NEED, NEW_RESULT, add_shortlist, bearer, error_of
from tests.support.databases import postgres_schema
from tests.support.web import PASSWORD, Site, make_site
from web.database import sessions

API = "/api/v1"
USERS = ("firm_a", "firm_b", "office_u1", "office_u2", "officer", "admin")
# HOSTILE_EXAMPLES=2000 for a deeper hunt; the default keeps the module well under a minute.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "60"))
# No "explain" phase: on a failure it reruns the test hundreds of times to annotate lines.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
FAST = settings(max_examples=EXAMPLES, deadline=None, database=None, phases=PHASES,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


# --- the site, built once ------------------------------------------------------------------


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("hostile")
    with ExitStack() as stack:
        url = f"sqlite:///{home / 'site.sqlite'}" if request.param == "sqlite" \
            else stack.enter_context(postgres_schema())
        yield from _world(url, home, request.param)


def _world(url: str, home: Path, backend: str) -> Iterator[dict[str, Any]]:
    site = make_site(url, home / "home", WTF_CSRF_ENABLED=False)
    shortlist = add_shortlist(site)
    with site.app.app_context(), sessions()() as db:
        lot, lot_result = db.execute(
            select(ShortlistLot.id, ShortlistLot.result_id)
            .where(ShortlistLot.shortlist_id == shortlist).order_by(ShortlistLot.position)).first()
        spare = create_user(db, NewUser("spare_firm", PASSWORD, "firm", "备用",
                                        "乙生物医药有限公司"))
        db.commit()
        spare_id = spare.id
        connection = connections.start(
            db, db.get(User, site.ids["user"]["firm_a"]),
            db.get(Need, site.ids["need"]["工业机器人视觉抓取精度提升"]),
            db.get(Result, site.ids["result"]["基于深度学习的机器人视觉定位方法"]),
            {"message": "希望洽谈", "wants": ["报价"]})
        db.commit()
        connection_id = connection.id
        notification_id = db.scalar(select(Notification.id).where(
            Notification.user_id == site.ids["user"]["office_u1"]))
    need = site.ids["need"]["工业机器人视觉抓取精度提升"]
    result = site.ids["result"]["基于深度学习的机器人视觉定位方法"]
    world: dict[str, Any] = {
        "site": site, "need": need, "result": result, "shortlist": shortlist, "lot": lot,
        "lot_result": lot_result,
        "spare": spare_id, "backend": backend, "connection": connection_id,
        "notification": notification_id,
        "tokens": {name: bearer(site, name) for name in USERS},
        "clients": {name: site.client(name) for name in USERS},
    }
    yield world
    site.app.extensions["matcher.engine"].dispose()


def snapshot(site: Site, *, ignore_failed_logins: bool = False) -> dict[str, list[Any]]:
    """Every row of every table."""
    engine = site.app.extensions["matcher.engine"]
    with engine.connect() as connection:
        rows = {table.name: [tuple(row) for row in connection.execute(
            select(table).order_by(*table.primary_key.columns))] for table in tables()}
    if ignore_failed_logins:
        action = [c.name for c in AuditEntry.__table__.columns].index("action")
        rows["audit_log"] = [row for row in rows["audit_log"]
                             if row[action] not in ("login_failed", "login_refused")]
    return rows


def check(site: Site, response: Any, before: dict[str, list[Any]], *, api: bool,
          writes: bool = True, failed_login_ok: bool = False) -> None:
    """The contract for one request, given the database as it was before it."""
    status = response.status_code
    if currently_in_test_context():
        event(f"{response.request.method} {status}")
    assert status < 500, response.get_data(as_text=True)[:2000]
    if status >= 400:
        if api:
            error_of(response, status)
        else:
            assert response.mimetype == "text/html" and response.get_data(), status
    if status >= 400 or not writes:
        after = snapshot(site, ignore_failed_logins=failed_login_ok)
        assert after == before, f"{response.request.method} {response.request.path} {status}"


# --- strategies -----------------------------------------------------------------------------

SPECIAL = [
    "\x00", "\x07", "\x1b[31m", "\r\n", "\u202e", "\u200f", "\u2066abc\u2069", "\ufeff",
    "\ufffe", "\u200b", "😀", "👨‍👩‍👧", "\ud800", "\udfff", "a\udc80b", "𠀀", "Ω̈́",
    "=cmd|' /C calc'!A0", "<script>alert(1)</script>", "' OR 1=1 --", "%00", "%ff%fe",
    "../../etc/passwd", "١٢٣", "１２３", "²", "0", "-1", "1e999", "NaN", "9" * 40,
    "智能制造", "合作开发", "发明专利", "中试", "技术转让;许可", "open", "closed", "withdrawn",
    "2025-02-30", "2025-06-30", "0000-01-01", "9999-12-31", "yes", "true", "up", "top",
]
CHARS = st.characters(exclude_categories=())  # every code point: controls, lone surrogates
short_text = st.one_of(st.text(CHARS, max_size=12), st.sampled_from(SPECIAL))
# Up to ~100 KB (a 3-character seed repeated 34,000 times).
huge_text = st.builds(lambda seed, times: seed * times, st.text(CHARS, min_size=1, max_size=3),
                      st.sampled_from([700, 5_000, 34_000]))
# Odd but legal text (emoji, RTL marks, rare scripts, no controls): requests that succeed
# with it exercise the write, the audit entry and the indexing of such text.
legal_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
# Lengths at and just past the limits columns and validators use (VARCHAR(50), (100), (200),
# 500- and 1000-character notes): where a missing check shows on PostgreSQL only.
boundary_text = st.builds(lambda char, length: char * length, st.sampled_from(["a", "长", "😀"]),
                          st.sampled_from([50, 51, 100, 101, 200, 201, 500, 501, 1000, 1001]))
text_value = st.one_of(short_text, short_text, huge_text, legal_text, boundary_text)
numbers = st.one_of(st.integers(), st.floats(),
                    st.sampled_from([0, -1, 2**31, 2**63, 10**30, -(10**300), 10**4000, 1e308,
                                     -0.0, 5e-324]))
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, text_value),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(short_text, children, max_size=3)),
    max_leaves=6)


def body_for(fields: tuple[str, ...], base: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly objects near a valid body: some fields changed, removed or added."""
    def mutate(start: dict[str, Any], updates: dict[str, Any], removed: set[str]) -> Any:
        return {**{k: v for k, v in start.items() if k not in removed}, **updates}
    near = st.builds(mutate, st.sampled_from([base, {}]),
                     st.dictionaries(st.one_of(st.sampled_from(fields), short_text), json_value,
                                     max_size=4),
                     st.sets(st.sampled_from(fields), max_size=3))
    # The valid body with legal but odd text in one or two of its own text fields.
    texts = [name for name, value in base.items() if isinstance(value, str)] or list(fields)
    odd = st.builds(mutate, st.just(base),
                    st.dictionaries(st.sampled_from(texts), legal_text, max_size=2),
                    st.just(set()))
    return st.one_of(near, near, near, odd, odd, json_value)


def encode_json(body: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \udxxx escapes, as a JSON client would send them
    return json.dumps(body).encode("ascii")


payload = st.one_of(st.just("json"), st.just("json"), st.just("json"), st.just("binary"),
                    st.just("text"))
content_types = st.sampled_from(["application/json", "application/json", "application/json",
                                 "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded"])


def raw_segment(value: str) -> str:
    """A value as it would arrive in a URL: UTF-8 (lone surrogates as their raw bytes, which
    makes them invalid UTF-8), percent-encoded."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def query_for(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    pair = st.tuples(st.one_of(st.sampled_from(names), st.sampled_from(names), short_text),
                     st.one_of(short_text, huge_text.map(lambda s: s[:3000])))
    return st.lists(pair, max_size=4).map(
        lambda pairs: "&".join(f"{raw_segment(k)}={raw_segment(v)}" for k, v in pairs))


path_id = st.one_of(st.just("{id}"), st.just("{id}"), st.sampled_from(
    ["0", "-1", "1.5", "9" * 30, "99999", "2147483648", "１", "abc", "%00", "%ED%A0%80",
     "1%20", "+1", "0x10", "1e3"]))


def who(owner: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.just(owner), st.just(owner), st.sampled_from([*USERS, None, "bad"]))


def headers_for(world: dict[str, Any], user: str | None) -> dict[str, str]:
    if user is None:
        return {}
    if user == "bad":
        return {"Authorization": "Bearer g60_not_a_token"}
    return world["tokens"][user]


# --- API writes -----------------------------------------------------------------------------

NEED_BODY_FIELDS = (*NEED_FIELDS, "status")
RESULT_BODY_FIELDS = (*RESULT_FIELDS, "status")
FEEDBACK_FIELDS = ("result_id", "relevant", "reason")
CONNECTION_FIELDS = ("need_id", "result_id", "message", "wants", "contact")
STAGE_FIELDS = ("stage", "deal_form", "deal_amount", "signed_on", "note")
OUTCOME_FIELDS = ("outcome", "sold_price", "buyer")
WRITES = [
    ("POST", "/needs", "firm_a", NEED_BODY_FIELDS, NEW_NEED, None),
    ("PATCH", "/needs/{id}", "firm_a", NEED_BODY_FIELDS, {"title": "新标题"}, "need"),
    ("PATCH", "/results/{id}", "office_u1", RESULT_BODY_FIELDS, {"abstract": "新摘要"},
     "result"),
    ("PATCH", "/needs/{id}", "firm_a", NEED_BODY_FIELDS, {}, "need"),
    ("POST", "/needs/{id}/feedback", "firm_a", FEEDBACK_FIELDS,
     {"result_id": 1, "relevant": True, "reason": "合适"}, "need"),
    ("POST", "/results", "office_u1", RESULT_BODY_FIELDS, NEW_RESULT, None),
    ("PATCH", "/results/{id}", "office_u1", RESULT_BODY_FIELDS, {}, "result"),
    ("POST", "/results", "office_u1", RESULT_BODY_FIELDS, NEW_RESULT, None),
    ("PUT", "/needs/{id}", "firm_a", NEED_BODY_FIELDS, NEW_NEED, "need"),
    ("DELETE", "/results/{id}", "office_u1", ("title",), {}, "result"),
    ("POST", "/connections", "firm_a", CONNECTION_FIELDS,
     {"need_id": 1, "result_id": 1, "message": "希望洽谈", "wants": ["报价"], "contact": "021"},
     None),
    ("POST", "/connections/{id}/accept", "office_u1", ("contact",), {"contact": "021"},
     "connection"),
    ("POST", "/connections/{id}/decline", "office_u1", ("reason", "note"),
     {"reason": "其他", "note": "说明"}, "connection"),
    ("POST", "/connections/{id}/stage", "firm_a", STAGE_FIELDS,
     {"stage": "signed", "deal_form": "许可", "deal_amount": 5}, "connection"),
    ("POST", "/connections/{id}/withdraw", "firm_a", ("x",), {}, "connection"),
    ("POST", "/notifications/{id}/read", "office_u1", ("x",), {}, "notification"),
    ("POST", "/notifications/read", "office_u1", ("x",), {}, None),
    ("PUT", "/shortlists/{shortlist}/lots/{id}/outcome", "officer", OUTCOME_FIELDS,
     {"outcome": "sold", "sold_price": 50, "buyer": "甲智能装备有限公司"}, "lot_result"),
    ("PUT", "/shortlists/{shortlist}/lots/{id}/outcome", "officer", OUTCOME_FIELDS,
     {"outcome": "unsold"}, "lot_result"),
]


@st.composite
def api_write(draw: st.DrawFn) -> dict[str, Any]:
    method, path, owner, fields, base, kind = draw(st.sampled_from(WRITES))
    kind_of_body = draw(payload)
    if kind_of_body == "json":
        data: bytes = encode_json(draw(body_for(fields, base)))
    elif kind_of_body == "binary":
        data = draw(st.binary(max_size=80))
    else:
        data = draw(text_value).encode("utf-8", "surrogatepass")
    return {"method": method, "path": path, "kind": kind, "segment": draw(path_id),
            "user": draw(who(owner)), "data": data, "content_type": draw(content_types)}


def resolve(world: dict[str, Any], path: str, kind: str | None, segment: str) -> str:
    if kind is None:
        return path
    real = str(world[kind])
    return fill(world, path.replace("{id}", segment.replace("{id}", real)))


@FAST
@given(request=api_write())
def test_api_writes_never_500_and_rejections_change_nothing(world: dict[str, Any],
                                                            request: dict[str, Any]) -> None:
    site: Site = world["site"]
    client = site.app.test_client()
    before = snapshot(site)
    response = client.open(API + resolve(world, request["path"], request["kind"],
                                         request["segment"]),
                           method=request["method"], data=request["data"],
                           content_type=request["content_type"],
                           headers=headers_for(world, request["user"]))
    check(site, response, before, api=True)


# --- API reads ------------------------------------------------------------------------------

DASHBOARD_ARGS = ("date_from", "date_to", "industry", "city")
MATCH_ARGS = ("k", "industry", "result_type", "maturity", "institution", "cooperation_mode",
              "city", "date_from", "date_to")
READS = [
    ("/needs", None, ("industry", "cooperation_mode", "status", "organisation_id", "mine",
                      "page", "per_page")),
    ("/needs/{id}", "need", ()),
    ("/needs/{id}/matches", "need", MATCH_ARGS),
    ("/results", None, ("industry", "result_type", "maturity", "status", "organisation_id",
                        "mine", "page", "per_page")),
    ("/results/{id}", "result", ()),
    ("/results/{id}/matches", "result", MATCH_ARGS),
    ("/results/{id}/interest", "result", ()),
    ("/search", None, ("q", "q", "side", *MATCH_ARGS)),
    ("/shortlists", None, ("page", "per_page")),
    ("/shortlists/{id}", "shortlist", ()),
    ("/connections", None, ("status", "stage", "direction", "page", "per_page")),
    ("/connections/{id}", "connection", ()),
    ("/notifications", None, ("unread", "page", "per_page")),
    ("/dashboard", None, DASHBOARD_ARGS),
    ("/nowhere", None, ("x",)),
]


@st.composite
def api_read(draw: st.DrawFn) -> dict[str, Any]:
    path, kind, names = draw(st.sampled_from(READS))
    owner = "officer" if "shortlist" in path else draw(st.sampled_from(USERS))
    return {"path": path, "kind": kind, "segment": draw(path_id), "user": draw(who(owner)),
            "query": draw(query_for(names or ("x",)))}


@FAST
@given(request=api_read())
def test_api_reads_never_500_and_never_write(world: dict[str, Any],
                                            request: dict[str, Any]) -> None:
    site: Site = world["site"]
    before = snapshot(site)
    response = site.app.test_client().get(
        API + resolve(world, request["path"], request["kind"], request["segment"]),
        query_string=request["query"], headers=headers_for(world, request["user"]))
    check(site, response, before, api=True, writes=False)


# --- tokens (a site of their own: failed sign-ins are rate-limited per address) -------------


@pytest.fixture(scope="module")
def token_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home: Path = tmp_path_factory.mktemp("hostile-token")
    site = make_site(f"sqlite:///{home / 'site.sqlite'}", home / "home",
                     WTF_CSRF_ENABLED=False)
    yield site
    site.app.extensions["matcher.engine"].dispose()


@settings(FAST, max_examples=max(EXAMPLES * 2 // 3, 1))
@given(body=body_for(("username", "password"), {"username": "firm_a", "password": PASSWORD}),
       content_type=content_types)
def test_token_requests_never_500(token_site: Site, body: Any, content_type: str) -> None:
    before = snapshot(token_site, ignore_failed_logins=True)
    response = token_site.app.test_client().post(f"{API}/token", data=encode_json(body),
                                                 content_type=content_type)
    check(token_site, response, before, api=True, failed_login_ok=True)


# --- HTML forms -----------------------------------------------------------------------------

NEED_FORM = {"title": "视觉检测需求", "description": "需要视觉检测算法", "industry": "智能制造",
             "cooperation_mode": "合作开发", "budget_min": "10", "budget_max": "50",
             "region": "上海松江", "contact": "021-0000",
             # A deadline in the past is refused: a year ahead, whenever the suite runs.
             "deadline": (date.today() + timedelta(days=365)).isoformat()}
RESULT_FORM = {"title": "视觉检测方法", "abstract": "一种视觉检测方法", "result_type": "发明专利",
               "patent_number": "CN1", "maturity": "中试", "industry": "智能制造",
               "keywords": "视觉;检测", "inventors": "张三", "transfer_modes": "许可",
               "asking_price": "20", "published_on": "2024-01-01"}
FORMS = [
    ("/connections/new", "firm_a", CONNECTION_FIELDS,
     {"need_id": "{need}", "result_id": "{result}", "message": "你好", "wants": "报价"}),
    ("/connections/{connection}/accept", "office_u1", ("contact",), {"contact": "021"}),
    ("/connections/{connection}/decline", "office_u1", ("reason", "note"),
     {"reason": "其他", "note": "说明"}),
    ("/connections/{connection}/stage", "firm_a", STAGE_FIELDS,
     {"stage": "signed", "deal_form": "许可", "deal_amount": "5"}),
    ("/connections/{connection}/withdraw", "firm_a", ("x",), {}),
    ("/inbox/read", "office_u1", ("notification_id",), {"notification_id": "{notification}"}),
    ("/needs/new", "firm_a", NEED_FIELDS, NEED_FORM),
    ("/needs/{need}/edit", "firm_a", NEED_FIELDS, NEED_FORM),
    ("/needs/{need}/status", "firm_a", ("status", "confirm"), {"status": "open"}),
    ("/needs/{need}/feedback", "firm_a", ("result_id", "relevant", "reason", "back"),
     {"result_id": "{result}", "relevant": "1", "reason": "合适", "back": "?industry=智能制造"}),
    ("/results/new", "office_u1", RESULT_FIELDS, RESULT_FORM),
    ("/results/{result}/edit", "office_u1", RESULT_FIELDS, RESULT_FORM),
    ("/results/{result}/status", "office_u1", ("status", "confirm"), {"status": "active"}),
    ("/results/upload", "office_u1", ("file",), {}),
    ("/shortlists/", "officer", ("title", "event_date", "note", "add"),
     {"title": "拍卖会", "event_date": "2026-05-01", "note": "说明"}),
    ("/shortlists/add", "officer", ("result_id", "shortlist_id"),
     {"result_id": "{result}", "shortlist_id": "{shortlist}"}),
    ("/shortlists/{shortlist}/edit", "officer", ("title", "event_date", "note"),
     {"title": "拍卖会", "event_date": "2026-05-01", "note": "说明"}),
    ("/shortlists/{shortlist}/lots", "officer", ("result_id",), {"result_id": "{result}"}),
    ("/shortlists/{shortlist}/lots/{lot}/move", "officer", ("direction", "position"),
     {"direction": "down"}),
    ("/shortlists/{shortlist}/lots/{lot}/edit", "officer", ("reserve_price", "note"),
     {"reserve_price": "12.5", "note": "备注"}),
    ("/shortlists/{shortlist}/propose", "officer", ("n", "balance", "result_id"),
     {"n": "2", "balance": "0.5"}),
    ("/shortlists/{shortlist}/delete", "officer", ("confirm",), {}),
    ("/admin/users", "admin", ("username", "display_name", "role", "organisation", "password"),
     {"username": "newbie", "display_name": "新人", "role": "firm",
      "organisation": "甲智能装备有限公司", "password": "Long-enough-123"}),
    ("/admin/users/{spare}/active", "admin", ("active", "confirm"), {"active": "1"}),
    ("/admin/users/{spare}/password", "admin", ("new_password", "confirm_password"),
     {"new_password": "Long-enough-123", "confirm_password": "Long-enough-123"}),
    ("/admin/organisations", "admin", ("name", "kind", "city", "tier"),
     {"name": "新单位", "kind": "firm", "city": "嘉兴", "tier": ""}),
    ("/account/notifications", "firm_a", ("email", "email_mode"),
     {"email": "buyer@example.com", "email_mode": "daily"}),
    ("/shortlists/{shortlist}/lots/{lot}/outcome", "officer", OUTCOME_FIELDS,
     {"outcome": "sold", "sold_price": "50", "buyer": "甲智能装备有限公司"}),
    ("/shortlists/{shortlist}/lots/{lot}/outcome", "officer", OUTCOME_FIELDS,
     {"outcome": "clear"}),
    # The confirmation steps (web.confirm): without confirm=1 a page, never a write.
    ("/needs/{need}/status", "firm_a", ("status", "confirm"), {"status": "closed"}),
    ("/results/{result}/status", "office_u1", ("status", "confirm"), {"status": "withdrawn"}),
    ("/admin/users/{spare}/active", "admin", ("active", "confirm"), {"active": "0"}),
    ("/shortlists/{shortlist}/lots/{lot}/remove", "officer", ("confirm",), {"confirm": "0"}),
]


def fill(world: dict[str, Any], template: str) -> str:
    for key in ("need", "result", "shortlist", "lot", "lot_result", "spare", "connection",
                "notification"):
        template = template.replace("{" + key + "}", str(world[key]))
    return template


@st.composite
def form_post(draw: st.DrawFn) -> dict[str, Any]:
    path, owner, fields, base = draw(st.sampled_from(FORMS))
    values = dict(base) if draw(st.booleans()) else {}
    if "username" in values:  # a new name each time, so that creating the account can work
        values["username"] = draw(st.from_regex(r"[a-z][a-z0-9_]{5,20}", fullmatch=True))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 4]))):
        name = draw(st.one_of(st.sampled_from(fields), st.sampled_from(fields), short_text))
        if draw(st.integers(0, 5)) == 0:
            values.pop(name, None)
        else:
            values[name] = draw(text_value)
    pairs = list(values.items())
    if draw(st.integers(0, 4)) == 0 and pairs:  # a field given twice
        pairs.append((pairs[0][0], draw(short_text)))
    return {"path": path, "user": draw(who(owner)), "pairs": pairs}


@FAST
@given(request=form_post())
def test_forms_never_500_and_rejections_change_nothing(world: dict[str, Any],
                                                      request: dict[str, Any]) -> None:
    site: Site = world["site"]
    user = request["user"]
    client: FlaskClient = site.app.test_client() if user in (None, "bad") \
        else world["clients"][user]
    body = "&".join(f"{raw_segment(fill(world, k))}={raw_segment(fill(world, v))}"
                    for k, v in request["pairs"])
    before = snapshot(site)
    response = client.post(fill(world, request["path"]), data=body.encode("ascii"),
                           content_type="application/x-www-form-urlencoded")
    check(site, response, before, api=False)
    if response.status_code < 400:
        keep_ids_usable(world)


def keep_ids_usable(world: dict[str, Any]) -> None:
    """A success may have deleted the shortlist, removed or moved its lot, disabled the spare
    user, closed the need or withdrawn the result (a confirmed confirmation step)."""
    site: Site = world["site"]
    with site.app.app_context(), sessions()() as db:
        first_lot = db.execute(select(ShortlistLot.id, ShortlistLot.result_id).where(
            ShortlistLot.shortlist_id == world["shortlist"]).order_by(ShortlistLot.id)).first()
        if first_lot is None:  # the shortlist deleted, or its last lot removed
            world["shortlist"] = add_shortlist(site)
            first_lot = db.execute(select(ShortlistLot.id, ShortlistLot.result_id).where(
                ShortlistLot.shortlist_id == world["shortlist"]).order_by(ShortlistLot.id)).first()
        world["lot"], world["lot_result"] = first_lot
        spare = db.get(User, world["spare"])
        if not spare.is_active:
            spare.is_active = True
            db.commit()
        reopen = {"need": db.get(Need, world["need"]).status != "open",
                  "result": db.get(Result, world["result"]).status != "active"}
    # Through the forms, so that the indexes follow as they would on the site.
    if reopen["need"]:
        world["clients"]["firm_a"].post(f"/needs/{world['need']}/status",
                                        data={"status": "open"})
    if reopen["result"]:
        world["clients"]["office_u1"].post(f"/results/{world['result']}/status",
                                           data={"status": "active"})


# --- every field of every form and write, one bad value at a time ------------------------------

# Each is tried alone in an otherwise valid request: random search rarely breaks exactly one
# field of a valid form, which is where a missing length or character check hides.
SWEEP_TEXT = ["", "\x07\u202e右", "长" * 101, "长" * 201, "长" * 1001, "9" * 40, "-1"]
SWEEP_JSON: list[Any] = ["", "\x07\u202e右", "\ud800", "长" * 101, "长" * 201, "长" * 1001,
                         10**30, -1, True, None, [], {"a": 1}]


def test_forms_one_bad_field_at_a_time(world: dict[str, Any]) -> None:
    site: Site = world["site"]
    for path, owner, fields, base in FORMS:
        if not base:
            continue
        for field in fields:
            for bad in SWEEP_TEXT:
                values = {k: fill(world, v) for k, v in base.items()} | {field: bad}
                if "username" in values and field != "username":  # a new account each time
                    values["username"] = f"sweep_{fields.index(field)}_{SWEEP_TEXT.index(bad)}"
                body = "&".join(f"{raw_segment(k)}={raw_segment(v)}" for k, v in values.items())
                before = snapshot(site)
                response = world["clients"][owner].post(
                    fill(world, path), data=body.encode("ascii"),
                    content_type="application/x-www-form-urlencoded")
                check(site, response, before, api=False)
                keep_ids_usable(world)


def test_api_writes_one_bad_field_at_a_time(world: dict[str, Any]) -> None:
    site: Site = world["site"]
    client = site.app.test_client()
    swept: set[tuple[str, str]] = set()
    for method, path, owner, fields, base, kind in WRITES:
        if not base or method == "DELETE" or (method, path) in swept \
                or (method == "PUT" and "outcome" not in path):
            continue
        swept.add((method, path))
        for field in fields:
            for bad in SWEEP_JSON:
                before = snapshot(site)
                response = client.open(
                    API + resolve(world, path, kind, "{id}"), method=method,
                    data=encode_json(base | {field: bad}), content_type="application/json",
                    headers=headers_for(world, owner))
                check(site, response, before, api=True)


# --- HTML pages with hostile query strings ----------------------------------------------------

PAGES = [
    ("/", "firm_a", ("q",)),
    ("/search", "firm_a", ("q", "side", *MATCH_ARGS)),
    ("/needs/mine", "firm_a", ("page",)),
    ("/needs/{need}", "firm_a", MATCH_ARGS),
    ("/results/mine", "office_u1", ("page",)),
    ("/results/{result}", "office_u1", MATCH_ARGS),
    ("/results/coverage", "officer", ("industry", "institution", "page")),
    ("/shortlists/", "officer", ("add",)),
    ("/shortlists/{shortlist}", "officer", ()),
    ("/shortlists/{shortlist}/propose", "officer", ("n", "balance")),
    ("/shortlists/{shortlist}/export.csv", "officer", ()),
    ("/shortlists/{shortlist}/print", "officer", ()),
    ("/login", None, ("next",)),
    ("/admin/users", "admin", ()),
    ("/inbox", "firm_a", ("status", "stage", "direction")),
    ("/connections/{connection}", "office_u1", ()),
    ("/connections/new", "firm_a", ("need_id", "result_id")),
    ("/account/notifications", "firm_a", ()),
    ("/admin/users/{spare}/password", "admin", ()),
    ("/shortlists/{shortlist}/export.xlsx", "officer", ()),
    ("/dashboard", "officer", DASHBOARD_ARGS),
    ("/dashboard", "office_u1", DASHBOARD_ARGS),
    ("/dashboard/export.xlsx", "officer", DASHBOARD_ARGS),
    ("/dashboard/export.xlsx", "office_u1", DASHBOARD_ARGS),
    ("/dashboard/chart/industry.svg", "officer", DASHBOARD_ARGS),
    ("/dashboard/chart/interest.svg", "office_u1", DASHBOARD_ARGS),
    ("/dashboard/chart/nowhere.svg", "officer", DASHBOARD_ARGS),
]


@st.composite
def page_get(draw: st.DrawFn) -> dict[str, Any]:
    path, owner, names = draw(st.sampled_from(PAGES))
    return {"path": path, "user": draw(who(owner) if owner else st.none()),
            "query": draw(query_for(names or ("x",)))}


@FAST
@given(request=page_get())
def test_pages_never_500_and_never_write(world: dict[str, Any],
                                         request: dict[str, Any]) -> None:
    site: Site = world["site"]
    user = request["user"]
    client = site.app.test_client() if user in (None, "bad") else world["clients"][user]
    before = snapshot(site)
    response = client.get(fill(world, request["path"]), query_string=request["query"])
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]
    if response.status_code >= 400:
        assert response.mimetype == "text/html" and response.get_data()
    assert snapshot(site) == before


# --- fixed bugs, kept as regression tests ------------------------------------------------


@pytest.mark.postgres
def test_admin_user_with_a_long_display_name_is_refused_not_500(tmp_path: Path) -> None:
    with postgres_schema() as url:
        site = make_site(url, tmp_path / "home", WTF_CSRF_ENABLED=False)
        try:
            response = site.client("admin").post("/admin/users", data={
                "username": "long_name", "display_name": "长" * 101, "role": "firm",
                "organisation": "甲智能装备有限公司", "password": "Long-enough-123"})
            assert response.status_code == 400
        finally:
            site.app.extensions["matcher.engine"].dispose()
