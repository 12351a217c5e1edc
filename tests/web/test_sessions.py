"""Every session of an account ends on the server when it signs out, changes its password or is
disabled; and sign-in starts a session of its own, never one a cookie planted before it holds.

A stolen cookie is played back from a second client exactly as the browser sent it, on a page
and on the API (which authenticates cookies through the same Flask-Login loader).
"""

from __future__ import annotations

from alembic.command import upgrade as upgrade_to
from flask.testing import FlaskClient
from sqlalchemy import select, text

from corpora.db import alembic_config, create_engine_for, upgrade
from corpora.models import User
from tests.support.web import PASSWORD, Site, csrf_token
from web.database import sessions

NEED = "工业机器人视觉抓取精度提升"  # firm_a's
NEW_PASSWORD = "Changed-pass-2027"
API = "/api/v1"


def stolen(client: FlaskClient) -> str:
    """The session cookie as the browser holds it now."""
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def replay(site: Site, cookie: str) -> FlaskClient:
    """A second browser that sends `cookie` as its own."""
    thief = site.app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def assert_signed_in(client: FlaskClient, need_id: int) -> None:
    assert client.get(f"{API}/needs/{need_id}").status_code == 200
    assert client.get("/needs/mine").status_code == 200


def assert_signed_out(client: FlaskClient, need_id: int) -> None:
    api = client.get(f"{API}/needs/{need_id}")
    assert api.status_code == 401, api.get_data(as_text=True)
    page = client.get("/needs/mine")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def generation(site: Site, username: str) -> int:
    with site.app.app_context(), sessions()() as db:
        return db.scalar(select(User.session_generation).where(User.username == username))


def change_password(client: FlaskClient, current: str = PASSWORD, new: str = NEW_PASSWORD,
                    confirm: str | None = None) -> object:
    return client.post("/account/password", data={
        "current_password": current, "new_password": new,
        "confirm_password": new if confirm is None else confirm})


