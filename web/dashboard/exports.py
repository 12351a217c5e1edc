"""Every dashboard figure as one XLSX: a sheet per figure (its table), and a first sheet
saying which filters made it. Text cells go through `web.exports.sheet_text`, so a result
title that looks like a formula is shown, never run."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

from flask_login import current_user, login_required
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from corpora.models import utcnow
from service.dashboard import DashboardFilters, OfficeDashboard
from web.dashboard import bp
from web.dashboard.scope import figures_for
from web.dashboard.tables import PERCENT, Table, tables_of
from web.dashboard.views import read_filters
from web.exports import Cell, download, sheet_text
from web.templating import day

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INFO_SHEET = "筛选条件"
SHEET_NAME_MAX = 31  # Excel's limit
# Characters a sheet name may not hold.
SHEET_UNSAFE = str.maketrans({c: "-" for c in "[]:*?/\\"})


def _cell(value: Cell) -> Cell:
    if isinstance(value, str):
        return sheet_text(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


def _sheet_name(title: str) -> str:
    return title.translate(SHEET_UNSAFE)[:SHEET_NAME_MAX]


def _add_table(workbook: Workbook, table: Table) -> None:
    sheet = workbook.create_sheet(_sheet_name(table.title))
    sheet.append(list(table.columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    kinds = table.kinds or ("",) * len(table.columns)
    for row in table.rows:
        sheet.append([_cell(value) for value in row])
        for cell, kind in zip(sheet[sheet.max_row], kinds, strict=False):
            if kind == PERCENT:
                cell.number_format = "0.0%"
    sheet.freeze_panes = "A2"
    for number, name in enumerate(table.columns, start=1):
        width = 40 if number == 1 and table.name in ("interest", "unasked") else 16
        sheet.column_dimensions[get_column_letter(number)].width = max(width, len(name) * 2)


def workbook_of(data: Any, filters: DashboardFilters) -> bytes:
    workbook = Workbook()
    info = workbook.active
    info.title = INFO_SHEET
    scope = (f"本单位：{data.organisation}" if isinstance(data, OfficeDashboard)
             else "全平台")
    for label, value in (("范围", scope), ("起始日期", day(filters.date_from)),
                         ("结束日期", day(filters.date_to)),
                         ("产业领域", filters.industry or "全部"),
                         ("所在城市", filters.city or "全部"),
                         ("匹配的口径", f"开放需求前 {data.top_k} 名中强度{data.min_label}以上的"
                                   "需求–成果对"),
                         ("导出时间（北京时间）", day(utcnow()))):
        info.append([label, _cell(value)])
    for cell in info["A"]:
        cell.font = Font(bold=True)
    info.column_dimensions["A"].width = 20
    info.column_dimensions["B"].width = 60
    for table in tables_of(data):
        _add_table(workbook, table)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@bp.route("/export.xlsx")
@login_required
def export_xlsx() -> Any:
    filters = read_filters()
    data = figures_for(current_user, filters)
    body = workbook_of(data, filters)
    stamp = utcnow().strftime("%Y%m%d")
    name = f"数据看板-{stamp}.xlsx"
    response = download(body, XLSX_TYPE, f"dashboard-{stamp}.xlsx")
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"dashboard-{stamp}.xlsx\"; "
        f"filename*=UTF-8''{quote(name, safe='')}")
    return response
