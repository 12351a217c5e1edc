"""Accounts: password hashing and strength, API tokens, user creation, sessions ended.

Passwords are hashed with scrypt (Werkzeug's default scheme). API tokens are random; only
their SHA-256 is stored, so a database leak does not leak working tokens.

`users.session_generation` is what a signed-in session is checked against (web.auth stamps
it into the cookie at sign-in): raising it ends every session of the account at once, on
every worker, which a signed cookie alone cannot do. It is raised on sign-out, on a password
change and when the account is disabled.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from corpora.industries import G60_CITIES
from corpora.models import ROLES, Organisation, User
from corpora.schema import encoding_problem

DISPLAY_NAME_MAX = 100  # users.display_name is VARCHAR(100)
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 200  # the sign-in form accepts no more
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,50}$")
ROLE_LABELS = {"firm": "企业", "office": "技术转移办公室", "officer": "科委/G60 官员",
               "admin": "管理员"}
# A dummy hash to check against when the user does not exist, so that a wrong username
# takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password-0")


class AccountError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def password_problem(password: str, username: str = "") -> str | None:
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"密码至少 {PASSWORD_MIN_LENGTH} 个字符"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"密码不超过 {PASSWORD_MAX_LENGTH} 个字符"
    if not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        return "密码须同时包含字母和数字"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名"
    return None


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def authenticate(session: Session, username: str, password: str) -> User | None:
    username = username.strip()
    if not USERNAME_PATTERN.match(username):
        # No account has such a name; and a NUL would be refused by PostgreSQL itself.
        check_password_hash(_DUMMY_HASH, password)
        return None
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    return user


@dataclass(frozen=True)
class NewUser:
    username: str
    password: str
    role: str
    display_name: str = ""
    organisation: str | None = None  # name; required for firm and office


def create_user(session: Session, new: NewUser) -> User:
    """Validate and add a user (the caller commits). Raises AccountError naming the field."""
    if not USERNAME_PATTERN.match(new.username):
        raise AccountError("username", "用户名须为 3–50 个字母、数字或 _ . -")
    if session.scalar(select(User.id).where(User.username == new.username)) is not None:
        raise AccountError("username", f"用户名 {new.username} 已存在")
    if new.role not in ROLES:
        raise AccountError("role", f"角色须为 {'、'.join(ROLES)} 之一")
    if len(new.display_name) > DISPLAY_NAME_MAX:
        raise AccountError("display_name", f"显示名不超过 {DISPLAY_NAME_MAX} 个字符")
    if encoding_problem(new.display_name):
        raise AccountError("display_name", f"显示名{encoding_problem(new.display_name)}")
    problem = password_problem(new.password, new.username)
    if problem:
        raise AccountError("password", problem)
    organisation = None
    if new.role in ("firm", "office"):
        if not new.organisation:
            raise AccountError("organisation", "企业和技术转移办公室账号必须绑定单位")
        organisation = session.scalar(
            select(Organisation).where(Organisation.name == new.organisation.strip())
        )
        if organisation is None:
            raise AccountError("organisation", f"找不到单位「{new.organisation}」")
        wanted_kind = ("firm",) if new.role == "firm" else ("university", "institute")
        if organisation.kind not in wanted_kind:
            raise AccountError("organisation", f"「{organisation.name}」不是此角色可绑定的单位类型")
    user = User(
        username=new.username, display_name=new.display_name or new.username,
        password_hash=hash_password(new.password), role=new.role, organisation=organisation,
        is_active=True,
    )
    session.add(user)
    session.flush()
    return user


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def issue_api_token(user: User) -> str:
    """A new API token for `user` (replacing any old one); returned once, stored hashed."""
    token = "g60_" + secrets.token_urlsafe(32)
    user.api_token_hash = token_digest(token)
    return token


def user_for_token(session: Session, token: str) -> User | None:
    user = session.scalar(select(User).where(User.api_token_hash == token_digest(token)))
    return user if user is not None and user.is_active else None


def end_sessions(session: Session, user: User) -> int:
    """End every session of `user` (the caller commits); returns the new generation, which
    the caller stamps into a session it keeps. One UPDATE, so two at once both count."""
    session.execute(update(User).where(User.id == user.id)
                    .values(session_generation=User.session_generation + 1)
                    .execution_options(synchronize_session=False))
    session.refresh(user, ["session_generation"])
    return user.session_generation


def change_password(session: Session, user: User, current: str, new: str,
                    confirmation: str) -> int:
    """Check `current`, set `new` and end every session of `user` (the caller commits and
    re-stamps the session it keeps). Raises AccountError naming the field; returns the new
    session generation. The API token goes too: whoever held a stolen cookie could have
    issued themselves one, and a password change is how the owner takes the account back."""
    if not check_password_hash(user.password_hash, current):
        raise AccountError("current_password", "当前密码不正确")
    problem = password_problem(new, user.username)
    if problem:
        raise AccountError("new_password", problem)
    if new != confirmation:
        raise AccountError("confirm_password", "两次输入的新密码不一致")
    if check_password_hash(user.password_hash, new):
        raise AccountError("new_password", "新密码不能与当前密码相同")
    user.password_hash = hash_password(new)
    user.api_token_hash = None
    return end_sessions(session, user)


def set_active(session: Session, user: User, active: bool) -> None:
    """Enable or disable `user` (the caller commits). Disabling ends every session, so that
    enabling the account again does not bring the old cookies, or the old API token, back."""
    if user.is_active and not active:
        end_sessions(session, user)
        user.api_token_hash = None
    user.is_active = active


def reset_password(session: Session, user: User, new: str, confirmation: str) -> int:
    """An admin sets `user`'s password (the user forgot it, or it leaked): the same strength
    rules as change_password; every session of the account ends and its API token is revoked,
    since whoever knew the old password may hold either. The caller audits and commits."""
    problem = password_problem(new, user.username)
    if problem:
        raise AccountError("new_password", problem)
    if new != confirmation:
        raise AccountError("confirm_password", "两次输入的新密码不一致")
    user.password_hash = hash_password(new)
    user.api_token_hash = None
    return end_sessions(session, user)


ORGANISATION_NAME_MAX = 200  # organisations.name is VARCHAR(200)
TIER_MAX = 50  # organisations.tier is VARCHAR(50)
# What an admin may create; 院所 (institute) accounts bind like universities.
NEW_ORGANISATION_KINDS = {"firm": "企业", "university": "高校", "institute": "科研院所"}


@dataclass(frozen=True)
class NewOrganisation:
    name: str
    kind: str
    city: str = ""
    tier: str = ""


def create_organisation(session: Session, new: NewOrganisation) -> Organisation:
    """Validate and add an organisation (the caller audits and commits). Names are unique:
    accounts and imports find an organisation by its exact name."""
    name = new.name.strip()
    if not name:
        raise AccountError("name", "单位名称不能为空")
    if len(name) > ORGANISATION_NAME_MAX:
        raise AccountError("name", f"单位名称不超过 {ORGANISATION_NAME_MAX} 个字符")
    if encoding_problem(name):
        raise AccountError("name", f"单位名称{encoding_problem(name)}")
    if session.scalar(select(Organisation.id).where(Organisation.name == name)) is not None:
        raise AccountError("name", f"单位「{name}」已存在")
    if new.kind not in NEW_ORGANISATION_KINDS:
        raise AccountError("kind", f"类型须为 {'、'.join(NEW_ORGANISATION_KINDS.values())} 之一")
    if new.city and new.city not in G60_CITIES:
        raise AccountError("city", f"城市须为 G60 九城之一：{'、'.join(G60_CITIES)}")
    tier = new.tier.strip()
    if len(tier) > TIER_MAX:
        raise AccountError("tier", f"等级不超过 {TIER_MAX} 个字符")
    if encoding_problem(tier):
        raise AccountError("tier", f"等级{encoding_problem(tier)}")
    organisation = Organisation(name=name, kind=new.kind, city=new.city or None,
                                tier=tier or None, is_sample=False)
    session.add(organisation)
    session.flush()
    return organisation
