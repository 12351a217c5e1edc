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
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


@dataclass
class SourceRow:
    line: int
    original: dict[str, Any]  # column (as written in the file) → value
    fields: dict[str, Any]  # canonical field name → raw value
    problems: list[RowError] = field(default_factory=list)  # found while reading
    raw_text: str | None = None  # a JSONL line that did not parse


@dataclass
class SourceTable:
    format: str  # "jsonl" | "csv" | "xlsx" | "records"
    rows: list[SourceRow]
    columns: list[str] = field(default_factory=list)  # tabular formats: the header
    unknown_columns: list[str] = field(default_factory=list)


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


def _tabular_rows(
    schema: SideSchema, numbered_cells: Iterable[tuple[int, Sequence[Any]]], format_name: str
) -> SourceTable:
    """Rows of cells (line number, values) whose first non-blank row is the header."""
    iterator = iter(numbered_cells)
    header: list[str] | None = None
    for _line, cells in iterator:
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
    rows: list[SourceRow] = []
    headless_with_data: set[str] = set()
    for line, cells in iterator:
        if all(is_blank(cell) for cell in cells):
            continue
        original: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for index, cell in enumerate(cells):
            if index >= len(names):
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
        rows.append(SourceRow(line, original, values))
    if not rows:
        raise ImportFileError("文件只有表头，没有数据行。")
    unknown.extend(f"{name}（无表头）" for name in sorted(headless_with_data))
    return SourceTable(format_name, rows, columns=names, unknown_columns=unknown)


def _csv_problem(error: csv.Error) -> str:
    """The csv module's English message, said in Chinese where we know it."""
    text = str(error)
    if "field larger than field limit" in text:
        return f"某个单元格超过 {csv.field_size_limit():,} 个字符（可能缺少一个结束引号）"
    if "new-line character seen in unquoted field" in text:
        return "未加引号的单元格中有换行符（请用引号括起含换行的单元格）"
    if "NUL" in text or "line contains NUL" in text:
        return "文件中含有 NUL 字符（可能不是文本文件）"
    return f"无法解析（{text}）"


def read_csv(schema: SideSchema, data: bytes, name: str) -> SourceTable:
    text = _decode(data, name)

    def numbered() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""))
        end_of_previous = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise ImportFileError(
                    f"第 {end_of_previous + 1} 行附近 CSV 格式错误：{_csv_problem(error)}"
                ) from error
            # A quoted cell may span lines: a row is numbered by the line it starts on.
            yield end_of_previous + 1, cells
            end_of_previous = reader.line_num

    return _tabular_rows(schema, numbered(), "csv")


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
_OPENPYXL_ERRORS = (*ZIP_READ_ERRORS, KeyError, IndexError, TypeError, AttributeError,
                    SyntaxError, ArithmeticError)


def read_xlsx(schema: SideSchema, path: Path) -> SourceTable:
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
        sheet = workbook.worksheets[0]

        def numbered() -> Iterator[tuple[int, list[Any]]]:
            rows = iter(sheet.iter_rows())
            while True:
                try:
                    cells = next(rows)
                except StopIteration:
                    return
                except _OPENPYXL_ERRORS as error:
                    raise xlsx_problem(path, "的工作表内容已损坏，无法读取。请在 Excel 中打开并"
                                             "另存为 .xlsx 后再导入。") from error
                # Empty cells carry no row number; a row with none of them is skipped anyway.
                line = next((cell.row for cell in cells if hasattr(cell, "row")), None)
                if line is None:
                    continue
                yield line, [_xlsx_cell(getattr(cell, "value", None)) for cell in cells]

        return _tabular_rows(schema, numbered(), "xlsx")
    finally:
        workbook.close()


def read_source(schema: SideSchema, path: Path) -> SourceTable:
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
