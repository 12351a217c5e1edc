"""Who is asking the API, and the endpoint that issues API tokens.

Authentication is a bearer token (`Authorization: Bearer …`, no CSRF: a token is no ambient
authority) or the browser's session cookie (unsafe methods then need the CSRF token, as forms
do).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask_login import current_user

from corpora.models import User
from corpora.schema import encoding_problem
from service import signin_limits
from service.accounts import authenticate, issue_api_token, user_for_token
from service.audit import record
from web.api import answers, bp
from web.api.contract import checked_body, operation
from web.api.input import fail
from web.api.json import organisation_json
from web.api.params import TokenBody
from web.api.replies import commit, ok
from web.auth import SiteUser
from web.database import get_db
from web.errors import json_error
from web.security import csrf
from web.settings import settings_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The token endpoint, and the API's description and docs page (nothing in them is private).
PUBLIC_ENDPOINTS = frozenset({"api.issue_token", "api.openapi", "api.docs"})
TOKEN_MAX = 200
USERNAME_MAX = 50
PASSWORD_MAX = 1024


@bp.before_request
def _authenticate() -> None:
    """Bearer token if the header is there (a wrong one is 401, never a fall-back to the
    cookie); else the session cookie, with the CSRF token required for writes."""
    if request.method == "OPTIONS" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            fail(401, "Authorization 请求头须为 “Bearer <令牌>”")
        user = user_for_token(get_db(), token) if len(token) <= TOKEN_MAX else None
        if user is None:
            fail(401, "API 令牌无效或已失效：请在“我的账户”页或通过 POST /api/v1/token 重新获取")
        g.api_user = SiteUser(user)
        return
    if not current_user.is_authenticated:
        fail(401, "请先登录，或在请求头中携带 Authorization: Bearer <令牌>")
    if request.method not in SAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # CSRFError: a JSON 400 through the app's error handler
    g.api_user = current_user._get_current_object()


def viewer() -> SiteUser:
    """The signed-in user as web.permissions expects it (role, organisation, authenticated)."""
    return g.api_user


def actor() -> User:
    """The same user as a database row, for service.records and the audit log."""
    return g.api_user.row


def usable_credential(value: str, limit: int) -> bool:
    """A value that can be compared at all: surrogates or NUL would make the query or the
    hash check raise, and such a value cannot be anyone's username or password anyway."""
    return 0 < len(value) <= limit and encoding_problem(value) is None


@operation("POST", "/token", tag="认证", summary="用户名和密码换 API 令牌",
           answer=answers.TokenOut, body=TokenBody, public=True, errors=(401, 409, 413, 429),
           description="不需要已登录。每个账号同时只有一个令牌：新令牌使旧令牌立即失效。"
           "与登录页共用失败次数限制，超过时 429（响应头 Retry-After 为多少秒后可再试）。")
def issue_token() -> Any:
    """A new API token for a username and password (the old token stops working)."""
    body = checked_body("请求字段有误")
    username, password = body["username"], body["password"]
    db = get_db()
    # The sign-in page's limits, counted together with its failures.
    address = request.remote_addr
    refusal = signin_limits.check(db, username, address,
                                  signin_limits.Limits.from_settings(settings_of(current_app)))
    db.commit()  # a fresh transaction for each write below (see web.auth.login)
    if refusal is not None:
        signin_limits.note_refusal(db, username, address, refusal, via="api")
        db.commit()
        response, status = json_error(429, refusal.message)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response, status
    user = None
    if usable_credential(username.strip(), USERNAME_MAX) and \
            usable_credential(password, PASSWORD_MAX):
        user = authenticate(db, username, password)
    db.commit()  # end the read transaction before writing (see web.auth.login)
    if user is None:
        signin_limits.note_failure(db, username, address, via="api")
        db.commit()
        fail(401, "用户名或密码错误")
    signin_limits.note_success(user)
    token = issue_api_token(user)
    record(db, user, "issue_token", "user", user.id, {"via": "api"})
    commit()
    return ok({"token": token, "user": {
        "id": user.id, "username": user.username, "role": user.role,
        "organisation": organisation_json(user.organisation)}})
