"""Home pages for each role, and free-text search over needs and results."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, select

from corpora.models import MatchFeedback, Need, Result, Shortlist
from corpora.sides import is_matchable
from web.database import get_db
from web.matching import service
from web.matchview import BadFilter, filters_from, match_rows, none_strong

bp = Blueprint("search", __name__)

QUERY_MAX = 2000
SEARCH_K = 30


@bp.route("/")
@login_required
def home() -> Any:
    db = get_db()
    context: dict[str, Any] = {
        "open_needs": db.scalar(select(func.count()).where(is_matchable(Need))),
        "active_results": db.scalar(select(func.count()).where(is_matchable(Result))),
    }
    role = current_user.role
    if role == "firm":
        context["needs"] = list(db.scalars(
            select(Need).where(Need.organisation_id == current_user.organisation_id)
            .order_by(Need.status.desc(), Need.updated_at.desc())))
    elif role == "office":
        context["results"] = list(db.scalars(
            select(Result).where(Result.organisation_id == current_user.organisation_id)
            .order_by(Result.updated_at.desc()).limit(10)))
        context["interest"] = list(db.scalars(
            select(MatchFeedback).join(Result)
            .where(Result.organisation_id == current_user.organisation_id,
                   MatchFeedback.relevant.is_(True))
            .order_by(MatchFeedback.updated_at.desc()).limit(20)))
    if role in ("officer", "admin"):
        context["shortlists"] = list(db.scalars(
            select(Shortlist).order_by(Shortlist.updated_at.desc()).limit(10)))
    return render_template("search/home.html", **context)


@bp.route("/search")
@login_required
def search() -> Any:
    q = request.args.get("q", "").strip()
    side = request.args.get("side", "result")
    if side not in ("need", "result"):
        abort(400, "side 须为 need 或 result")
    if len(q) > QUERY_MAX:
        abort(400, f"检索词不超过 {QUERY_MAX} 字")
    error = None
    rows = []
    try:
        filters = filters_from(request.args, side)
    except BadFilter as bad:
        error, filters = bad.message, None
    if q and error is None:
        matches = service().search(q, side, k=SEARCH_K, filters=filters)
        rows = match_rows(get_db(), side, matches)
    status = 400 if error else 200
    return render_template("search/search.html", q=q, side=side, rows=rows, error=error,
                           no_strong=none_strong(rows), args=request.args), status
