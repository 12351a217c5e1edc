"""A shortlist as a spreadsheet (CSV, XLSX) and as a page to print.

The lots sheet of both files is a plain table, its header in the first row, so a reader
(Excel's filter, pandas, an import script) takes it as it is: the shortlist's title, event
date and note go in the file name and, in the XLSX, on a second sheet (清单信息) rather than
in rows above the table. A CSV has one table only, so it carries the title and date in its
name and leaves the note to the XLSX and the print view.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import Response, render_template
from openpyxl import load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font

from corpora.models import Shortlist, utcnow
from web.auth import role_required
from web.database import get_db
from web.exports import Cell, download, sheet_text, to_csv, to_xlsx
from web.matching import service
from web.shortlists import bp
from web.shortlists.coverage import Answer, lot_rows, needs_answered
from web.shortlists.lots import get_shortlist, ordered_lots
from web.shortlists.outcomes import Tally, outcome_label, tally
from web.templating import day, money

# The outcome columns come last, so the earlier columns keep their places for existing readers.
EXPORT_COLUMNS = ("序号", "成果名称", "完成单位", "成果类型", "专利号", "成熟度", "产业领域",
                  "转化方式", "意向价格(万元)", "保留价(万元)", "备注",
                  "能较好解决的开放需求数(较强以上)", "相关需求", "拍卖结果", "成交价(万元)",
                  "买受人")
XLSX_WIDTHS = (6, 36, 24, 10, 18, 8, 14, 18, 12, 12, 30, 10, 50, 10, 12, 24)
INFO_SHEET = "清单信息"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAME_TITLE_MAX = 80  # characters of the title in a file name
# Not allowed in a file name on Windows or macOS (or a path separator anywhere), and controls.
UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


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
            outcome_label(lot.outcome) if lot.outcome else "", lot.sold_price, lot.buyer or "",
        ])
    return rows


def tally_text(counts: Tally) -> str:
    if not counts.recorded:
        return "尚未记录"
    text = (f"成交 {counts.sold} 件，流拍 {counts.unsold} 件，"
            f"成交总额 {money(counts.total)}")
    if counts.ratio is not None:
        text += f"，成交价/保留价 {counts.ratio:.2f}"
    return text


def file_name(shortlist: Shortlist, extension: str) -> tuple[str, str]:
    """What the file is, e.g. 拍卖清单-2026-12-18-智能制造专场.xlsx, and an ASCII fallback
    for clients that do not read RFC 5987 names."""
    title = " ".join(UNSAFE_NAME.sub(" ", shortlist.title).split())[:NAME_TITLE_MAX]
    title = title.strip(" .")
    when = shortlist.event_date.isoformat() if shortlist.event_date else ""
    name = "-".join(part for part in ("拍卖清单", when, title) if part)
    fallback = "-".join(part for part in (f"shortlist-{shortlist.id}", when) if part)
    return f"{name}.{extension}", f"{fallback}.{extension}"


def _download(body: bytes, mimetype: str, shortlist: Shortlist, extension: str) -> Response:
    name, fallback = file_name(shortlist, extension)
    response = download(body, mimetype, fallback)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}")
    return response


def _export_data(shortlist_id: int) -> tuple[Shortlist, list[list[Cell]]]:
    shortlist = get_shortlist(shortlist_id)
    answered = needs_answered(get_db(), [lot.result_id for lot in shortlist.lots])
    return shortlist, export_rows(shortlist, answered)


def _text(value: str) -> str:
    return sheet_text(ILLEGAL_CHARACTERS_RE.sub("", value))


def _with_info_sheet(body: bytes, shortlist: Shortlist) -> bytes:
    """The lots workbook with a second sheet saying which shortlist it is."""
    workbook = load_workbook(io.BytesIO(body))
    sheet = workbook.create_sheet(INFO_SHEET)
    rows = (("清单名称", shortlist.title), ("拍卖会日期", day(shortlist.event_date)),
            ("说明", shortlist.note or ""), ("拍品数", len(shortlist.lots)),
            ("拍卖结果", tally_text(tally(shortlist.lots))),
            ("导出时间（北京时间）", day(utcnow())))
    for label, value in rows:
        sheet.append([label, _text(value) if isinstance(value, str) else value])
    for cell in sheet["A"]:
        cell.font = Font(bold=True)
    for cell in sheet["B"]:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.column_dimensions["A"].width = 20
    sheet.column_dimensions["B"].width = 80
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@bp.route("/<id:shortlist_id>/export.csv")
@role_required("officer")
def export_csv(shortlist_id: int) -> Any:
    shortlist, rows = _export_data(shortlist_id)
    return _download(to_csv(EXPORT_COLUMNS, rows), "text/csv; charset=utf-8", shortlist, "csv")


@bp.route("/<id:shortlist_id>/export.xlsx")
@role_required("officer")
def export_xlsx(shortlist_id: int) -> Any:
    shortlist, rows = _export_data(shortlist_id)
    body = to_xlsx(EXPORT_COLUMNS, rows, shortlist.title, "拍卖清单", XLSX_WIDTHS)
    return _download(_with_info_sheet(body, shortlist), XLSX_TYPE, shortlist, "xlsx")


@bp.route("/<id:shortlist_id>/print")
@role_required("officer")
def print_view(shortlist_id: int) -> Any:
    shortlist = get_shortlist(shortlist_id)
    rows = lot_rows(get_db(), shortlist)
    covered = {answer.need.id for row in rows for answer in row.needs}
    return render_template("shortlists/print.html", shortlist=shortlist, rows=rows,
                           covered=len(covered), printed_at=utcnow(),
                           tally=tally(row.lot for row in rows),
                           min_label=service().coverage().min_label)
