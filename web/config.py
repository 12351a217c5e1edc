"""Settings: defaults for one laptop, overridden by environment variables, then by tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from corpora.db import default_url
from embeddings.paths import matcher_home

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def _secret_key(home: Path) -> str:
    """MATCHER_SECRET_KEY, else a random key kept under MATCHER_HOME (mode 0600) so that
    sessions survive restarts and every worker on this machine signs cookies alike."""
    configured = os.environ.get("MATCHER_SECRET_KEY")
    if configured:
        return configured
    path = home / "secret_key"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def _seconds(name: str, default: float) -> float:
    """A duration from the environment: a number of seconds, zero or more."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"环境变量 {name} 应为非负秒数，而不是 {raw!r}")
    return value


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    overrides = dict(overrides or {})
    home = Path(overrides.get("MATCHER_HOME") or matcher_home())
    config: dict[str, Any] = {
        "MATCHER_HOME": home,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_url(),
        # None: the default model (embeddings.loader); "fake" for tests; or a model path.
        "MATCHER_MODEL": os.environ.get("MATCHER_MODEL") or None,
        "MAX_CONTENT_LENGTH": MAX_UPLOAD_BYTES,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("MATCHER_SECURE_COOKIES") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        # Matches counted as "answers well": a result in an open need's top K.
        "COVERAGE_TOP_K": 10,
        # After an edit the coverage is recomputed, but at most this often (seconds).
        "COVERAGE_MAX_AGE_SECONDS": _seconds("COVERAGE_MAX_AGE_SECONDS", 30.0),
        "SYNC_INDEX_ON_START": True,
        # Seconds between the first unsaved edit and the background save of the index files.
        "INDEX_SAVE_SECONDS": _seconds("INDEX_SAVE_SECONDS", 30.0),
    }
    config.update(overrides)
    config["MATCHER_HOME"] = Path(config["MATCHER_HOME"])
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _secret_key(config["MATCHER_HOME"])
    return config
