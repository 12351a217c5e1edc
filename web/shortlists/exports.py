"""A shortlist as a spreadsheet (CSV, XLSX) and as a page to print."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template

from corpora.models import Shortlist, utcnow
from web.auth import role_required
from web.database import get_db
from web.exports import Cell, download, to_csv, to_xlsx
from web.matching import service
from web.shortlists import bp
from web.shortlists.coverage import Answer, lot_rows, needs_answered
from web.shortlists.lots import get_shortlist, ordered_lots

EXPORT_COLUMNS = ("序号", "成果名称", "完成单位", "成果类型", "专利号", "成熟度", "产业领域",
                  "转化方式", "意向价格(万元)", "保留价(万元)", "备注",
                  "能较好解决的开放需求数(较强以上)", "相关需求")
XLSX_WIDTHS = (6, 36, 24, 10, 18, 8, 14, 18, 12, 12, 30, 10, 50)


def export_rows(shortlist: Shortlist, answered: Mapping[int, list[Answer]]
                ) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for lot in ordered_lots(shortlist):
        result = lot.result
        needs = answered.get(result.id, [])
        rows.append([
            lot.position, result.title, result.organisation.name, result.result_type or "",
            result.patent_number or "", result.maturity or "", result.industry or "",
            "、".join(result.transfer_mode_list), result.asking_price, lot.reserve_price,
            lot.note or "", len(needs), "；".join(answer.need.title for answer in needs),
        ])
    return rows


def _export_data(shortlist_id: int) -> tuple[Shortlist, list[list[Cell]]]:
    shortlist = get_shortlist(shortlist_id)
    answered = needs_answered(get_db(), [lot.result_id for lot in shortlist.lots])
    return shortlist, export_rows(shortlist, answered)


@bp.route("/<id:shortlist_id>/export.csv")
@role_required("officer")
def export_csv(shortlist_id: int) -> Any:
    _, rows = _export_data(shortlist_id)
    return download(to_csv(EXPORT_COLUMNS, rows), "text/csv; charset=utf-8",
                    f"shortlist-{shortlist_id}.csv")


@bp.route("/<id:shortlist_id>/export.xlsx")
@role_required("officer")
def export_xlsx(shortlist_id: int) -> Any:
    shortlist, rows = _export_data(shortlist_id)
    return download(to_xlsx(EXPORT_COLUMNS, rows, shortlist.title, "拍卖清单", XLSX_WIDTHS),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     f"shortlist-{shortlist_id}.xlsx")


@bp.route("/<id:shortlist_id>/print")
@role_required("officer")
def print_view(shortlist_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    rows = lot_rows(get_db(), shortlist)
    covered = {answer.need.id for row in rows for answer in row.needs}
    return render_template("shortlists/print.html", shortlist=shortlist, rows=rows,
                           covered=len(covered), printed_at=utcnow(),
                           min_label=service().coverage().min_label)
