"""The 邮件通知 page over HTTP: the signed-in user sets an address and a mode; bad input is a
400 naming the field; the form needs its CSRF token."""

from __future__ import annotations

from pathlib import Path

from aiosmtpd.controller import Controller

from corpora.connections import Notification
from corpora.models import User
from tests.support.web import Site, csrf_token, make_site
from web.database import sessions

PAGE = "/account/notifications"


def user_row(site: Site, username: str) -> User:
    with site.app.app_context(), sessions()() as db:
        user = db.get(User, site.ids["user"][username])
        assert user is not None
        return user


def test_set_address_and_mode(sqlite_site: Site) -> None:
    client = sqlite_site.client("firm_a")
    page = client.get(PAGE)
    assert page.status_code == 200 and "每日汇总一封" in page.get_data(as_text=True)
    assert user_row(sqlite_site, "firm_a").email_mode == "immediate"  # the default
    saved = client.post(PAGE, data={"email": " zhang@firm.example ", "email_mode": "daily"})
    assert saved.status_code == 302
    user = user_row(sqlite_site, "firm_a")
    assert (user.email, user.email_mode) == ("zhang@firm.example", "daily")
    assert "zhang@firm.example" in client.get(PAGE).get_data(as_text=True)
    # Blank address with no mail: allowed.
    assert client.post(PAGE, data={"email": "", "email_mode": "none"}).status_code == 302
    assert user_row(sqlite_site, "firm_a").email is None
    assert user_row(sqlite_site, "firm_b").email is None  # only one's own


def test_bad_input_names_the_field(sqlite_site: Site) -> None:
    client = sqlite_site.client("office_u1")
    for form, field in (({"email": "not-an-address", "email_mode": "immediate"}, "email"),
                        ({"email": "张三@大学.cn", "email_mode": "immediate"}, "email"),
                        ({"email": "a@b.cn", "email_mode": "hourly"}, "email_mode"),
                        ({"email": "", "email_mode": "daily"}, "email"),
                        ({"email": "a" * 250 + "@b.cn", "email_mode": "none"}, "email")):
        response = client.post(PAGE, data=form)
        assert response.status_code == 400, form
        assert f'data-field="{field}"' in response.get_data(as_text=True)
    assert user_row(sqlite_site, "office_u1").email is None


def test_signed_out_is_sent_to_sign_in(sqlite_site: Site) -> None:
    response = sqlite_site.client().get(PAGE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_form_needs_its_csrf_token(csrf_site: Site) -> None:
    client = csrf_site.app.test_client()
    login = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "firm_a", "password": "Passw0rd-test",
                                "csrf_token": csrf_token(login)})
    form = {"email": "zhang@firm.example", "email_mode": "daily"}
    assert client.post(PAGE, data=form).status_code == 400
    assert user_row(csrf_site, "firm_a").email is None
    token = csrf_token(client.get(PAGE).get_data(as_text=True))
    assert client.post(PAGE, data=form | {"csrf_token": token}).status_code == 302
    assert user_row(csrf_site, "firm_a").email == "zhang@firm.example"


def test_the_cron_command_mails_the_inbox(tmp_path: Path) -> None:
    from tests.service.test_email_notifications import Mailbox, free_port

    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    site = make_site(f"sqlite:///{tmp_path / 'cron.sqlite'}", tmp_path / "home",
                     WTF_CSRF_ENABLED=False, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                     SMTP_TLS="none", SMTP_SENDER="noreply@g60.example")
    try:
        client = site.client("firm_a")
        client.post(PAGE, data={"email": "zhang@firm.example", "email_mode": "immediate"})
        with site.app.app_context(), sessions()() as db:
            db.add(Notification(user_id=site.ids["user"]["firm_a"], kind="request",
                                text="示例理工大学向您发起了对接请求"))
            db.commit()
        runner = site.app.test_cli_runner()
        first = runner.invoke(args=["send-notifications"])
        assert first.exit_code == 0, first.output
        assert "首次运行" in first.output and "成功 1 封" in first.output
        [mail] = box.messages
        assert mail["To"] == "zhang@firm.example" and "对接请求" in mail["Subject"]
        again = runner.invoke(args=["send-notifications"])
        assert again.exit_code == 0 and "成功 0 封" in again.output and len(box.messages) == 1
    finally:
        site.app.extensions["matcher.engine"].dispose()
        controller.stop()


def test_my_account_links_to_the_e_mail_settings(sqlite_site: Site) -> None:
    for username in ("firm_a", "office_u1", "officer"):
        page = sqlite_site.client(username).get("/account").get_data(as_text=True)
        assert 'href="/account/notifications"' in page, username
