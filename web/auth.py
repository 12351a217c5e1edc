"""Sign-in, sign-out, roles, the account page (API token, password) and the account CLI commands.

Sign-in is rate-limited per account and per address (`service.signin_limits`, counted in the audit
log so that every worker process sees the same counts). A session ends
PERMANENT_SESSION_LIFETIME after sign-in (8 h) however busy it is, and earlier after
SESSION_IDLE_TIMEOUT (2 h) without a request: a cookie left on a shared office computer
stops working on its own. Both are checked here, on the server, from times kept in the signed
session cookie: the browser's own cookie expiry alone would be refreshed by every request.

A signed cookie cannot be recalled, so the session also carries the account's
`session_generation` from sign-in, and the user loader refuses a session whose number is not the
account's current one. Sign-out, a password change and disabling the account raise the number
(`service.accounts.end_sessions`): every copy of every cookie of that account is then refused,
on pages and on the API alike (web.api authenticates cookies through the same loader). Sign-in
starts from an empty session with a fresh random id, so nothing planted in the browser before
it (a session, a CSRF token an attacker knows) survives into the signed-in one.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.cli import with_appcontext
from flask_login import LoginManager, current_user, login_required, login_user, logout_user

from corpora.models import User, as_id
from service import signin_limits
from service.accounts import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    ROLE_LABELS,
    AccountError,
    NewUser,
    authenticate,
    change_password,
    create_user,
    end_sessions,
    issue_api_token,
)
from service.audit import record
from web.database import get_db, sessions
from web.settings import settings_of

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "请先登录。"
login_manager.session_protection = "strong"

F = TypeVar("F", bound=Callable[..., Any])

# Session keys: when this sign-in happened and when its last request came (epoch seconds),
# the account's session generation at sign-in, and this sign-in's random id.
SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"
GENERATION = "generation"
SESSION_ID = "sid"
PASSWORD_FIELDS = ("current_password", "new_password", "confirm_password")


def now() -> datetime:
    """The clock of session expiry (tests move it instead of sleeping)."""
    return datetime.now(UTC)


class SiteUser:
    """The Flask-Login wrapper around a `User` row loaded for this request."""

    def __init__(self, user: User) -> None:
        self.row = user
        self.id = user.id
        self.role = user.role
        self.organisation_id = user.organisation_id
        self.display_name = user.display_name
        self.username = user.username

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.row.is_active

    def get_id(self) -> str:
        return str(self.id)

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@login_manager.user_loader
def _load_user(user_id: str) -> SiteUser | None:
    """The session's account, if it is active and this session is of its current generation
    (a cookie from before a sign-out, password change or disable is not)."""
    if (parsed_id := as_id(user_id)) is None:
        return None
    user = get_db().get(User, parsed_id)
    if user is None or not user.is_active:
        return None
    stamp = session.get(GENERATION)
    if not _is_count(stamp) or stamp != user.session_generation:
        return None
    return SiteUser(user)


def role_required(*roles: str) -> Callable[[F], F]:
    """Signed in, and one of `roles` (admin passes every role check)."""
    def decorator(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles and current_user.role != "admin":
                abort(403)
            return view(*args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorator


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never redirect a user off the site after sign-in."""
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None  # a CR/LF would also break the Location header
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _start_session(user: User) -> None:
    """Sign `user` in on an empty session with a fresh id (whatever the cookie held before,
    the signed-in session is not it), permanent (so PERMANENT_SESSION_LIFETIME applies to the
    cookie too), stamped for `_check_session` and with the account's session generation."""
    session.clear()
    session[SESSION_ID] = secrets.token_urlsafe(32)
    login_user(SiteUser(user))
    session.permanent = True
    stamp = now().timestamp()
    session[SIGNED_IN_AT] = stamp
    session[SEEN_AT] = stamp
    session[GENERATION] = user.session_generation


def _end_session(message: str | None) -> None:
    """Sign this browser out and forget everything its session held."""
    logout_user()
    session.clear()
    if message and not request.path.startswith("/api/"):
        flash(message)


def _check_session() -> None:
    """Sign out, before the view runs, a session past its lifetime, idle for too long, or
    ended elsewhere (its account signed out, changed its password or was disabled): the view
    then sees an anonymous user (sign-in page, or 401 from the API)."""
    if "_user_id" not in session:
        return
    moment = now().timestamp()
    signed_in, seen = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    idle = settings_of(current_app).session_idle_timeout.total_seconds()
    stamped = all(isinstance(v, int | float) and not isinstance(v, bool)
                  for v in (signed_in, seen))
    if not stamped or moment - signed_in > lifetime or moment - seen > idle:
        _end_session("登录已过期，请重新登录")
        return
    if request.endpoint == "static":  # a stylesheet is not activity, nor worth a query
        return
    if not current_user.is_authenticated:  # the loader refused it
        _end_session("登录已失效（已在别处退出、修改了密码或账号已停用），请重新登录")
        return
    session[SEEN_AT] = moment


