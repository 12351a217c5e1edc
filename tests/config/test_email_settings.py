"""The e-mail settings: off without a server, each bad value refused naming its variable."""

from __future__ import annotations

import pytest

from settings import Settings, SettingsError


def test_e_mail_is_off_unless_a_server_is_named() -> None:
    assert not Settings.from_env({}).email_enabled
    settings = Settings.from_env({"SMTP_HOST": "smtp.example.com", "SMTP_TLS": "SSL",
                                  "SMTP_SENDER": "noreply@g60.example",
                                  "MATCHER_BASE_URL": "https://g60.example/",
                                  "SMTP_PASSWORD": "pw-Zq81"})
    assert settings.email_enabled and settings.smtp_tls == "ssl"
    assert settings.smtp_port_or_default == 465 and settings.base_url == "https://g60.example"
    assert "pw-Zq81" not in repr(settings) and settings.smtp_password == "pw-Zq81"
    assert Settings.from_env({"SMTP_HOST": "h", "SMTP_SENDER": "a@b.cn",
                              "SMTP_PORT": "2525"}).smtp_port_or_default == 2525


@pytest.mark.parametrize(("name", "value"), [
    ("SMTP_PORT", "smtp"), ("SMTP_PORT", "0"), ("SMTP_PORT", "70000"), ("SMTP_PORT", "-25"),
    ("SMTP_TLS", "tls"), ("SMTP_TLS", "yes"), ("SMTP_SENDER", "noreply"),
    ("MATCHER_BASE_URL", "g60.example"), ("EMAIL_DIGEST_HOUR", "24"),
    ("EMAIL_MAX_ATTEMPTS", "0"),
])
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_a_server_needs_a_sender() -> None:
    with pytest.raises(SettingsError, match="SMTP_SENDER"):
        Settings.from_env({"SMTP_HOST": "smtp.example.com"})