def test_a_cookie_copied_before_logout_is_refused_after_it(site: Site) -> None:
    need_id = site.ids["need"][NEED]
    firm = site.client("firm_a")
    other_device = site.client("firm_a")
    copy = stolen(firm)
    assert_signed_in(replay(site, copy), need_id)  # the copy works while the session lives
    assert firm.post("/logout").status_code == 302
    assert_signed_out(replay(site, copy), need_id)
    assert_signed_out(other_device, need_id)  # sign-out ends every session of the account
    assert_signed_out(firm, need_id)
    signed_in_again = site.client("firm_a")  # and a new sign-in works
    assert_signed_in(signed_in_again, need_id)
    assert_signed_out(replay(site, copy), need_id)  # the old copy does not come back with it


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(site: Site) -> None:
    need_id = site.ids["need"][NEED]
    firm = site.client("firm_a")
    other_device = site.client("firm_a")
    copy = stolen(firm)
    # A thief with the cookie could have issued an API token; the change must revoke it too.
    token = firm.post(f"{API}/token", json={"username": "firm_a",
                                           "password": PASSWORD}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert site.app.test_client().get(f"{API}/needs/{need_id}", headers=bearer).status_code == 200
    changed = change_password(firm)
    assert changed.status_code == 302, changed.get_data(as_text=True)
    assert_signed_in(firm, need_id)  # this session is re-stamped
    assert_signed_out(other_device, need_id)
    assert_signed_out(replay(site, copy), need_id)  # a copy from before the change is dead
    assert site.app.test_client().get(f"{API}/needs/{need_id}", headers=bearer).status_code == 401
    anonymous = site.app.test_client()
    assert anonymous.post("/login", data={"username": "firm_a",
                                          "password": PASSWORD}).status_code == 401
    assert anonymous.post("/login", data={"username": "firm_a",
                                          "password": NEW_PASSWORD}).status_code == 302


def test_a_refused_password_change_names_the_field_and_changes_nothing(
        sqlite_site: Site) -> None:
    need_id = sqlite_site.ids["need"][NEED]
    firm = sqlite_site.client("firm_a")
    other_device = sqlite_site.client("firm_a")
    before = generation(sqlite_site, "firm_a")
    cases = [
        ({"current": "wrong-password-123"}, "当前密码不正确"),
        ({"new": "short1"}, "密码至少"),
        ({"new": "firm_a-and-9-more"}, "不能包含用户名"),
        ({"confirm": "Another-pass-2027"}, "两次输入的新密码不一致"),
        ({"new": PASSWORD}, "新密码不能与当前密码相同"),
    ]
    for fields, message in cases:
        response = change_password(firm, **fields)
        assert response.status_code == 400, fields
        assert message in response.get_data(as_text=True), fields
    assert generation(sqlite_site, "firm_a") == before
    assert_signed_in(other_device, need_id)
    still = sqlite_site.app.test_client().post("/login", data={"username": "firm_a",
                                                              "password": PASSWORD})
    assert still.status_code == 302  # the old password still signs in


def test_wrong_current_passwords_count_towards_the_sign_in_limit(sqlite_site: Site) -> None:
    """A stolen cookie must not buy unlimited guesses at the password behind it."""
    firm = sqlite_site.client("firm_a")
    for _ in range(5):
        assert change_password(firm, current="wrong-password-123").status_code == 400
    refused = change_password(firm)  # the right password, but the account is paused
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert generation(sqlite_site, "firm_a") == 0


def test_disabling_an_account_ends_its_sessions_for_good(site: Site) -> None:
    need_id = site.ids["need"][NEED]
    user_id = site.ids["user"]["firm_a"]
    firm = site.client("firm_a")
    copy = stolen(firm)
    token = firm.post(f"{API}/token", json={"username": "firm_a",
                                           "password": PASSWORD}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert firm.get(f"{API}/needs/{need_id}", headers=bearer).status_code == 200
    admin = site.client("admin")
    disabled = admin.post(f"/admin/users/{user_id}/active", data={"active": "0", "confirm": "1"})
    assert disabled.status_code == 302
    assert_signed_out(replay(site, copy), need_id)
    anonymous = site.app.test_client()
    assert anonymous.get(f"{API}/needs/{need_id}", headers=bearer).status_code == 401
    assert admin.post(f"/admin/users/{user_id}/active", data={"active": "1"}).status_code == 302
    # Enabled again: the sessions and the token from before the disable stay ended; a new
    # sign-in works.
    assert anonymous.get(f"{API}/needs/{need_id}", headers=bearer).status_code == 401
    assert_signed_out(replay(site, copy), need_id)
    assert_signed_out(firm, need_id)
    assert_signed_in(site.client("firm_a"), need_id)


def test_sign_out_in_one_account_leaves_the_others_signed_in(sqlite_site: Site) -> None:
    need_id = sqlite_site.ids["need"]["抗体药物稳定性改进"]  # firm_b's
    firm_b = sqlite_site.client("firm_b")
    sqlite_site.client("firm_a").post("/logout")
    assert_signed_in(firm_b, need_id)


def test_a_session_whose_generation_is_missing_is_signed_out(sqlite_site: Site) -> None:
    """A cookie signed before this change (no generation in it) is not trusted."""
    firm = sqlite_site.client("firm_a")
    with firm.session_transaction() as session:
        session.pop("generation")
    assert_signed_out(firm, sqlite_site.ids["need"][NEED])


def test_sign_in_never_keeps_a_session_planted_before_it(csrf_site: Site) -> None:
    """Session fixation: an attacker visits /login, plants that cookie (and so a CSRF token the
    attacker knows) in the victim's browser, and waits for the victim to sign in."""
    attacker = csrf_site.app.test_client()
    known_token = csrf_token(attacker.get("/login").get_data(as_text=True))
    planted = stolen(attacker)
    victim = replay(csrf_site, planted)
    signed_in = victim.post("/login", data={"username": "firm_a", "password": PASSWORD,
                                            "csrf_token": known_token})
    assert signed_in.status_code == 302
    # The token the attacker knows no longer passes for the victim's forms.
    forged = victim.post("/needs/new", data={"title": "伪造", "description": "伪造的需求",
                                             "csrf_token": known_token})
    assert forged.status_code == 400 and "CSRF" in forged.get_data(as_text=True)
    assert stolen(victim) != planted
    with victim.session_transaction() as session:
        first_id = session["sid"]
        assert len(first_id) >= 32
    assert replay(csrf_site, planted).get("/needs/mine").status_code == 302
    # Each sign-in gets a fresh id.
    def page_token(path: str) -> str:
        return csrf_token(victim.get(path).get_data(as_text=True))

    victim.post("/logout", data={"csrf_token": page_token("/account")})
    victim.post("/login", data={"username": "firm_a", "password": PASSWORD,
                                "csrf_token": page_token("/login")})
    with victim.session_transaction() as session:
        assert session["sid"] != first_id


def test_the_migration_gives_existing_accounts_generation_zero(db_url: str) -> None:
    """Upgrading from the previous head keeps every account, each at generation 0."""
    upgrade_to(alembic_config(db_url), "0004")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO users (username, display_name, password_hash, role, is_active,"
                " created_at, updated_at) VALUES ('old_admin', '旧管理员', 'x', 'admin', :yes,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"yes": True})
        upgrade(db_url)
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT username, session_generation FROM users")).all() == [("old_admin", 0)]
    finally:
        engine.dispose()
