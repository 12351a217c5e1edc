"""Auction shortlists (成果拍卖会): officers curate lots. (Being written.)"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from web.auth import role_required

bp = Blueprint("shortlists", __name__, url_prefix="/shortlists")


@bp.route("/")
@role_required("officer")
def index() -> Any:
    return "TODO"


@bp.route("/<int:shortlist_id>")
@role_required("officer")
def detail(shortlist_id: int) -> Any:
    return "TODO"
