"""The site's Flask config, made from the platform's `Settings`.

`create_app(test_config)` builds `Settings.from_env()` once, applies the test config over it
(the same names as the environment: `MATCHER_HOME`, `DATABASE_URL`, `MATCHER_MODEL`, ...),
keeps the result as `app.extensions["settings"]` for the layers below, and copies the values
the site's own code and Flask read into `app.config`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from settings import VARIABLES, Settings


def _secret_key(settings: Settings) -> str:
    """MATCHER_SECRET_KEY, else a random key kept under the home (mode 0600) so that
    sessions survive restarts and every worker on this machine signs cookies alike."""
    if settings.secret_key:
        return settings.secret_key
    path: Path = settings.secret_key_file
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def settings_for(overrides: Mapping[str, Any] | None = None) -> Settings:
    return Settings.from_env().with_overrides(overrides or {})


def flask_config(settings: Settings, overrides: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    config: dict[str, Any] = {
        "MATCHER_HOME": settings.home,
        "DATABASE_URL": settings.database_url,
        "MATCHER_MODEL": settings.model,
        "MAX_CONTENT_LENGTH": settings.max_upload_bytes,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "COVERAGE_TOP_K": settings.coverage_top_k,
        "COVERAGE_MAX_AGE_SECONDS": settings.coverage_max_age_seconds,
        "SYNC_INDEX_ON_START": settings.sync_index_on_start,
        "INDEX_SAVE_SECONDS": settings.index_save_seconds,
        "INDEX_POLL_SECONDS": settings.index_poll_seconds,
    }
    # Flask's own keys in the test config (TESTING, WTF_CSRF_ENABLED, SECRET_KEY...) pass
    # through; the settings' own names were parsed into `settings` and are read from there.
    config.update({key: value for key, value in (overrides or {}).items()
                   if key not in config and key not in VARIABLES})
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _secret_key(settings)
    return config


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return flask_config(settings_for(overrides), overrides)
