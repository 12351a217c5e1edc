"""The dashboard page and its charts, both read with the same filters."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, render_template, request
from flask_login import current_user, login_required

from service.dashboard import DashboardFilters, OfficeDashboard
from web.dashboard import bp, charts
from web.dashboard.filters import LABELS, dashboard_filters
from web.dashboard.scope import REFUSED, can_read, figures_for
from web.dashboard.tables import tables_of
from web.matchview import BadFilter


def read_filters() -> DashboardFilters:
    """The request's filters, or a 400 that names the field (and the 403 first)."""
    if not can_read(current_user):
        abort(403, REFUSED)
    try:
        return dashboard_filters(request.args)
    except BadFilter as bad:
        abort(400, f"筛选条件有误：{LABELS[bad.field]}（{bad.field}）{bad.message}")


@bp.route("")
@login_required
def index() -> Any:
    filters = read_filters()
    data = figures_for(current_user, filters)
    return render_template("dashboard/index.html", data=data, filters=filters,
                           query=filters.query(), tables=tables_of(data),
                           office=isinstance(data, OfficeDashboard))


@bp.route("/chart/<name>.svg")
@login_required
def chart(name: str) -> Any:
    filters = read_filters()
    svg = charts.draw(name, figures_for(current_user, filters))
    if svg is None:
        abort(404, "没有这张图表")
    # Cache-Control: no-store, as on every page (web.security): the figures count private
    # marks and requests.
    return Response(svg, mimetype="image/svg+xml")
