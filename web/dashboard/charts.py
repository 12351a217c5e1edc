"""The dashboard's charts, drawn on the server as SVG by matplotlib.

An SVG the page loads through <img> runs no script, so the charts live within the site's
Content-Security-Policy (img-src 'self') with nothing served from another host. Text is left
as text (svg.fonttype "none") so the reader's browser draws the Chinese in its own fonts; the
font list below only names fonts for matplotlib's layout, and a machine without a CJK font
still lays the labels out (its glyph warnings are silenced: the browser draws them anyway).
Each chart is a `Figure` of its own, never pyplot's global state, so requests served in
parallel do not draw into one another.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from service.dashboard import Dashboard, OfficeDashboard  # noqa: E402

matplotlib.rcParams.update({
    "svg.fonttype": "none",
    "svg.hashsalt": "g60-dashboard",  # the same figures give the same file
    "font.family": "sans-serif",
    "font.sans-serif": ["Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei",
                        "PingFang SC", "WenQuanYi Micro Hei", "SimHei", "DejaVu Sans"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
})
# "findfont: Font family ... not found" for each font this machine lacks: expected, not news.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

NEEDS_COLOUR, RESULTS_COLOUR, ALERT_COLOUR, MUTED_COLOUR = "#1f6feb", "#2da44e", "#cf222e", \
    "#8c959f"
MAX_BARS = 15  # results in the institution's interest chart


def _empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, "暂无数据", ha="center", va="center", transform=ax.transAxes,
            color=MUTED_COLOUR, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _whole(axis: Any) -> None:
    """Ticks at whole numbers: every chart counts things, and no one makes half a request."""
    axis.set_major_locator(MaxNLocator(integer=True))


def _paired_bars(ax: Axes, labels: Sequence[str], needs: Sequence[int],
                 results: Sequence[int], *, horizontal: bool) -> None:
    if not labels:
        _empty(ax)
        return
    positions = range(len(labels))
    width = 0.4
    draw = ax.barh if horizontal else ax.bar
    draw([p - width / 2 for p in positions], needs, width, label="需求", color=NEEDS_COLOUR)
    draw([p + width / 2 for p in positions], results, width, label="成果", color=RESULTS_COLOUR)
    if horizontal:
        ax.set_yticks(list(positions), labels)
        ax.invert_yaxis()
    else:
        ax.set_xticks(list(positions), labels, rotation=30 if len(labels) > 6 else 0)
    ax.legend(frameon=False, loc="lower right" if horizontal else "best")


def industry(data: Dashboard) -> Figure:
    rows = data.by_industry
    figure = Figure(figsize=(7, 0.45 * max(len(rows), 4) + 1))
    ax = figure.subplots()
    _paired_bars(ax, [r.label for r in rows], [r.needs for r in rows],
                 [r.results for r in rows], horizontal=True)
    ax.set_title("各产业领域的需求与成果（条）")
    _whole(ax.xaxis)
    return figure


def city(data: Dashboard) -> Figure:
    rows = data.by_city
    figure = Figure(figsize=(7, 3.6))
    ax = figure.subplots()
    _paired_bars(ax, [r.label for r in rows], [r.needs for r in rows],
                 [r.results for r in rows], horizontal=False)
    ax.set_title("G60 各城市的需求与成果（按发布单位所在城市）")
    _whole(ax.yaxis)
    return figure


def month(data: Dashboard) -> Figure:
    rows = data.by_month
    figure = Figure(figsize=(7, 3.4))
    ax = figure.subplots()
    if rows:
        labels = [r.label for r in rows]
        ax.plot(labels, [r.needs for r in rows], marker="o", label="需求", color=NEEDS_COLOUR)
        ax.plot(labels, [r.results for r in rows], marker="s", label="成果",
                color=RESULTS_COLOUR)
        ax.legend(frameon=False)
        ax.tick_params(axis="x", rotation=30 if len(rows) > 6 else 0)
        ax.set_ylim(bottom=0)
    else:
        _empty(ax)
    ax.set_title("每月新发布的需求与成果（条）")
    _whole(ax.yaxis)
    return figure


def _funnel(data: Dashboard | OfficeDashboard) -> Figure:
    steps = data.funnel
    figure = Figure(figsize=(7, 3.4))
    ax = figure.subplots()
    labels = [s.label for s in steps]
    counts = [s.count for s in steps]
    ax.barh(labels, counts, color=[NEEDS_COLOUR] * 2 + [RESULTS_COLOUR] * 3)
    ax.invert_yaxis()
    top = max(counts) if any(counts) else 1
    for position, step in enumerate(steps):
        note = f"{step.count}" + (f"（{step.conversion:.0%}）" if step.conversion is not None
                                  else "")
        ax.text(step.count + top * 0.01, position, note, va="center")
    ax.set_xlim(0, top * 1.25)
    ax.set_title("对接漏斗（括号内为相对上一步的转化率）")
    _whole(ax.xaxis)
    return figure


def _answer_time(data: Dashboard | OfficeDashboard) -> Figure:
    answer = data.answer_time
    figure = Figure(figsize=(7, 3.2))
    ax = figure.subplots()
    ax.bar([b.label for b in answer.buckets], [b.count for b in answer.buckets],
           color=NEEDS_COLOUR)
    median = "—" if answer.median_hours is None else f"{answer.median_hours:.1f} 小时"
    ax.set_title(f"首次答复用时（已答复 {answer.answered} 条，中位数 {median}，"
                 f"待回复 {answer.pending} 条）")
    ax.set_ylabel("请求数")
    _whole(ax.yaxis)
    return figure


def declines(data: Dashboard) -> Figure:
    rows = data.decline_reasons
    figure = Figure(figsize=(7, 3.4))
    ax = figure.subplots()
    if any(r.count for r in rows):
        ax.barh([r.label for r in rows], [r.count for r in rows], color=ALERT_COLOUR)
        ax.invert_yaxis()
    else:
        _empty(ax)
    ax.set_title("婉拒原因（条）")
    _whole(ax.xaxis)
    return figure


def auctions(data: Dashboard) -> Figure:
    lots = data.auctions
    figure = Figure(figsize=(7, 3.2))
    ax = figure.subplots()
    ax.bar(["成交", "流拍", "未记录"], [lots.sold, lots.unsold, lots.unrecorded],
           color=[RESULTS_COLOUR, ALERT_COLOUR, MUTED_COLOUR])
    ratio = "—" if lots.ratio is None else f"{lots.ratio:.2f}"
    ax.set_title(f"拍卖结果（成交价/保留价 {ratio}，成交总额 {lots.sold_total:g} 万元）")
    ax.set_ylabel("拍品数")
    _whole(ax.yaxis)
    return figure


def unanswered(data: Dashboard) -> Figure:
    rows = data.unanswered
    figure = Figure(figsize=(7, 0.45 * max(len(rows), 4) + 1))
    ax = figure.subplots()
    if rows:
        labels = [r.industry for r in rows]
        gaps = [r.unanswered for r in rows]
        ax.barh(labels, gaps, color=ALERT_COLOUR, label=f"无{data.min_label}以上匹配")
        ax.barh(labels, [r.open_needs - r.unanswered for r in rows], left=gaps,
                color=MUTED_COLOUR, label="有较好匹配")
        ax.invert_yaxis()
        ax.legend(frameon=False, loc="lower right")
    else:
        _empty(ax)
    ax.set_title("开放需求中暂无成果能较好解决的（按产业领域）")
    _whole(ax.xaxis)
    return figure


def interest(data: OfficeDashboard) -> Figure:
    rows = data.results[:MAX_BARS]
    figure = Figure(figsize=(7, 0.45 * max(len(rows), 4) + 1))
    ax = figure.subplots()
    titles = [r.title if len(r.title) <= 16 else r.title[:15] + "…" for r in rows]
    _paired_bars(ax, titles, [r.relevant_marks for r in rows], [r.requests for r in rows],
                 horizontal=True)
    if rows:
        handles = ax.get_legend_handles_labels()[0]
        ax.legend(handles, ["标记相关", "对接请求"], frameon=False, loc="lower right")
    ax.set_title(f"本单位成果受到的关注（前 {MAX_BARS} 件）")
    _whole(ax.xaxis)
    return figure


OFFICER_CHARTS: dict[str, Callable[[Dashboard], Figure]] = {
    "industry": industry, "city": city, "month": month, "funnel": _funnel,
    "answer-time": _answer_time, "declines": declines, "auctions": auctions,
    "unanswered": unanswered,
}
OFFICE_CHARTS: dict[str, Callable[[OfficeDashboard], Figure]] = {
    "interest": interest, "funnel": _funnel, "answer-time": _answer_time,
}


def draw(name: str, data: Any) -> bytes | None:
    """Chart `name` of `data` as SVG; None when this dashboard has no such chart."""
    charts: dict[str, Callable[[Any], Figure]] = (
        OFFICE_CHARTS if isinstance(data, OfficeDashboard) else OFFICER_CHARTS)  # type: ignore[assignment]
    chart = charts.get(name)
    if chart is None:
        return None
    with warnings.catch_warnings():
        # A machine without a CJK font: layout measures the labels with a fallback font.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font",
                                category=UserWarning)
        return _svg(chart(data))
