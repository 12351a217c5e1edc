"""Accounts administration: list, create, enable and disable users (admins only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from corpora.models import Organisation, User
from service.accounts import AccountError, NewUser, create_user
from service.accounts import set_active as set_account_active
from service.audit import record
from web.auth import role_required
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
    accounts = list(db.scalars(select(User).options(selectinload(User.organisation))
                               .order_by(User.role, User.username)))
    organisations = list(db.scalars(select(Organisation).order_by(Organisation.kind,
                                                                   Organisation.name)))
    return render_template("admin/users.html", accounts=accounts, organisations=organisations,
                           errors=errors, values=values), 400 if errors else 200


@bp.route("/users/<id:user_id>/active", methods=["POST"])
@role_required("admin")
def set_active(user_id: int) -> Any:
    db = get_db()
    user = db.get(User, user_id)
    if user is None:
        abort(404, "用户不存在")
    if user.id == current_user.id:
        abort(400, "不能停用自己的账号")
    set_account_active(db, user, request.form.get("active") == "1")  # disabling ends sessions
    record(db, db.get(User, current_user.id), "enable" if user.is_active else "disable", "user",
           user.id, {"username": user.username})
    db.commit()
    flash(f"{user.username} 已{'启用' if user.is_active else '停用'}")
    return redirect(url_for("admin.users"))
