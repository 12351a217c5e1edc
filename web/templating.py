"""Jinja filters and globals shared by every template."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from flask import Flask
from markupsafe import Markup, escape

from corpora.industries import G60_CITIES, G60_INDUSTRIES
from corpora.schema import COOPERATION_MODES, MATURITIES, RESULT_TYPES
from matcher.explain import highlight_spans
from web.explanations import facet_label
from web.matchview import fold_weak

STATUS_LABELS = {"open": "征集中", "closed": "已关闭", "active": "有效", "withdrawn": "已撤回"}


def highlight(text: str | None, terms: Iterable[str]) -> Markup:
    """`text` with each term wrapped in <mark>; every piece is escaped first."""
    text = text or ""
    pieces: list[str] = []
    last = 0
    for start, end in highlight_spans(text, list(terms)):
        pieces.append(str(escape(text[last:start])))
        pieces.append(f"<mark>{escape(text[start:end])}</mark>")
        last = end
    pieces.append(str(escape(text[last:])))
    return Markup("".join(pieces))


def plain_number(value: float) -> str:
    """12345.67 as 12345.67, 1234567 as 1234567: never rounded, never 1.23457e+06, so a
    form prefilled with it saves back the same value."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _amount(value: float) -> str:
    whole = plain_number(value)
    integer, _, fraction = whole.partition(".")
    return f"{int(integer):,}" + (f".{fraction}" if fraction else "")


def money(value: float | None) -> str:
    return "—" if value is None else f"{_amount(value)} 万元"


def budget(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "面议"
    if low is not None and high is not None:
        return f"{_amount(low)}–{_amount(high)} 万元"
    return f"≥{_amount(low)} 万元" if low is not None else f"≤{_amount(high)} 万元"


# The platform's users are in China (UTC+8 all year, no daylight saving); times are stored
# in UTC and shown in Beijing time.
BEIJING = timezone(timedelta(hours=8), "北京时间")


def day(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite hands back naive UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        highlight=highlight, money=money, day=day, facet_label=facet_label,
        status_label=lambda s: STATUS_LABELS.get(s, s),
    )
    app.jinja_env.globals.update(
        budget=budget, fold_weak=fold_weak, INDUSTRIES=G60_INDUSTRIES, CITIES=G60_CITIES,
        COOPERATION_MODES=COOPERATION_MODES, RESULT_TYPES=RESULT_TYPES, MATURITIES=MATURITIES,
    )

    @app.context_processor
    def _site() -> dict[str, Any]:
        return {"site_name": "G60 产学研对接平台"}
