"""CSV and XLSX downloads that are safe to open in Excel or LibreOffice.

A text cell starting with = + - @ (or a tab / CR) is a formula to a spreadsheet: a title like
`=cmd|' /C calc'!A0` would run when the officer opens the file. Every text cell is written
with a leading apostrophe in that case, so it shows as text and never runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from flask import Response
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from web.templating import plain_number

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | None


def sheet_text(value: str) -> str:
    """Text as a spreadsheet shows it, never run: a formula-like start gets an apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _csv_cell(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float):
        return plain_number(cell)
    if isinstance(cell, int):
        return str(cell)
    return sheet_text(cell)


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(columns: Sequence[str], rows: Iterable[Sequence[Cell]], title: str,
            sheet_name: str, widths: Sequence[int] = ()) -> bytes:
    """Numbers stay numeric cells; text is cleaned of characters XLSX cannot hold."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_name
    workbook.properties.title = ILLEGAL_CHARACTERS_RE.sub("", title)
    sheet.append(list(columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([sheet_text(ILLEGAL_CHARACTERS_RE.sub("", cell)) if isinstance(cell, str)
                      else cell for cell in row])
    sheet.freeze_panes = "A2"
    for number, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(number)].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def download(body: bytes, mimetype: str, name: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
