"""Reading a needs or results file (CSV, JSONL or XLSX) into rows of raw values.

Each row keeps its line number, the values as written in the file (for the rejects file) and
the values under their canonical field names; problems found while reading (a JSONL line that
is not JSON, two columns for one field) travel with the row. Whole-file problems (type, size,
encoding, header) raise `ImportFileError`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import operator
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpora.importer.report import ImportFileError
from corpora.importer.xlsx_guard import (
    NOT_XLSX,
    ZIP_READ_ERRORS,
    check_xlsx_archive,
    xlsx_problem,
)
from corpora.schema import RowError, SideSchema, is_blank

SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".xlsx")
# Beyond this the file is refused before it is parsed (a 200 MB upload is a mistake or worse).
MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass(slots=True)
class SourceRow:
    line: int
    original: dict[str, Any]  # column (as written in the file) → value
    fields: dict[str, Any]  # canonical field name → raw value
    problems: list[RowError] = field(default_factory=list)  # found while reading
    raw_text: str | None = None  # a JSONL line that did not parse, a CSV record that did not


@dataclass
class SourceTable:
    """A file's rows. `read_source` gives them as a list; `stream_source` (what the import
    uses) as a one-pass iterator, read as it is iterated, so that memory does not grow with
    the file: headless columns found on the way are added to `unknown_columns` at its end,
    and `close` releases the file (an open workbook) if iteration stops early."""

    format: str  # "jsonl" | "csv" | "xlsx" | "records"
    rows: list[SourceRow] | Iterator[SourceRow]
    columns: list[str] = field(default_factory=list)  # tabular formats: the header
    unknown_columns: list[str] = field(default_factory=list)

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def _decode(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM). GBK is recognised and refused with advice; stray invalid
    bytes in an otherwise UTF-8 file become U+FFFD, so the rows holding them are rejected."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(f"《{name}》是 UTF-16 编码；请另存为 UTF-8（Excel：“CSV UTF-8”）。")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _looks_like_gbk(data):
        raise ImportFileError(
            f"《{name}》似乎是 GBK/GB18030 编码，而不是 UTF-8。"
            "请用 UTF-8 重新保存（Excel：另存为“CSV UTF-8（逗号分隔）”）后再导入。"
        )
    return data.decode("utf-8", errors="replace")


def _looks_like_gbk(data: bytes) -> bool:
    # A GBK file has no non-ASCII line that is valid UTF-8; a UTF-8 file with a few damaged
    # bytes has many. Only the first case is a whole-file encoding mistake.
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    for line in data.splitlines():
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        return False
    return True


def _map_columns(
    schema: SideSchema, columns: Sequence[str]
) -> tuple[dict[int, str], list[str]]:
    """Header → (column index → canonical field, unknown column names)."""
    mapping: dict[int, str] = {}
    seen: dict[str, str] = {}
    unknown: list[str] = []
    for index, column in enumerate(columns):
        if is_blank(column):
            continue
        spec = schema.field_for_column(str(column))
        if spec is None:
            unknown.append(str(column))
            continue
        if spec.name in seen:
            raise ImportFileError(
                f"列「{seen[spec.name]}」和「{column}」都对应字段「{spec.label}」，请删去其中一列。"
            )
        seen[spec.name] = str(column)
        mapping[index] = spec.name
    if not mapping:
        raise ImportFileError(
            "第一行不是可识别的表头：没有一个列名是已知字段（如 标题/title）。"
            "可用的列名见导入格式说明（上传页的“列说明”，或 docs/import-format.md）。"
        )
    missing = [spec for spec in schema.required if spec.name not in seen]
    if missing:
        names = "、".join(f"{spec.label}（{spec.aliases[-1]}）" for spec in missing)
        raise ImportFileError(f"表头缺少必需的列：{names}。")
    return mapping, unknown


Cells = Sequence[Any] | Mapping[int, Any]  # a row's cells: dense, or column index → value


def _tabular_table(
    schema: SideSchema, numbered_cells: Iterable[tuple[int, Cells]], format_name: str
) -> SourceTable:
    """Rows of cells (line number, values) whose first non-blank row is the header. The
    header is read now (its problems are the whole file's); the rows are read as the table's
    `rows` is iterated, once, so a file is never held in memory as rows."""
    iterator = iter(numbered_cells)
    header: list[str] | None = None
    for _line, cells in iterator:
        if isinstance(cells, Mapping):
            cells = [cells.get(index) for index in range(max(cells, default=-1) + 1)]
        if any(not is_blank(cell) for cell in cells):
            header = ["" if cell is None else str(cell).strip() for cell in cells]
            break
    if header is None:
        raise ImportFileError("文件为空：没有表头，也没有数据。")
    mapping, unknown = _map_columns(schema, header)
    # Duplicate unknown names are kept apart in the rejects file: "备注", "备注#2".
    names: list[str] = []
    for index, column in enumerate(header):
        name = column or f"(第{index + 1}列)"
        copy = 2
        while name in names:
            name = f"{column}#{copy}"
            copy += 1
        names.append(name)
    table = SourceTable(format_name, [], columns=names, unknown_columns=unknown)
    table.rows = _tabular_rows(iterator, header, names, mapping, table)
    return table


def _tabular_rows(
    iterator: Iterator[tuple[int, Cells]], header: list[str], names: list[str],
    mapping: dict[int, str], table: SourceTable,
) -> Iterator[SourceRow]:
    headless_with_data: set[str] = set()
    any_rows = False
    width = len(names)
    mapped = sorted(mapping.items())
    field_names = [name for _index, name in mapped]
    pick = operator.itemgetter(*(index for index, _name in mapped))  # one field at least
    if len(mapped) == 1:
        single = pick
        pick = lambda cells: (single(cells),)  # noqa: E731 - itemgetter of one gives no tuple
    headless = [index for index, column in enumerate(header) if not column]
    padding = [None] * width
    previous: tuple[list[Any], SourceRow] | None = None
    for line, cells in iterator:
        if type(cells) is list and len(cells) <= width:
            # A CSV row (text cells, no wider than the header): the common case, built with
            # as little Python per cell as can be, since a 5 MB upload may hold 2.6 million.
            if previous is not None and cells == previous[0]:
                # The same cells as the row before: the same (read-only) values, so that a
                # checker may recognise them by identity.
                yield SourceRow(line, previous[1].original, previous[1].fields)
                continue
            if not "".join(cells).strip():
                continue
            raw = cells
            if len(cells) < width:
                # A short row: trailing cells left off are blank.
                cells = cells + padding[len(cells):]
            for index in headless:
                if not is_blank(cells[index]):
                    headless_with_data.add(names[index])
            any_rows = True
            row = SourceRow(line, dict(zip(names, cells, strict=True)),
                            dict(zip(field_names, pick(cells), strict=True)))
            previous = (raw, row)
            yield row
            continue
        if isinstance(cells, ProblemRow):
            any_rows = True
            yield SourceRow(line, {}, {}, [cells.problem], raw_text=cells.raw_text)
            continue
        if all(is_blank(cell) for cell in (
                cells.values() if isinstance(cells, Mapping) else cells)):
            continue
        pairs = cells.items() if isinstance(cells, Mapping) else enumerate(cells)
        original = {}
        values = {}
        for index, cell in pairs:
            if index >= width:
                if is_blank(cell):
                    continue
                name = f"(第{index + 1}列)"
                headless_with_data.add(name)
            else:
                name = names[index]
                if not header[index] and not is_blank(cell):
                    headless_with_data.add(name)
            original[name] = cell
            if index in mapping:
                values[mapping[index]] = cell
        for index, field_name in mapping.items():
            # A short CSV row (trailing cells left off) has those fields blank.
            values.setdefault(field_name, None)
            original.setdefault(names[index], None)
        any_rows = True
        yield SourceRow(line, original, values)
    if not any_rows:
        raise ImportFileError("文件只有表头，没有数据行。")
    table.unknown_columns.extend(f"{name}（无表头）" for name in sorted(headless_with_data))


@dataclass(frozen=True)
class ProblemRow:
    """A record the reader could not split into cells (a CSV quote left open): reported as
    a bad row at the line it starts on, with its text as read."""

    problem: RowError
    raw_text: str


def _csv_problem(error: csv.Error) -> str:
    """The csv module's English message, said in Chinese where we know it."""
    text = str(error)
    if "field larger than field limit" in text:
        return f"某个单元格超过 {csv.field_size_limit():,} 个字符（可能缺少一个结束引号）"
    if "new-line character seen in unquoted field" in text:
        return "未加引号的单元格中有换行符（请用引号括起含换行的单元格）"
    if "NUL" in text or "line contains NUL" in text:
        return "文件中含有 NUL 字符（可能不是文本文件）"
    if "unexpected end of data" in text:
        return UNCLOSED_QUOTE
    if "expected after" in text:
        return (f"{UNCLOSED_QUOTE}（结束引号后应紧跟逗号或换行；单元格内的引号须写成两个 \"\"）")
    return f"无法解析（{text}）"


# A quote opened in a cell and never closed takes every following line into that cell: the
# file's next rows silently become one abstract. The record it starts is refused instead.
UNCLOSED_QUOTE = ("引号没有闭合：从此行开始的带引号单元格一直没有结束引号，"
                  "后面的行都被并入了这个单元格")
SWALLOWED_LINE = ("引号可能没有闭合：此行开始的带引号单元格跨越了多行，而其中第 {line} 行本身就是"
                  "完整的一行数据（{width} 列）。若确是单元格内的换行，请检查引号是否成对")
# Text of a refused record kept for the rejects file (a swallowed file could be megabytes).
RAW_TEXT_MAX = 2_000


class _Lines:
    """The physical lines the csv reader takes, remembered until the record they make is
    handed on: what a refused record's text is, and what the open-quote check looks at."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.taken: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        return line

    def hand_on(self) -> list[str]:
        taken, self.taken = self.taken, []
        return taken


def _swallowed_line(lines: list[str], width: int) -> int | None:
    """The offset of a continuation line of a multi-line record that is by itself a complete
    record of the header's width, or None. A cell's own line breaks rarely leave exactly
    width - 1 bare commas on a line; an open quote's swallowed rows always do. Narrow headers
    (fewer than 3 columns) are left alone: one comma in an abstract would look like a row."""
    if len(lines) < 2 or width < 3:
        return None
    for offset, line in enumerate(lines[1:], start=1):
        if '"' in line:
            continue
        cells = next(csv.reader([line.rstrip("\r\n")]), [])
        if len(cells) == width and not is_blank(cells[0]):
            return offset
    return None


def read_csv(schema: SideSchema, data: bytes, name: str) -> SourceTable:
    return _tabular_table(schema, _csv_records(_decode(data, name)), "csv")


def _csv_records(text: str) -> Iterator[tuple[int, list[str] | ProblemRow]]:
    """(line the record starts on, its cells) for each CSV record. strict: a quote closed
    and then followed by text, or still open at the end of the file, is an error, not a
    cell that quietly runs on; either is a bad row at the line its record starts on."""
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)
    end_of_previous = 0
    width: int | None = None
    while True:
        start = end_of_previous + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            taken = lines.hand_on()
            raw = "".join(taken)[:RAW_TEXT_MAX]
            if end_of_previous == 0 or width is None:
                raise ImportFileError(
                    f"第 {start} 行附近 CSV 格式错误：{_csv_problem(error)}") from error
            yield start, ProblemRow(RowError(start, None, "整行", _csv_problem(error)), raw)
            end_of_previous = reader.line_num
            continue
        taken = lines.hand_on()
        end_of_previous = reader.line_num
        if width is None:
            if any(not is_blank(cell) for cell in cells):
                width = len(cells)  # the header
        else:
            swallowed = _swallowed_line(taken, width)
            if swallowed is not None:
                message = SWALLOWED_LINE.format(line=start + swallowed, width=width)
                raw = "".join(taken)[:RAW_TEXT_MAX]
                yield start, ProblemRow(RowError(start, None, "整行", message), raw)
                continue
        # A quoted cell may span lines: a row is numbered by the line it starts on.
        yield start, cells


def read_jsonl(schema: SideSchema, data: bytes, name: str) -> SourceTable:
    text = _decode(data, name)
    rows: list[SourceRow] = []
    unknown: list[str] = []
    # Only \n ends a record: str.splitlines would also split on U+2028 inside a JSON string.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            message = f"不是有效的 JSON：{error.msg}（第 {error.colno} 列）"
            problem = RowError(line_number, None, "整行", message)
            rows.append(SourceRow(line_number, {}, {}, [problem], raw_text=line))
            continue
        if not isinstance(record, dict):
            problem = RowError(line_number, None, "整行", "每行应是一个 JSON 对象 {…}")
            rows.append(SourceRow(line_number, {}, {}, [problem], raw_text=line))
            continue
        rows.append(record_row(schema, line_number, record, unknown))
    if not rows:
        raise ImportFileError("文件为空：没有任何数据行。")
    return SourceTable("jsonl", rows, unknown_columns=unknown)


def record_row(
    schema: SideSchema, line: int, record: Mapping[str, Any], unknown: list[str]
) -> SourceRow:
    values: dict[str, Any] = {}
    problems: list[RowError] = []
    seen: dict[str, str] = {}
    for key, value in record.items():
        spec = schema.field_for_column(str(key))
        if spec is None:
            if key not in unknown:
                unknown.append(str(key))
            continue
        if spec.name in seen:
            message = f"键「{seen[spec.name]}」和「{key}」都对应此字段，只能保留一个"
            problems.append(RowError(line, spec.name, spec.label, message))
            continue
        seen[spec.name] = str(key)
        values[spec.name] = value
    return SourceRow(line, dict(record), values, problems)


def records_table(
    schema: SideSchema, records: Iterable[Mapping[str, Any]], first_line: int = 1
) -> SourceTable:
    """In-memory records (column → value, any accepted column name) read like a JSONL file;
    record i is line `first_line + i`."""
    unknown: list[str] = []
    rows = [
        record_row(schema, first_line + offset, record, unknown)
        for offset, record in enumerate(records)
    ]
    return SourceTable("records", rows, unknown_columns=unknown)


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
        table = _tabular_table(schema, _sheet_rows(workbook.worksheets[0], path), "xlsx")
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


def read_source(schema: SideSchema, path: Path) -> SourceTable:
    """Every row of a .jsonl, .csv or .xlsx file, read now, as a list."""
    table = stream_source(schema, path)
    try:
        table.rows = list(table.rows)
    finally:
        table.close()
    return table


def stream_source(schema: SideSchema, path: Path) -> SourceTable:
    """A file's rows as a one-pass iterator (see `SourceTable`); whole-file problems (type,
    size, encoding, header) are raised now, bad rows travel with the rows."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        hint = "请另存为 .xlsx。" if suffix == ".xls" else ""
        raise ImportFileError(
            f"不支持的文件类型「{suffix or '无扩展名'}」：只接受 .jsonl、.csv、.xlsx。{hint}"
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise ImportFileError(f"找不到文件 {path}") from error
    if size == 0:
        raise ImportFileError(f"《{path.name}》是空文件。")
    if size > MAX_FILE_BYTES:
        raise ImportFileError(
            f"《{path.name}》有 {size / 1024 / 1024:.0f} MB，超过上限 "
            f"{MAX_FILE_BYTES // 1024 // 1024} MB；请分成几个文件导入。"
        )
    if suffix == ".xlsx":
        return read_xlsx(schema, path)
    data = path.read_bytes()
    if suffix == ".csv":
        return read_csv(schema, data, path.name)
    return read_jsonl(schema, data, path.name)
