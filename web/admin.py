"""Accounts administration. (Being written.)"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from web.auth import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users")
@role_required("admin")
def users() -> Any:
    return "TODO"
