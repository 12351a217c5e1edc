"""Sign-in rate limits, per account and per address, kept in the database.

The site runs as several worker processes (gunicorn), so a counter in memory would let an
attacker spread guesses over the workers and would forget everything at each restart. The
audit log already holds every failed sign-in (`login_failed`, written in the same
transaction as the answer), so it *is* the counter: a sign-in is refused, before the password
is even checked, when in the last `window`

* the account has had `per_account` failures since its last successful sign-in, or
* the address has had `per_address` failures, whichever accounts they were for.

A refusal is logged (`login_refused`) but does not count as a failure, so the limit ends
`window` after the last counted failure however long a client keeps knocking: an attacker
can slow a real user down, never lock them out for good. A success resets the account's
count (failures before `users.last_login_at` are ignored) but not the address's, so one
working account does not buy an address more guesses at the others.

Failures are matched on the normalised username ("account": stripped and made storable,
as `authenticate` sees it) so that " admin" and "admin" share a count, whether or not the
account exists: a refusal says nothing about which usernames are real.

Flask-free: the callers pass the session, the username, the address and the limits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from corpora.models import AuditEntry, User
from service.accounts import USERNAME_PATTERN
from service.audit import record
from settings import Settings

FAILED = "login_failed"
REFUSED = "login_refused"
USERNAME_KEPT = 50  # characters of a username kept in the log (the column holds 50)
UNKNOWN_ADDRESS = "unknown"


def now() -> datetime:
    """The clock of every rate-limit decision (tests move it instead of sleeping)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Limits:
    per_account: int = Settings.login_limit_per_account
    per_address: int = Settings.login_limit_per_address
    window: timedelta = Settings.login_limit_window

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """LOGIN_LIMIT_PER_ACCOUNT, LOGIN_LIMIT_PER_ADDRESS, LOGIN_LIMIT_WINDOW, as read once."""
        return cls(settings.login_limit_per_account, settings.login_limit_per_address,
                   settings.login_limit_window)


@dataclass(frozen=True)
class Refusal:
    scope: str  # "account" or "address"
    retry_after: int  # seconds until the count drops below the limit

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        if self.scope == "account":
            return f"该账号登录失败次数过多，已暂停登录，请在 {minutes} 分钟后再试"
        return f"此网络地址登录失败次数过多，请在 {minutes} 分钟后再试"


def account_key(username: str) -> str:
    """The username as `authenticate` compares it, made storable: no NUL (PostgreSQL refuses
    it in text) and no lone surrogate (not UTF-8)."""
    key = username.strip()[:USERNAME_KEPT].replace("\x00", "")
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _shown(username: str) -> str:
    return username[:USERNAME_KEPT].replace("\x00", "").encode(
        "utf-8", "backslashreplace").decode("utf-8")


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _fragment(name: str, value: str) -> str:
    """`"name": "value"` exactly as `service.audit.record` serialises it inside the detail."""
    return json.dumps({name: value}, ensure_ascii=False)[1:-1]


def _failures(db: Session, name: str, value: str, since: datetime) -> list[datetime]:
    """When this account or address failed since `since`, newest first.

    The index on (action, at) finds the window's failures; LIKE narrows them to the ones
    naming `value`, and the JSON is then compared exactly (LIKE ignores ASCII case on
    SQLite)."""
    rows = db.execute(
        select(AuditEntry.at, AuditEntry.detail)
        .where(AuditEntry.action == FAILED, AuditEntry.at > since,
               AuditEntry.detail.contains(_fragment(name, value), autoescape=True))
        .order_by(AuditEntry.at.desc())
    )
    times = []
    for at, detail in rows:
        try:
            if json.loads(detail or "{}").get(name) == value:
                times.append(_aware(at))
        except (ValueError, AttributeError):
            continue
    return times


def _refusal(scope: str, times: list[datetime], limit: int, window: timedelta,
             moment: datetime) -> Refusal | None:
    if len(times) < limit:
        return None
    # Newest first: once the limit-th newest failure leaves the window, the count is below.
    free_at = times[limit - 1] + window
    return Refusal(scope, max(1, math.ceil((free_at - moment).total_seconds())))


def check(db: Session, username: str, address: str | None,
          limits: Limits | None = None) -> Refusal | None:
    """None if this sign-in may go ahead, else why not and for how long (the longer of the
    two when both limits are reached)."""
    limits = limits or Limits()
    moment = now()
    start = moment - limits.window
    key = account_key(username)
    since = start
    if USERNAME_PATTERN.match(key):
        last_login = db.scalar(select(User.last_login_at).where(User.username == key))
        if last_login is not None:
            since = max(start, _aware(last_login))
    refusals = [
        _refusal("account", _failures(db, "account", key, since), limits.per_account,
                 limits.window, moment),
        _refusal("address", _failures(db, "address", address or UNKNOWN_ADDRESS, start),
                 limits.per_address, limits.window, moment),
    ]
    found = [r for r in refusals if r is not None]
    return max(found, key=lambda r: r.retry_after) if found else None


def _detail(username: str, address: str | None, via: str | None) -> dict[str, str]:
    detail = {"username": _shown(username), "account": account_key(username),
              "address": address or UNKNOWN_ADDRESS}
    if via:
        detail["via"] = via
    return detail


def note_failure(db: Session, username: str, address: str | None,
                 via: str | None = None) -> None:
    """Log a wrong username or password (the caller commits, even though it answers 401)."""
    entry = record(db, None, FAILED, "user", None, _detail(username, address, via))
    entry.at = now()


def note_refusal(db: Session, username: str, address: str | None, refusal: Refusal,
                 via: str | None = None) -> None:
    """Log a sign-in refused by a limit; it does not count towards any limit."""
    detail = _detail(username, address, via) | {"limit": refusal.scope}
    entry = record(db, None, REFUSED, "user", None, detail)
    entry.at = now()


def note_success(user: User) -> None:
    """A good password: the account's failures so far no longer count."""
    user.last_login_at = now()
