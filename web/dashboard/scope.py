"""Whose figures the signed-in user reads: everything (officers, admins), its own
institution's (offices), nothing (firms: 403). The page, the charts, the download and the
API all ask here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from service.dashboard import Dashboard, DashboardFilters, figures, office_figures
from web.database import get_db
from web.matching import service

READERS = ("officer", "admin", "office")
REFUSED = "只有科委/G60 官员、管理员和技术转移办公室可以查看数据看板"


def can_read(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.role in READERS and (
        user.role != "office" or user.organisation_id is not None)


def figures_for(user: Any, filters: DashboardFilters) -> Any:
    """`Dashboard` for officers and admins, `OfficeDashboard` for an office."""
    coverage = service().coverage()
    if user.role == "office":
        return office_figures(get_db(), coverage, user.organisation_id, filters)
    return figures(get_db(), coverage, filters)


def as_json(data: Any) -> dict[str, Any]:
    """The figures as the API answers them (web.api.dashboard.DashboardOut)."""
    body: dict[str, Any] = asdict(data)
    filters: Mapping[str, Any] = body.pop("filters")
    body["filters"] = {name: value.isoformat() if hasattr(value, "isoformat") else value
                       for name, value in filters.items()}
    if isinstance(data, Dashboard):
        body.update(scope="all", organisation=None)
    else:
        body.update(scope="institution")
        for row, item in zip(body["results"], data.results, strict=True):
            row["unasked"] = item.unasked
    return body
