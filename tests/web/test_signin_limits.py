"""Sign-in limits and session expiry, through HTTP as a browser or a script meets them.

The limits live in the database (the audit log), so they hold across worker processes; the
clocks of `service.signin_limits` and `web.auth` are moved forward instead of sleeping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from corpora.models import AuditEntry
from service import signin_limits
from tests.support.web import PASSWORD, Site
from web import auth
from web.database import sessions

API = "/api/v1"
WRONG = "wrong-password-123"
OTHER_ADDRESS = {"REMOTE_ADDR": "198.51.100.7"}


class Clock:
    """A settable clock for both modules: `advance` moves every later reading."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moment = datetime.now(UTC)
        monkeypatch.setattr(signin_limits, "now", self)
        monkeypatch.setattr(auth, "now", self)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password})


def token(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post(f"{API}/token", json={"username": username, "password": password})


def entries(site: Site, action: str) -> list[dict[str, Any]]:
    with site.app.app_context(), sessions()() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.action == action)
                          .order_by(AuditEntry.id))
        return [json.loads(row.detail) for row in rows]


def test_sixth_attempt_on_an_account_is_refused_even_with_the_right_password(
        sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.app.test_client()
    for username in ("firm_a", " firm_a", "firm_a", "firm_a ", "firm_a"):
        assert sign_in(client, username, WRONG).status_code == 401
    refused = sign_in(client, "firm_a")
    assert refused.status_code == 429
    assert "该账号登录失败次数过多" in refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Content-Security-Policy" in refused.headers  # still a page of the site
    # Refused before the password was checked, so no session was started.
    assert client.get("/account").status_code == 302
    # The same address may still sign in to other accounts, and from elsewhere too.
    assert sign_in(sqlite_site.app.test_client(), "firm_b").status_code == 302
    elsewhere = sqlite_site.app.test_client()
    elsewhere.environ_base.update(OTHER_ADDRESS)
    assert sign_in(elsewhere, "firm_a").status_code == 429  # the account is what is limited

    failed = entries(sqlite_site, signin_limits.FAILED)
    assert len(failed) == 5 and {f["account"] for f in failed} == {"firm_a"}
    assert failed[1]["username"] == " firm_a" and failed[0]["address"] == "127.0.0.1"
    refusals = entries(sqlite_site, signin_limits.REFUSED)
    assert [(r["account"], r["limit"], r["address"]) for r in refusals] == [
        ("firm_a", "account", "127.0.0.1"), ("firm_a", "account", "198.51.100.7")]


def test_an_unknown_username_is_limited_like_a_real_one(sqlite_site: Site, clock: Clock) -> None:
    """A refusal must not tell an attacker which usernames exist."""
    client = sqlite_site.app.test_client()
    for _ in range(5):
        assert sign_in(client, "nobody_here", WRONG).status_code == 401
    assert sign_in(client, "nobody_here", WRONG).status_code == 429


def test_the_address_limit_counts_failures_on_every_account(
        sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.app.test_client()
    for n in range(19):
        assert sign_in(client, f"guess{n % 5}", WRONG).status_code == 401
    # 19 failures from this address: other accounts still work, and a success here does
    # not wipe the address's count.
    assert sign_in(client, "firm_b").status_code == 302
    client.post("/logout")
    assert sign_in(client, "guess0", WRONG).status_code == 401  # the 20th
    refused = sign_in(client, "firm_b")
    assert refused.status_code == 429
    assert "此网络地址登录失败次数过多" in refused.get_data(as_text=True)
    assert token(client, "office_u1").status_code == 429
    other = sqlite_site.app.test_client()
    other.environ_base.update(OTHER_ADDRESS)
    assert sign_in(other, "firm_b").status_code == 302
    assert {r["limit"] for r in entries(sqlite_site, signin_limits.REFUSED)} == {"address"}


def test_the_window_slides_and_refusals_do_not_extend_it(sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.app.test_client()
    for _ in range(5):
        assert sign_in(client, "firm_a", WRONG).status_code == 401
        clock.advance(minutes=1)
    # The first failure was 5 minutes ago: it leaves the 15-minute window in 10 minutes.
    first = sign_in(client, "firm_a")
    assert first.status_code == 429 and int(first.headers["Retry-After"]) == 10 * 60
    clock.advance(minutes=9)
    # Knocking on while refused changes nothing: a refusal is not a failure.
    for _ in range(10):
        assert sign_in(client, "firm_a").status_code == 429
    assert int(sign_in(client, "firm_a").headers["Retry-After"]) == 60
    clock.advance(minutes=1, seconds=1)
    assert sign_in(client, "firm_a").status_code == 302
    assert len(entries(sqlite_site, signin_limits.FAILED)) == 5
    assert len(entries(sqlite_site, signin_limits.REFUSED)) == 12


def test_a_success_resets_the_account_count(sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.app.test_client()
    for _ in range(4):
        assert sign_in(client, "firm_a", WRONG).status_code == 401
    clock.advance(seconds=1)
    assert sign_in(client, "firm_a").status_code == 302
    client.post("/logout")
    clock.advance(seconds=1)
    for _ in range(4):  # 8 failures in the window, 4 since the success
        assert sign_in(client, "firm_a", WRONG).status_code == 401
    assert sign_in(client, "firm_a").status_code == 302
    client.post("/logout")
    clock.advance(seconds=1)
    for _ in range(5):
        assert sign_in(client, "firm_a", WRONG).status_code == 401
    assert sign_in(client, "firm_a").status_code == 429


def test_the_api_token_endpoint_shares_the_limits(sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.app.test_client()
    for _ in range(3):
        assert token(client, "office_u1", WRONG).status_code == 401
    for _ in range(2):  # the page and the API count together
        assert sign_in(client, "office_u1", WRONG).status_code == 401
    refused = token(client, "office_u1")
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["status"] == 429 and "该账号登录失败次数过多" in error["message"]
    assert "token" not in refused.get_json()
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["Cache-Control"] == "no-store"
    assert sign_in(client, "office_u1").status_code == 429
    failed = entries(sqlite_site, signin_limits.FAILED)
    assert [f.get("via") for f in failed] == ["api"] * 3 + [None] * 2
    assert entries(sqlite_site, signin_limits.REFUSED)[0]["via"] == "api"
    clock.advance(minutes=16)
    issued = token(client, "office_u1")
    assert issued.status_code == 200 and issued.get_json()["token"].startswith("g60_")


def test_values_no_account_can_have_are_counted_without_crashing(
        sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.app.test_client()
    for username in ("\ud800", "x" * 10_000, '"address": "127.0.0.1"', "a%_\\"):
        response = client.open(f"{API}/token", method="POST", content_type="application/json",
                                data=json.dumps({"username": username, "password": "x"}))
        assert response.status_code == 401
    accounts = [f["account"] for f in entries(sqlite_site, signin_limits.FAILED)]
    assert accounts == ["\\ud800", "x" * 50, '"address": "127.0.0.1"', "a%_\\"]
    # LIKE wildcards and JSON look-alikes match nothing but themselves.
    assert sign_in(client, "a%_\\", WRONG).status_code == 401
    assert sign_in(client, "firm_a").status_code == 302


def test_sign_in_makes_the_session_permanent(sqlite_site: Site) -> None:
    response = sign_in(sqlite_site.app.test_client(), "firm_a")
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie


def test_a_session_ends_after_its_lifetime_however_busy(sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.client("firm_a")
    for _ in range(5):  # a request every 1.5 h: never idle, 7.5 h in all
        clock.advance(hours=1, minutes=30)
        assert client.get("/account").status_code == 200
    clock.advance(minutes=31)  # 8 h 1 min after sign-in
    expired = client.get("/account")
    assert expired.status_code == 302 and "/login" in expired.headers["Location"]
    assert "登录已过期" in client.get("/login").get_data(as_text=True)
    assert client.get("/account").status_code == 302  # signed out for good
    assert sign_in(client, "firm_a").status_code == 302  # and may sign in again
    assert client.get("/account").status_code == 200


def test_a_session_ends_after_two_idle_hours(sqlite_site: Site, clock: Clock) -> None:
    client = sqlite_site.client("firm_b")
    clock.advance(hours=1, minutes=59)
    assert client.get("/account").status_code == 200  # the request keeps it alive
    clock.advance(hours=1, minutes=59)
    assert client.get(f"{API}/needs").status_code == 200  # the API by cookie too
    clock.advance(hours=2, seconds=1)
    assert client.get(f"{API}/needs").status_code == 401
    assert client.get("/account").status_code == 302


def test_the_idle_timeout_is_configurable(tmp_path: Any, clock: Clock) -> None:
    from tests.support.web import make_site

    site = make_site(f"sqlite:///{tmp_path / 'idle.sqlite'}", tmp_path / "home",
                     WTF_CSRF_ENABLED=False, SESSION_IDLE_TIMEOUT=600,
                     LOGIN_LIMIT_PER_ACCOUNT=2)
    try:
        client = site.client("officer")
        clock.advance(seconds=601)
        assert client.get("/account").status_code == 302
        for _ in range(2):
            assert sign_in(client, "officer", WRONG).status_code == 401
        assert sign_in(client, "officer").status_code == 429
    finally:
        site.app.extensions["matcher.engine"].dispose()


def test_passwords_and_api_tokens_are_stored_only_as_hashes(sqlite_site: Site) -> None:
    """What SECURITY.md promises: scrypt for passwords, SHA-256 for API tokens."""
    import hashlib

    from corpora.models import User

    issued = token(sqlite_site.app.test_client(), "firm_a").get_json()["token"]
    with sqlite_site.app.app_context(), sessions()() as db:
        user = db.scalar(select(User).where(User.username == "firm_a"))
        assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash
        assert user.api_token_hash == hashlib.sha256(issued.encode()).hexdigest()
        assert issued not in json.dumps([e for e in entries(sqlite_site, "issue_token")])
