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
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The data the demo, the tests and `evaluate` read, shipped in the repository.
DATASETS_DIR = REPO_ROOT / "datasets"
BACKENDS = ("torch", "bf16", "onnx", "openvino")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
SMTP_TLS_MODES = ("none", "starttls", "ssl")
INDEX_BACKENDS = ("faiss", "milvus")
MILVUS_INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX")
MILVUS_LEXICAL = ("milvus", "process")
# The port each TLS mode usually listens on, when SMTP_PORT is not given.
SMTP_DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


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
    # E-mail notifications (service.email_queue): off while `smtp_host` is empty.
    smtp_host: str = ""
    smtp_port: int | None = None  # None: the usual port of `smtp_tls`
    smtp_tls: str = "starttls"
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_sender: str = ""
    # The site's address as users reach it, for the links in e-mails ("" : no links).
    base_url: str = ""
    # The daily digest goes out at the first `send-notifications` run after this hour,
    # Beijing time.
    email_digest_hour: int = 8
    email_max_attempts: int = 5
    # Where the vector indexes live: "faiss" (in each process, saved under `home`) or
    # "milvus" (collections on the server `milvus_uri` names, shared by every worker).
    index_backend: str = "faiss"
    # http://host:19530 (a Milvus standalone or cluster), or a file path for Milvus Lite;
    # "": a Milvus Lite file under `home` (one process only).
    milvus_uri: str = field(default="", repr=False)
    milvus_collection_prefix: str = "g60"
    # FLAT searches exactly (as FAISS does below its IVF threshold); HNSW for millions.
    milvus_index_type: str = "FLAT"
    # Where the BM25 side is searched with Milvus: "milvus" (its full-text search, one index
    # for every worker) or "process" (each worker's own, as with FAISS).
    milvus_lexical: str = "milvus"

    def __post_init__(self) -> None:
        # Checked here, not per variable: the sender matters only once a server is named.
        if self.smtp_host and not self.smtp_sender:
            raise SettingsError("设置了 SMTP_HOST 时须同时设置 SMTP_SENDER（发件人地址）")

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or SMTP_DEFAULT_PORTS[self.smtp_tls]

    @property
    def milvus_uri_or_default(self) -> str:
        return self.milvus_uri or str(self.home / "milvus" / "indexes.db")

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


def _port(name: str, value: object) -> int | None:
    port = _count(name, value)
    if port is not None and not 1 <= port <= 65535:
        raise SettingsError(f"环境变量 {name} 应为 1 到 65535 之间的端口号，而不是 {port}")
    return port


def _tls(name: str, value: object) -> str | None:
    text = _text(name, value).lower()
    if not text:
        return None
    if text not in SMTP_TLS_MODES:
        raise SettingsError(f"环境变量 {name} 应为 {' / '.join(SMTP_TLS_MODES)} 之一，"
                            f"而不是 {text!r}")
    return text


def _address(name: str, value: object) -> str | None:
    text = _text(name, value)
    if not text:
        return None
    local, _, domain = text.rpartition("@")
    if not local or "." not in domain or any(c.isspace() for c in text):
        raise SettingsError(f"环境变量 {name} 应为电子邮件地址，而不是 {text!r}")
    return text


def _url(name: str, value: object) -> str | None:
    text = _text(name, value).rstrip("/")
    if not text:
        return None
    if not text.startswith(("http://", "https://")) or any(c.isspace() for c in text):
        raise SettingsError(f"环境变量 {name} 应为以 http:// 或 https:// 开头的网址，"
                            f"而不是 {text!r}")
    return text


def _hour(name: str, value: object) -> int | None:
    hour = _count(name, value)
    if hour is not None and hour > 23:
        raise SettingsError(f"环境变量 {name} 应为 0 到 23 之间的小时数，而不是 {hour}")
    return hour


def _positive(name: str, value: object) -> int | None:
    count = _count(name, value)
    if count == 0:
        raise SettingsError(f"环境变量 {name} 应为正整数，而不是 0")
    return count


def _choice(choices: tuple[str, ...], *, upper: bool = False) -> Any:
    def parse(name: str, value: object) -> str | None:
        text = _text(name, value)
        text = text.upper() if upper else text.lower()
        if not text:
            return None
        if text not in choices:
            raise SettingsError(f"环境变量 {name} 应为 {' / '.join(choices)} 之一，"
                                f"而不是 {text!r}")
        return text
    return parse


def _collection_prefix(name: str, value: object) -> str | None:
    text = _text(name, value)
    if text and not (text[0].isascii() and text[0].isalpha()
                     and all(c.isascii() and (c.isalnum() or c == "_") for c in text)):
        raise SettingsError(f"环境变量 {name} 只能由字母、数字和下划线组成（字母开头），"
                            f"而不是 {text!r}")
    return text or None


def _plain(name: str, value: object) -> str | None:
    return _text(name, value) or None


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
    "SMTP_HOST": ("smtp_host", _plain),
    "SMTP_PORT": ("smtp_port", _port),
    "SMTP_TLS": ("smtp_tls", _tls),
    "SMTP_USER": ("smtp_user", _plain),
    "SMTP_PASSWORD": ("smtp_password", lambda name, value: str(value) if value else None),
    "SMTP_SENDER": ("smtp_sender", _address),
    "MATCHER_BASE_URL": ("base_url", _url),
    "EMAIL_DIGEST_HOUR": ("email_digest_hour", _hour),
    "EMAIL_MAX_ATTEMPTS": ("email_max_attempts", _positive),
    "INDEX_BACKEND": ("index_backend", _choice(INDEX_BACKENDS)),
    "MILVUS_URI": ("milvus_uri", _plain),
    "MILVUS_COLLECTION_PREFIX": ("milvus_collection_prefix", _collection_prefix),
    "MILVUS_INDEX_TYPE": ("milvus_index_type", _choice(MILVUS_INDEX_TYPES, upper=True)),
    "MILVUS_LEXICAL": ("milvus_lexical", _choice(MILVUS_LEXICAL)),
}
VARIABLES = tuple(_VARIABLES)
