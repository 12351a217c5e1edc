"""Sign-in, sign-out, roles, the account page (API token) and the account CLI commands.

Sign-in is rate-limited per account and per address (`service.signin_limits`, counted in the audit
log so that every worker process sees the same counts). A session ends
PERMANENT_SESSION_LIFETIME after sign-in (8 h) however busy it is, and earlier after
SESSION_IDLE_TIMEOUT (2 h) without a request: a cookie left on a shared office computer
stops working on its own. Both are checked here, on the server, from times kept in the signed
session cookie: the browser's own cookie expiry alone would be refreshed by every request.
"""

from __future__ import annotations

import functools
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
    ROLE_LABELS,
    AccountError,
    NewUser,
    authenticate,
    create_user,
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

# Session keys: when this sign-in happened and when its last request came (epoch seconds).
SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"


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


@login_manager.user_loader
def _load_user(user_id: str) -> SiteUser | None:
    if (parsed_id := as_id(user_id)) is None:
        return None
    user = get_db().get(User, parsed_id)
    return SiteUser(user) if user is not None and user.is_active else None


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


def _start_session() -> None:
    """Make the session permanent (so PERMANENT_SESSION_LIFETIME applies to the cookie too)
    and stamp it for `_expire_session`."""
    session.permanent = True
    stamp = now().timestamp()
    session[SIGNED_IN_AT] = stamp
    session[SEEN_AT] = stamp


def _expire_session() -> None:
    """Sign out a session past its lifetime or idle for too long, before the view runs: the
    view then sees an anonymous user (sign-in page, or 401 from the API)."""
    if "_user_id" not in session:
        return
    moment = now().timestamp()
    signed_in, seen = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    idle = settings_of(current_app).session_idle_timeout.total_seconds()
    stamped = all(isinstance(v, int | float) and not isinstance(v, bool)
                  for v in (signed_in, seen))
    if not stamped or moment - signed_in > lifetime or moment - seen > idle:
        logout_user()
        session.pop(SIGNED_IN_AT, None)
        session.pop(SEEN_AT, None)
        if not request.path.startswith("/api/"):
            flash("登录已过期，请重新登录")
        return
    if request.endpoint != "static":  # a stylesheet is not activity, nor worth a new cookie
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
            login_user(SiteUser(user))
            _start_session()
            flash(f"欢迎，{user.display_name}")
            return redirect(_safe_next(request.args.get("next")) or url_for("search.home"))
    status = 401 if error else 200
    return render_template("auth/login.html", error=error, username=username), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    logout_user()
    session.pop(SIGNED_IN_AT, None)
    session.pop(SEEN_AT, None)
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
    return render_template("auth/account.html", token=token)


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
    app.before_request(_expire_session)
    app.cli.add_command(create_admin_command)
    app.cli.add_command(create_user_command)

    @app.context_processor
    def _roles() -> dict[str, Any]:
        return {"role_labels": ROLE_LABELS}


