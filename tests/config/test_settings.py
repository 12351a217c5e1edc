"""Settings: read from the environment once, every value checked, a moved home moves all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from settings import DATASETS_DIR, REPO_ROOT, Settings, SettingsError


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.home == REPO_ROOT / "var"
    assert settings.datasets == DATASETS_DIR == REPO_ROOT / "datasets"
    assert settings.database_url == f"sqlite:///{REPO_ROOT / 'var' / 'matcher.sqlite'}"
    assert settings.model == "default" and settings.backend is None


def test_every_variable_is_read() -> None:
    settings = Settings.from_env({
        "MATCHER_HOME": "/srv/g60", "MATCHER_SHARED": "/data/shared",
        "DATABASE_URL": "postgresql+psycopg://db/g60", "MATCHER_MODEL": "fake",
        "MATCHER_BACKEND": "ONNX", "MATCHER_SECRET_KEY": "k", "MATCHER_SECURE_COOKIES": "1",
        "INDEX_SAVE_SECONDS": "5", "INDEX_POLL_SECONDS": "0", "COVERAGE_MAX_AGE_SECONDS": "7.5",
        "COVERAGE_TOP_K": "20", "SYNC_INDEX_ON_START": "0", "LOGIN_LIMIT_PER_ACCOUNT": "3",
        "LOGIN_LIMIT_PER_ADDRESS": "9", "LOGIN_LIMIT_WINDOW": "60", "SESSION_IDLE_TIMEOUT": "600",
    })
    assert settings.home == Path("/srv/g60") and settings.datasets == Path("/data/shared")
    assert settings.database_url == "postgresql+psycopg://db/g60"
    assert (settings.model, settings.backend, settings.secret_key) == ("fake", "onnx", "k")
    assert settings.secure_cookies and not settings.sync_index_on_start
    assert (settings.index_save_seconds, settings.index_poll_seconds,
            settings.coverage_max_age_seconds, settings.coverage_top_k) == (5.0, 0.0, 7.5, 20)
    assert (settings.login_limit_per_account, settings.login_limit_per_address) == (3, 9)
    assert settings.login_limit_window == timedelta(seconds=60)
    assert settings.session_idle_timeout == timedelta(minutes=10)


def test_a_moved_home_moves_everything_under_it(tmp_path: Path) -> None:
    settings = Settings().with_overrides({"MATCHER_HOME": tmp_path})
    assert settings.database_url == f"sqlite:///{tmp_path / 'matcher.sqlite'}"
    for path in (settings.models_dir, settings.embedding_cache, settings.secret_key_file):
        assert tmp_path in path.parents
    # An explicit database stays where it was put.
    elsewhere = settings.with_overrides({"DATABASE_URL": "sqlite:////elsewhere.sqlite"})
    assert elsewhere.database_url == "sqlite:////elsewhere.sqlite"


@pytest.mark.parametrize(("name", "value"), [
    ("INDEX_SAVE_SECONDS", "soon"), ("INDEX_POLL_SECONDS", "-1"),
    ("COVERAGE_MAX_AGE_SECONDS", "inf"), ("SESSION_IDLE_TIMEOUT", "nan"),
    ("COVERAGE_TOP_K", "ten"), ("LOGIN_LIMIT_PER_ACCOUNT", "-3"),
    ("MATCHER_BACKEND", "tensorflow"), ("MATCHER_SECURE_COOKIES", "maybe"),
])
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_blank_values_keep_the_defaults() -> None:
    assert Settings.from_env({"MATCHER_HOME": "  ", "INDEX_SAVE_SECONDS": "",
                              "MATCHER_MODEL": ""}) == Settings()


def test_the_site_moves_database_indexes_and_key_with_its_home(tmp_path: Path) -> None:
    from web import create_app
    from web.settings import settings_of

    app = create_app({"MATCHER_HOME": tmp_path, "MATCHER_MODEL": "fake", "TESTING": True})
    settings = settings_of(app)
    assert settings.home == tmp_path and settings.model == "fake"
    assert (tmp_path / "matcher.sqlite").exists()  # migrated at start-up, under the new home
    assert (tmp_path / "secret_key").exists()
    with app.app_context():
        from web.matching import service

        assert service().store.home == tmp_path
    app.extensions["matcher.engine"].dispose()
