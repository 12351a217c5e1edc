"""The platform's settings, read from the environment once and passed down.

Every entry point (the site's `create_app`, `python -m matcher`, `python -m corpora.importer`,
`python -m service`, the benchmarks) builds one `Settings` with `Settings.from_env()` and hands
its values to the code below it; no library reads `os.environ` itself. This package imports
nothing of ours, so every layer may read it.

`with_overrides` takes the same names as the environment (the site's test config uses them),
and a moved home moves everything that lives under it: the SQLite file, the model folder,
the indexes (`matcher.index_files` lays them out under the home), the embedding cache and the
session key (unless the database is given explicitly).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The data the demo, the tests and `evaluate` read, shipped in the repository.
DATASETS_DIR = REPO_ROOT / "datasets"
BACKENDS = ("torch", "bf16", "onnx", "openvino")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


class SettingsError(ValueError):
    """A setting with a value that cannot be used; the message names the variable."""


def _text(name: str, value: object) -> str:
    return str(value).strip() if value is not None else ""


def _path(name: str, value: object) -> Path | None:
    text = _text(name, value)
    return Path(text).expanduser() if text else None


def _seconds(name: str, value: object) -> float | None:
    """A duration: a number of seconds (or a timedelta), zero or more."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    text = _text(name, value)
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise SettingsError(f"环境变量 {name} 应为非负秒数，而不是 {text!r}")
    return seconds


def _count(name: str, value: object) -> int | None:
    text = _text(name, value)
    if not text:
        return None
    if not text.isdigit():
        raise SettingsError(f"环境变量 {name} 应为非负整数，而不是 {text!r}")
    return int(text)


def _flag(name: str, value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(name, value).lower()
    if not text:
        return None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"环境变量 {name} 应为 1 或 0，而不是 {text!r}")


def _backend(name: str, value: object) -> str | None:
    text = _text(name, value).lower()
    if not text:
        return None
    if text not in BACKENDS:
        raise SettingsError(f"{name} must be one of {BACKENDS}, not {text!r}")
    return text


@dataclass(frozen=True)
class Settings:
    home: Path = REPO_ROOT / "var"
    datasets: Path = DATASETS_DIR
    # Empty: the SQLite file under `home` (see `database_url`).
    database: str = ""
    # "default" (multilingual-e5-small), "fake" (tests) or a sentence-transformers folder.
    model: str = "default"
    # None: the runtime the CPU suits best (embeddings.loader).
    backend: str | None = None
    # None: a random key kept in `home/secret_key`.
    secret_key: str | None = None
    secure_cookies: bool = False
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    # Seconds between the first unsaved edit and the background save of the index files.
    index_save_seconds: float = 30.0
    # How often a worker reads the change log for other processes' edits.
    index_poll_seconds: float = 0.2
    # After an edit the coverage is recomputed, but at most this often.
    coverage_max_age_seconds: float = 30.0
    # Matches counted as "answers well": a result in an open need's top K.
    coverage_top_k: int = 10
    sync_index_on_start: bool = True
    login_limit_per_account: int = 5
    login_limit_per_address: int = 20
    login_limit_window: timedelta = timedelta(minutes=15)
    session_idle_timeout: timedelta = timedelta(hours=2)

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.home / 'matcher.sqlite'}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def embedding_cache(self) -> Path:
        return self.home / "cache" / "embeddings.sqlite"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret_key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls().with_overrides(os.environ if environ is None else environ)

    def with_overrides(self, values: Mapping[str, Any]) -> Settings:
        """These settings with the variables named in `values` replaced (unknown names are
        ignored: a Flask config mapping carries Flask's own keys too)."""
        changes: dict[str, Any] = {}
        for name, (field_name, parse) in _VARIABLES.items():
            if name in values:
                parsed = parse(name, values[name])
                if parsed is not None:
                    changes[field_name] = parsed
        return dataclasses.replace(self, **changes)


def _model(name: str, value: object) -> str | None:
    return _text(name, value) or None


def _timedelta(name: str, value: object) -> timedelta | None:
    seconds = _seconds(name, value)
    return None if seconds is None else timedelta(seconds=seconds)


# Variable (environment, or the site's config key) → (field, parser).
_VARIABLES: dict[str, tuple[str, Any]] = {
    "MATCHER_HOME": ("home", _path),
    "MATCHER_SHARED": ("datasets", _path),
    "DATABASE_URL": ("database", lambda name, value: _text(name, value) or None),
    "MATCHER_MODEL": ("model", _model),
    "MATCHER_BACKEND": ("backend", _backend),
    "MATCHER_SECRET_KEY": ("secret_key", lambda name, value: _text(name, value) or None),
    "MATCHER_SECURE_COOKIES": ("secure_cookies", _flag),
    "INDEX_SAVE_SECONDS": ("index_save_seconds", _seconds),
    "INDEX_POLL_SECONDS": ("index_poll_seconds", _seconds),
    "COVERAGE_MAX_AGE_SECONDS": ("coverage_max_age_seconds", _seconds),
    "COVERAGE_TOP_K": ("coverage_top_k", _count),
    "SYNC_INDEX_ON_START": ("sync_index_on_start", _flag),
    "LOGIN_LIMIT_PER_ACCOUNT": ("login_limit_per_account", _count),
    "LOGIN_LIMIT_PER_ADDRESS": ("login_limit_per_address", _count),
    "LOGIN_LIMIT_WINDOW": ("login_limit_window", _timedelta),
    "SESSION_IDLE_TIMEOUT": ("session_idle_timeout", _timedelta),
}
VARIABLES = tuple(_VARIABLES)
