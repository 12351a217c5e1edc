"""Every dashboard figure as a table: beside its chart on the page (the numbers, readable
without the picture) and as a sheet of the XLSX download. One list, so the page and the file
cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from service.dashboard import AnswerTime, Dashboard, FunnelStep, OfficeDashboard
from web.exports import Cell

PERCENT = "pct"


@dataclass(frozen=True)
class Table:
    name: str  # the chart's name too, where the figure has one
    title: str  # the section's heading and the sheet's name (31 characters at most)
    columns: tuple[str, ...]
    rows: list[list[Cell]]
    chart: bool = True
    kinds: tuple[str, ...] = ()  # PERCENT for a ratio column, else ""

    def shown(self) -> list[list[str]]:
        """The rows as the page prints them: ratios as percentages, blanks as —."""
        kinds = self.kinds or ("",) * len(self.columns)
        return [[_shown(cell, kind) for cell, kind in zip(row, kinds, strict=False)]
                for row in self.rows]


def _shown(cell: Cell, kind: str) -> str:
    if cell is None:
        return "—"
    if kind == PERCENT and isinstance(cell, float):
        return f"{cell:.0%}"
    if isinstance(cell, float):
        return f"{cell:.2f}".rstrip("0").rstrip(".")
    return str(cell)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _funnel(steps: list[FunnelStep]) -> Table:
    return Table("funnel", "对接漏斗", ("步骤", "数量", "相对上一步的转化率"),
                 [[s.label, s.count, s.conversion] for s in steps], kinds=("", "", PERCENT))


def _answer_time(answer: AnswerTime) -> Table:
    rows: list[list[Cell]] = [[b.label, b.count] for b in answer.buckets]
    rows += [["已答复（合计）", answer.answered], ["待回复", answer.pending],
             ["中位数（小时）", _round(answer.median_hours)],
             ["平均（小时）", _round(answer.mean_hours)]]
    return Table("answer-time", "首次答复用时", ("用时", "请求数"), rows)


def officer_tables(data: Dashboard) -> list[Table]:
    lots = data.auctions
    return [
        Table("industry", "各产业领域的需求与成果", ("产业领域", "需求", "成果"),
              [[v.label, v.needs, v.results] for v in data.by_industry]),
        Table("city", "G60 各城市的需求与成果", ("城市", "需求", "成果"),
              [[v.label, v.needs, v.results] for v in data.by_city]),
        Table("month", "每月新发布的需求与成果", ("月份", "需求", "成果"),
              [[v.label, v.needs, v.results] for v in data.by_month]),
        _funnel(data.funnel),
        _answer_time(data.answer_time),
        Table("declines", "婉拒原因", ("婉拒原因", "条数"),
              [[b.label, b.count] for b in data.decline_reasons]),
        Table("auctions", "拍卖结果", ("项目", "数值"), [
            ["成交（件）", lots.sold], ["流拍（件）", lots.unsold],
            ["未记录（件）", lots.unrecorded], ["成交总额（万元）", lots.sold_total],
            ["有保留价的成交拍品（件）", lots.with_reserve],
            ["其保留价合计（万元）", lots.reserve_total],
            ["成交价/保留价", _round(lots.ratio, 2)]]),
        Table("unanswered", "暂无成果能较好解决的开放需求（按领域）",
              ("产业领域", "开放需求", f"无{data.min_label}以上匹配", "占比"),
              [[u.industry, u.open_needs, u.unanswered, u.share] for u in data.unanswered],
              kinds=("", "", "", PERCENT)),
    ]


def office_tables(data: OfficeDashboard) -> list[Table]:
    return [
        Table("interest", "本单位成果受到的关注",
              ("成果", "产业领域", f"{data.min_label}以上匹配的开放需求", "标记相关",
               "对接请求", "对方接受", "已签约"),
              [[r.title, r.industry, r.strong_matches, r.relevant_marks, r.requests,
                r.accepted, r.signed] for r in data.results]),
        _funnel(data.funnel),
        _answer_time(data.answer_time),
        Table("unasked", "无人问津的成果（无相关标记、无对接请求）",
              ("成果", "产业领域", f"{data.min_label}以上匹配的开放需求"),
              [[r.title, r.industry, r.strong_matches] for r in data.unasked], chart=False),
    ]


def tables_of(data: Dashboard | OfficeDashboard) -> list[Table]:
    return office_tables(data) if isinstance(data, OfficeDashboard) else officer_tables(data)
