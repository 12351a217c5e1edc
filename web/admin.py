"""Accounts administration (admins only): list, create, enable and disable users, reset a
user's password, create organisations."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from corpora.industries import G60_CITIES
from corpora.models import Organisation, User
from service.accounts import (
    NEW_ORGANISATION_KINDS,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    AccountError,
    NewOrganisation,
    NewUser,
    create_organisation,
    create_user,
    reset_password,
)
from service.accounts import set_active as set_account_active
from service.audit import record
from web.auth import role_required
from web.confirm import confirm_page, confirmed
from web.database import get_db

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users", methods=["GET", "POST"])
@role_required("admin")
def users() -> Any:
    db = get_db()
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    if request.method == "POST":
        values = {name: request.form.get(name, "")[:200]
                  for name in ("username", "display_name", "role", "organisation")}
        try:
            user = create_user(db, NewUser(values["username"], request.form.get("password", ""),
                                           values["role"], values["display_name"],
                                           values["organisation"] or None))
            record(db, db.get(User, current_user.id), "create_user", "user", user.id,
                   {"username": user.username, "role": user.role})
            db.commit()
        except AccountError as error:
            db.rollback()
            errors[error.field] = error.message
        except IntegrityError:  # the same username created at the same moment elsewhere
            db.rollback()
            errors["username"] = f"用户名 {values['username']} 已存在"
        else:
            flash(f"已创建账号 {user.username}")
            return redirect(url_for("admin.users"))
    return _users_page(errors=errors, values=values)


def _users_page(errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                org_errors: dict[str, str] | None = None,
                org_values: dict[str, str] | None = None) -> Any:
    db = get_db()
    accounts = list(db.scalars(select(User).options(selectinload(User.organisation))
                               .order_by(User.role, User.username)))
    organisations = list(db.scalars(select(Organisation).order_by(Organisation.kind,
                                                                   Organisation.name)))
    return render_template(
        "admin/users.html", accounts=accounts, organisations=organisations,
        errors=errors or {}, values=values or {}, org_errors=org_errors or {},
        org_values=org_values or {}, org_kinds=NEW_ORGANISATION_KINDS, cities=G60_CITIES,
    ), 400 if errors or org_errors else 200


@bp.route("/organisations", methods=["POST"])
@role_required("admin")
def organisations() -> Any:
    """Create a firm, university or institute, so that accounts can be bound to it."""
    db = get_db()
    values = {name: request.form.get(name, "")[:300] for name in ("name", "kind", "city", "tier")}
    try:
        organisation = create_organisation(db, NewOrganisation(**values))
        record(db, db.get(User, current_user.id), "create_organisation", "organisation",
               organisation.id, {"name": organisation.name, "kind": organisation.kind})
        db.commit()
    except AccountError as error:
        db.rollback()
        return _users_page(org_errors={error.field: error.message}, org_values=values)
    except IntegrityError:  # the same name created at the same moment elsewhere
        db.rollback()
        return _users_page(org_errors={"name": f"单位「{values['name'].strip()}」已存在"},
                           org_values=values)
    flash(f"已创建单位 {organisation.name}")
    return redirect(url_for("admin.users"))


def _account(user_id: int) -> User:
    user = get_db().get(User, user_id)
    if user is None:
        abort(404, "用户不存在")
    return user


@bp.route("/users/<id:user_id>/password", methods=["GET", "POST"])
@role_required("admin")
def password(user_id: int) -> Any:
    """Set a new password for a user who cannot sign in: every session of the account ends
    and its API token is revoked. An admin's own password is changed on 我的账户 (it asks
    for the current one)."""
    db = get_db()
    user = _account(user_id)
    if user.id == current_user.id:
        abort(400, "请在“我的账户”中修改自己的密码")
    errors: dict[str, str] = {}
    if request.method == "POST":
        new = request.form.get("new_password", "")[:PASSWORD_MAX_LENGTH + 1]
        confirmation = request.form.get("confirm_password", "")[:PASSWORD_MAX_LENGTH + 1]
        try:
            reset_password(db, user, new, confirmation)
            record(db, db.get(User, current_user.id), "reset_password", "user", user.id,
                   {"username": user.username})
            db.commit()
        except AccountError as error:
            db.rollback()
            errors[error.field] = error.message
        else:
            flash(f"已重置 {user.username} 的密码；其所有登录会话和 API 令牌已失效")
            return redirect(url_for("admin.users"))
    return render_template("admin/password.html", account=user, errors=errors,
                           password_min=PASSWORD_MIN_LENGTH), 400 if errors else 200


@bp.route("/users/<id:user_id>/active", methods=["POST"])
@role_required("admin")
def set_active(user_id: int) -> Any:
    db = get_db()
    user = _account(user_id)
    if user.id == current_user.id:
        abort(400, "不能停用自己的账号")
    if request.form.get("active") != "1" and user.is_active and not confirmed():
        return confirm_page(
            "停用账号", f"停用账号 {user.username}（{user.display_name}）？其所有登录会话和 "
            "API 令牌立即失效，之后无法登录，直到再次启用。", {"active": "0"},
            url_for("admin.users"), button="确认停用")
    set_account_active(db, user, request.form.get("active") == "1")  # disabling ends sessions
    record(db, db.get(User, current_user.id), "enable" if user.is_active else "disable", "user",
           user.id, {"username": user.username})
    db.commit()
    flash(f"{user.username} 已{'启用' if user.is_active else '停用'}")
    return redirect(url_for("admin.users"))