def _refused(username: str, refusal: signin_limits.Refusal) -> Any:
    response = current_app.make_response(
        (render_template("auth/login.html", error=refusal.message, username=username), 429))
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "")[:50]
        password = request.form.get("password", "")[:PASSWORD_MAX_LENGTH]
        db = get_db()
        address = request.remote_addr
        # Before the password is checked: a refused guess learns nothing.
        refusal = signin_limits.check(db, username, address,
                                  signin_limits.Limits.from_settings(settings_of(current_app)))
        db.commit()  # a fresh transaction for each write below (see after authenticate)
        if refusal is not None:
            signin_limits.note_refusal(db, username, address, refusal)
            db.commit()
            return _refused(username, refusal)
        user = authenticate(db, username, password)
        # End the read transaction before writing: on SQLite (WAL) a transaction that read
        # cannot start writing once another sign-in has committed ("database is locked" at
        # once, the busy timeout does not apply); a fresh one waits for the lock instead.
        db.commit()
        if user is None:
            error = "用户名或密码错误"
            signin_limits.note_failure(db, username, address)
            db.commit()
        else:
            signin_limits.note_success(user)  # sets last_login_at
            db.commit()
            _start_session(user)
            flash(f"欢迎，{user.display_name}")
            return redirect(_safe_next(request.args.get("next")) or url_for("search.home"))
    status = 401 if error else 200
    return render_template("auth/login.html", error=error, username=username), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign out this browser and every other session of the account: a copy of the cookie
    must not outlive the sign-out."""
    if current_user.is_authenticated:
        db = get_db()
        end_sessions(db, db.get(User, current_user.id))
        db.commit()
    _end_session(None)
    flash("已退出登录")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Any:
    token = None
    if request.method == "POST":
        db = get_db()
        user = db.get(User, current_user.id)
        token = issue_api_token(user)
        record(db, user, "issue_token", "user", user.id, {})
        db.commit()
    return _account_page(token=token)


def _account_page(token: str | None = None, errors: dict[str, str] | None = None,
                  status: int = 200) -> Any:
    return make_response((render_template(
        "auth/account.html", token=token, errors=errors or {},
        password_min=PASSWORD_MIN_LENGTH), status))


@bp.route("/account/password", methods=["POST"])
@login_required
def password() -> Any:
    """Change one's own password: every other session of the account ends, this one is
    re-stamped and stays. A wrong current password counts as a failed sign-in, so a stolen
    cookie buys no more guesses than the sign-in page gives."""
    current, new, confirmation = (request.form.get(name, "") for name in PASSWORD_FIELDS)
    db = get_db()
    user = db.get(User, current_user.id)
    address = request.remote_addr
    refusal = signin_limits.check(db, user.username, address,
                                  signin_limits.Limits.from_settings(settings_of(current_app)))
    db.commit()  # a fresh transaction for each write below (see login)
    if refusal is not None:
        signin_limits.note_refusal(db, user.username, address, refusal, via="password")
        db.commit()
        response = _account_page(errors={"current_password": refusal.message}, status=429)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    try:
        generation = change_password(db, user, current[:PASSWORD_MAX_LENGTH], new,
                                     confirmation)
    except AccountError as error:
        db.rollback()
        if error.field == "current_password":
            signin_limits.note_failure(db, user.username, address, via="password")
            db.commit()
        return _account_page(errors={error.field: error.message}, status=400)
    record(db, user, "change_password", "user", user.id, {})
    db.commit()
    session[GENERATION] = generation
    flash("密码已修改；此账号在其他设备上的登录已全部退出")
    return redirect(url_for("auth.account"))


def _create(username: str, password: str, role: str, name: str, organisation: str | None) -> None:
    with sessions()() as session:
        try:
            user = create_user(session, NewUser(username, password, role, name, organisation))
        except AccountError as error:
            raise click.BadParameter(error.message, param_hint=error.field) from None
        record(session, None, "create_user", "user", user.id, {"role": role, "via": "cli"})
        session.commit()
    click.echo(f"已创建 {ROLE_LABELS[role]} 账号 {username}")


@click.command("create-admin")
@with_appcontext
@click.option("--username", prompt="用户名")
@click.option("--password", prompt="密码", hide_input=True, confirmation_prompt=True)
@click.option("--name", default="管理员", help="显示名")
def create_admin_command(username: str, password: str, name: str) -> None:
    """Create an admin account (the first account of a new installation)."""
    _create(username, password, "admin", name, None)


@click.command("create-user")
@with_appcontext
@click.option("--username", prompt="用户名")
@click.option("--password", prompt="密码", hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(["firm", "office", "officer", "admin"]), required=True)
@click.option("--organisation", default=None, help="企业或高校/院所名称 (firm / office 必填)")
@click.option("--name", default="", help="显示名")
def create_user_command(username: str, password: str, role: str, organisation: str | None,
                        name: str) -> None:
    """Create an account of any role."""
    _create(username, password, role, name, organisation)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(_check_session)
    app.cli.add_command(create_admin_command)
    app.cli.add_command(create_user_command)

    @app.context_processor
    def _roles() -> dict[str, Any]:
        return {"role_labels": ROLE_LABELS}


