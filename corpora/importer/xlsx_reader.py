"""Reading the first sheet of an .xlsx file, in time proportional to the cells it really holds
(the archive is checked first by `corpora.importer.xlsx_guard`)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from corpora.importer.report import ImportFileError
from corpora.importer.tables import SourceRow, SourceTable, tabular_table
from corpora.importer.xlsx_guard import (
    NOT_XLSX,
    ZIP_READ_ERRORS,
    check_xlsx_archive,
    xlsx_problem,
)
from corpora.schema import SideSchema

_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, str):
        # Excel stores characters XML cannot hold (control characters) as _xHHHH_; decode
        # them so the checks see what the user's cell really contains.
        return _OOXML_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), value)
    return value


# What openpyxl raises on a file that passed the zip checks but whose XML or values are
# broken (bad XML is a SyntaxError, impossible dates an OverflowError, missing parts a
# KeyError...): each means "not a readable workbook" to the user, never a crash.
# LookupError covers KeyError and IndexError, and an XML part declaring an unknown encoding.
_OPENPYXL_ERRORS = (*ZIP_READ_ERRORS, LookupError, TypeError, AttributeError,
                    SyntaxError, ArithmeticError)


def read_xlsx(schema: SideSchema, path: Path) -> SourceTable:
    """The first sheet's rows, streamed: the workbook stays open until they are read (or
    the table is closed)."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    check_xlsx_archive(path)
    try:
        with warnings.catch_warnings():
            # Files from other tools often lack a default style; openpyxl's warning is noise.
            warnings.filterwarnings("ignore", message="Workbook contains no default style")
            # keep_links=False: external workbooks' cached values are never read (such files
            # are refused above anyway).
            workbook = load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except (InvalidFileException, *_OPENPYXL_ERRORS) as error:
        raise xlsx_problem(path, NOT_XLSX) from error
    try:
        if not workbook.worksheets:
            raise ImportFileError(f"《{path.name}》没有工作表。")
        table = tabular_table(schema, _sheet_rows(workbook.worksheets[0], path), "xlsx")
    except BaseException:
        workbook.close()
        raise
    table.rows = _closing(table.rows, workbook.close)
    return table


def _closing(rows: Iterator[SourceRow], close: Callable[[], None]) -> Iterator[SourceRow]:
    try:
        yield from rows
    finally:
        close()


def _sheet_rows(sheet: Any, path: Path) -> Iterator[tuple[int, dict[int, Any]]]:
    """(row number, column index → value) for each row the sheet's XML really holds.

    Not `sheet.iter_rows()`: that yields the rectangle the sheet *declares* (`<dimension
    ref="A1:XFD60000"/>`), every missing row and cell filled in, so a 1.6 KB file costs a
    billion empty cells. openpyxl's own sheet parser, which `iter_rows` reads through, yields
    only the `<row>` and `<c>` elements present; it is set up here exactly as openpyxl's
    read-only sheet sets it up. The cost is then the cells the file holds, and the guard
    has already refused rows and cells beyond Excel's limits.
    """
    from openpyxl.worksheet._reader import WorkSheetParser

    workbook = sheet.parent
    damaged = ("的工作表内容已损坏，无法读取。请在 Excel 中打开并另存为 .xlsx 后再导入。")
    try:
        source = sheet._get_source()
        parser = WorkSheetParser(
            source, sheet._shared_strings, data_only=workbook.data_only,
            epoch=workbook.epoch, date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
    except _OPENPYXL_ERRORS as error:
        raise xlsx_problem(path, damaged) from error
    with source:
        rows = parser.parse()
        while True:
            try:
                line, cells = next(rows)
            except StopIteration:
                return
            except _OPENPYXL_ERRORS as error:
                raise xlsx_problem(path, damaged) from error
            # Row attributes (heights...) would pile up in the parser, one dict per row.
            parser.row_dimensions.clear()
            values = {cell["column"] - 1: _xlsx_cell(cell["value"])
                      for cell in cells if cell["value"] is not None}
            if values:
                yield line, values
