"""The dashboard's filters from a query string: a bad one is a 400 naming its field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from corpora.industries import G60_CITIES
from service.dashboard import DashboardFilters
from web.matchview import BadFilter

NAMES = ("date_from", "date_to", "industry", "city")
TEXT_MAX = 50  # an industry is a String(50) column
LABELS = {"date_from": "起始日期", "date_to": "结束日期", "industry": "产业领域",
          "city": "所在城市"}


def _one(args: Mapping[str, Any], name: str) -> str | None:
    values = args.getlist(name) if hasattr(args, "getlist") else [args.get(name)]
    values = [value for value in values if value is not None]
    if len(values) > 1:
        raise BadFilter(name, "只能给一个值")
    if not values:
        return None
    if not isinstance(values[0], str):
        raise BadFilter(name, "须为文本")
    return values[0].strip() or None


def _day(args: Mapping[str, Any], name: str) -> date | None:
    text = _one(args, name)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadFilter(name, "日期须为 YYYY-MM-DD，例如 2025-01-31") from None


def dashboard_filters(args: Mapping[str, Any]) -> DashboardFilters:
    date_from, date_to = _day(args, "date_from"), _day(args, "date_to")
    if date_from and date_to and date_from > date_to:
        raise BadFilter("date_from", "起始日期晚于结束日期")
    industry, city = _one(args, "industry"), _one(args, "city")
    if industry is not None and (len(industry) > TEXT_MAX or not industry.isprintable()):
        raise BadFilter("industry", f"产业领域须为不超过 {TEXT_MAX} 字的文本")
    if city is not None and city not in G60_CITIES:
        raise BadFilter("city", "所在城市须为 G60 九城之一：" + "、".join(G60_CITIES))
    return DashboardFilters(date_from, date_to, industry, city)
