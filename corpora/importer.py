"""Import needs or results from JSONL, CSV or XLSX into the database.

All or nothing by default: every row is read and checked before anything is written, and a file
with any bad row raises `RowsRejected`, whose report lists each bad row with its line number and
reason. With `keep_valid=True` the good rows are imported and the bad ones written to a rejects
file. Re-importing a file is idempotent: a row is matched to the record it created before (by
organisation + 编号 when it has one, else by organisation + normalised title + content hash)
and only updated when something changed.

The importer writes through the caller's session and never commits: the caller's transaction
(`corpora.db.session_scope`) makes the whole import one transaction.

    python -m corpora.importer needs.xlsx --side need [--keep-valid] [--organisation 某公司]
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import json
import os
import re
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from corpora.items import model_for
from corpora.models import Need, Organisation, Result, dedup_key_of, join_list
from corpora.schema import (
    NAME_MAX,
    RowError,
    SideSchema,
    encoding_problem,
    is_blank,
    schema_for,
    validate_values,
)
from matcher.types import Side

SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".xlsx")
# Beyond this the file is refused before it is parsed (a 200 MB upload is a mistake or worse).
MAX_FILE_BYTES = 50 * 1024 * 1024
# Files with at least this many rows get a progress bar (on a terminal).
PROGRESS_MIN_ROWS = 1000
# Column names the rejects file adds around a row's original values.
REJECT_LINE_COLUMN = "行号"
REJECT_REASON_COLUMN = "错误原因"
REJECT_RAW_COLUMN = "原始内容"

_ORGANISATION_FIELDS = {
    "need": ("firm", "firm_city", "firm_tier"),
    "result": ("institution", "institution_city", "institution_kind"),
}


class ImportProblem(ValueError):
    """Base of the importer's errors: the message is meant for the user (Chinese)."""


class ImportFileError(ImportProblem):
    """The file as a whole cannot be imported: wrong type, empty, no header, wrong encoding."""


class RowsRejected(ImportProblem):
    """Some rows are bad, so nothing was imported; `report` lists every bad row."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclass
class RejectedRow:
    line: int
    original: dict[str, Any]  # the row as it was in the file: column → value
    errors: list[RowError]

    @property
    def reason(self) -> str:
        return "；".join(f"{error.label}：{error.message}" for error in self.errors)


@dataclass
class ImportReport:
    side: Side
    source: str
    total_rows: int = 0
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    unchanged_ids: list[int] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    organisations_created: list[str] = field(default_factory=list)
    written: bool = False  # rows went to the session (the caller's commit makes them stick)
    rejects_path: Path | None = None

    @property
    def created(self) -> int:
        return len(self.created_ids)

    @property
    def updated(self) -> int:
        return len(self.updated_ids)

    @property
    def unchanged(self) -> int:
        return len(self.unchanged_ids)

    @property
    def changed_ids(self) -> list[int]:
        """Rows whose embedded text may have changed: what an indexer has to (re)encode."""
        return sorted(self.created_ids + self.updated_ids)

    @property
    def errors(self) -> list[RowError]:
        return [error for row in self.rejected for error in row.errors]

    def summary(self, max_errors: int = 50) -> str:
        label = schema_for(self.side).label
        lines = [
            f"导入{label}《{self.source}》：共 {self.total_rows} 行，新增 {self.created} 条，"
            f"更新 {self.updated} 条，未变 {self.unchanged} 条，拒绝 {len(self.rejected)} 行。"
        ]
        if self.rejected and not self.written:
            lines.append(
                f"文件中有 {len(self.rejected)} 行有错误，未导入任何数据。请修改后重新导入："
            )
        elif self.rejected:
            lines.append("以下行未导入：")
        errors = self.errors
        lines.extend(f"  {error}" for error in errors[:max_errors])
        if len(errors) > max_errors:
            lines.append(f"  ……另有 {len(errors) - max_errors} 处错误未列出")
        if self.rejects_path is not None:
            lines.append(f"被拒绝的行已写入 {self.rejects_path}")
        if self.unknown_columns:
            lines.append("未识别的列（已忽略）：" + "、".join(self.unknown_columns))
        if self.organisations_created:
            lines.append("新建单位：" + "、".join(self.organisations_created))
        return "\n".join(lines)


# --- reading files ------------------------------------------------------------------------


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
        rows.append(_record_row(schema, line_number, record, unknown))
    if not rows:
        raise ImportFileError("文件为空：没有任何数据行。")
    return SourceTable("jsonl", rows, unknown_columns=unknown)


def _record_row(
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


_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, str):
        # Excel stores characters XML cannot hold (control characters) as _xHHHH_; decode
        # them so the checks see what the user's cell really contains.
        return _OOXML_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), value)
    return value


# --- what an .xlsx may contain, checked before openpyxl opens it ------------------------------
#
# An .xlsx is a zip of XML parts. openpyxl would inflate whatever the zip holds and parse it,
# so the zip directory is inspected first. The sizes it declares can be trusted as bounds:
# Python's zipfile never returns more than a member's declared size (a member that inflates
# further fails its CRC check), so a lying directory cannot make us inflate more.
# Total uncompressed size: generous for real spreadsheets (XML is verbose; a 5 MB upload
# rarely inflates past 50 MB), far below what a zip bomb unpacks to.
XLSX_MAX_UNCOMPRESSED = 100 * 1024 * 1024
# Inflation ratio refused for the whole archive and for any member over XLSX_RATIO_MIN_BYTES:
# real sheets compress 5-30 times; a bomb compresses thousands of times.
XLSX_MAX_RATIO = 100
XLSX_RATIO_MIN_BYTES = 1024 * 1024
XLSX_MAX_MEMBERS = 10_000
# How much of each XML part's start is read to check its prolog (no DOCTYPE / entities).
XLSX_PROLOG_BYTES = 64 * 1024
_MACRO_MARKERS = ("vbaproject", "macroenabled", "activex")
# External workbook links (and DDE), and data connections / web queries that refresh from
# outside when the file is opened in Excel.
_EXTERNAL_MARKERS = ("externallink", "connections.xml", "connections+xml", "querytable")
# What reading a damaged zip member can raise (CRC, truncation, encryption, odd methods).
_ZIP_READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
                    ValueError, zlib.error)
_NOT_XLSX = ("不是有效的 XLSX 文件（文件已损坏，或并非 Excel 2007 及以后的 .xlsx 格式；"
             "旧版 .xls 请在 Excel 中另存为 .xlsx）。")


def _xlsx_problem(path: Path, message: str) -> ImportFileError:
    return ImportFileError(f"《{path.name}》{message}")


def _xml_prolog_problem(head: bytes) -> str | None:
    """None if the XML part starts with an ordinary prolog (declaration, comments,
    processing instructions) and then its root element; a reason otherwise. OOXML never
    uses a DOCTYPE, and entity declarations are how "billion laughs" files blow up."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head[1:2] == b"\x00" \
            or head[:1] == b"\x00":
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        rest = text[position:]
        if rest.startswith("<?"):
            end = text.find("?>", position)
        elif rest.startswith("<!--"):
            end = text.find("-->", position)
        elif rest.startswith("<!"):
            return "含有 DOCTYPE 或实体声明"
        elif len(rest) >= 2 and rest[0] == "<" and (rest[1].isalpha() or rest[1] in "_:"):
            return None
        else:
            return "不是正常的 XML 部件"
        if end < 0:
            return "XML 部件的开头过长或不完整"
        position = end + 2


def check_xlsx_archive(path: Path) -> None:
    """Refuse, with a clear message, an .xlsx that is a zip bomb, carries macros (an .xlsm
    renamed), links to other files, or declares XML entities; before any XML is parsed."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise _xlsx_problem(path, _NOT_XLSX) from error
    try:
        with archive:
            _check_members(path, archive)
    except ImportProblem:
        raise
    except _ZIP_READ_ERRORS as error:
        raise _xlsx_problem(path, _NOT_XLSX) from error


def _check_members(path: Path, archive: zipfile.ZipFile) -> None:
    members = archive.infolist()
    if len(members) > XLSX_MAX_MEMBERS:
        raise _xlsx_problem(path, f"包含 {len(members)} 个部件，超过上限 {XLSX_MAX_MEMBERS}，"
                                  "不像正常的 Excel 文件，已拒绝。")
    total = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    swollen = [member for member in members if member.file_size > XLSX_RATIO_MIN_BYTES
               and member.file_size > XLSX_MAX_RATIO * max(member.compress_size, 1)]
    if total > XLSX_MAX_UNCOMPRESSED or swollen or (
            total > XLSX_RATIO_MIN_BYTES and total > XLSX_MAX_RATIO * max(packed, 1)):
        raise _xlsx_problem(
            path, f"解压后共 {total / 1024 / 1024:,.0f} MB（压缩前 "
            f"{packed / 1024 / 1024:,.1f} MB），超过上限 "
            f"{XLSX_MAX_UNCOMPRESSED // 1024 // 1024} MB 或压缩比异常（可能是“压缩炸弹”），"
            "已拒绝。请删去无关的工作表、图片后另存，或分成几个文件导入。")
    names = [member.filename.replace("\\", "/").lower() for member in members]
    content_types = ""
    if "[content_types].xml" in names:
        info = members[names.index("[content_types].xml")]
        with archive.open(info) as handle:
            content_types = handle.read(XLSX_PROLOG_BYTES * 4).decode(
                "utf-8", errors="replace").lower()
    relations = ""
    for info, name in zip(members, names, strict=True):
        if name.endswith(".rels"):
            with archive.open(info) as handle:
                relations += handle.read(XLSX_PROLOG_BYTES).decode(
                    "utf-8", errors="replace").lower()
    if any(marker in name for name in names for marker in _MACRO_MARKERS) or \
            any(marker in content_types for marker in _MACRO_MARKERS):
        raise _xlsx_problem(
            path, "含有宏（VBA）或 ActiveX 控件，是启用宏的工作簿（.xlsm）改名而来。为安全起见"
            "不予导入：请在 Excel 中另存为“Excel 工作簿（*.xlsx）”后再上传。")
    if any(marker in text for text in (content_types, relations, *names)
           for marker in _EXTERNAL_MARKERS):
        raise _xlsx_problem(
            path, "含有指向其他文件的外部链接（外部引用、DDE 或数据连接）。为安全起见不予导入："
            "请在 Excel 中用“数据 → 编辑链接 → 断开链接”并删除数据连接，保存后再上传。")
    for info, name in zip(members, names, strict=True):
        if not name.endswith((".xml", ".rels")) or info.is_dir():
            continue
        with archive.open(info) as handle:
            problem = _xml_prolog_problem(handle.read(XLSX_PROLOG_BYTES))
        if problem:
            raise _xlsx_problem(path, f"的部件 {info.filename} {problem}，不是正常的 Excel "
                                      "文件，已拒绝。")


# What openpyxl raises on a file that passed the zip checks but whose XML or values are
# broken (bad XML is a SyntaxError, impossible dates an OverflowError, missing parts a
# KeyError...): each means "not a readable workbook" to the user, never a crash.
_OPENPYXL_ERRORS = (*_ZIP_READ_ERRORS, KeyError, IndexError, TypeError, AttributeError,
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
        raise _xlsx_problem(path, _NOT_XLSX) from error
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
                    raise _xlsx_problem(path, "的工作表内容已损坏，无法读取。请在 Excel 中打开并"
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


# --- checking rows ------------------------------------------------------------------------


@dataclass
class PreparedRow:
    line: int
    values: dict[str, Any]  # clean values of the fields the row has
    organisation: str
    key: tuple[str, ...]
    dedup_key: str


def _prepare(
    schema: SideSchema,
    source: SourceRow,
    default_organisation: str | None,
    lock_organisation: bool,
) -> tuple[PreparedRow | None, list[RowError]]:
    if source.raw_text is not None:
        return None, source.problems  # not even a record: its fields cannot be checked
    values, errors = validate_values(schema, source.line, source.fields)
    errors = source.problems + errors
    org_spec = schema.by_name(schema.organisation_field)
    organisation = values.get(org_spec.name) or default_organisation
    if organisation is None:
        message = "必填：行中没有单位名称，导入时也未指定单位"
        errors.append(RowError(source.line, org_spec.name, org_spec.label, message))
    elif lock_organisation and organisation != default_organisation:
        errors.append(
            RowError(
                source.line, org_spec.name, org_spec.label,
                f"只能导入本单位（{default_organisation}）的数据，此行属于「{organisation}」",
            )
        )
    if errors or organisation is None:
        return None, errors
    dedup_key = dedup_key_of(
        values["title"], values[schema.text_field], values.get("keywords") or ()
    )
    if values.get("external_id"):
        key = (organisation, "编号", values["external_id"])
    else:
        key = (organisation, "内容", dedup_key)
    return PreparedRow(source.line, values, organisation, key, dedup_key), []


# --- writing ------------------------------------------------------------------------------


def _model_value(name: str, value: Any) -> Any:
    if name in ("keywords", "inventors", "transfer_modes"):
        return join_list(value) if value else None
    return value


def _model_fields(side: Side, values: Mapping[str, Any]) -> dict[str, Any]:
    organisation_fields = _ORGANISATION_FIELDS[side]
    return {
        name: _model_value(name, value)
        for name, value in values.items()
        if name not in organisation_fields
    }


# Rows per flush, and keys per IN (...) lookup: few round trips, any database's parameter limit.
_BATCH = 500

RecordKey = tuple[int, str, str]  # (organisation id, "编号" | "内容", external id | dedup key)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _BATCH):
        yield values[start : start + _BATCH]


class _Writer:
    """Upserts prepared rows. Existing organisations and records are looked up in batches up
    front, and records created here are remembered, so the loop itself issues no SELECTs."""

    def __init__(self, session: Session, schema: SideSchema, sample: bool, report: ImportReport):
        self.session = session
        self.schema = schema
        self.model = model_for(schema.side)
        self.sample = sample
        self.report = report
        self.organisations: dict[str, Organisation] = {}
        self.records: dict[RecordKey, Need | Result] = {}

    def preload(self, rows: Sequence[PreparedRow]) -> None:
        names = sorted({row.organisation for row in rows})
        for chunk in _chunks(names):
            for organisation in self.session.scalars(
                select(Organisation).where(Organisation.name.in_(chunk))
            ):
                self.organisations[organisation.name] = organisation
        wanted: dict[tuple[int, str], list[str]] = {}
        for row in rows:
            organisation = self.organisations.get(row.organisation)
            if organisation is not None:
                kind, value = self._key_parts(row)
                wanted.setdefault((organisation.id, kind), []).append(value)
        model = self.model
        for (organisation_id, kind), values in wanted.items():
            column = model.external_id if kind == "编号" else model.dedup_key
            for chunk in _chunks(values):
                statement = (
                    select(model)
                    .where(model.organisation_id == organisation_id, column.in_(chunk))
                    .order_by(model.id)
                )
                for record in self.session.scalars(statement):
                    self._remember(record, organisation_id)

    @staticmethod
    def _key_parts(row: PreparedRow) -> tuple[str, str]:
        external_id = row.values.get("external_id")
        return ("编号", external_id) if external_id else ("内容", row.dedup_key)

    def _remember(self, record: Need | Result, organisation_id: int, dedup_key: str = "") -> None:
        if record.external_id:
            self.records.setdefault((organisation_id, "编号", record.external_id), record)
        # The first of equal records, should an older import have left two.
        self.records.setdefault((organisation_id, "内容", dedup_key or record.dedup_key), record)

    def organisation(self, name: str, values: Mapping[str, Any]) -> Organisation:
        city_field, detail_field = _ORGANISATION_FIELDS[self.schema.side][1:]
        city = values.get(city_field)
        organisation = self.organisations.get(name)
        if organisation is None:
            kind = self.schema.default_organisation_kind
            tier = None
            if detail_field == "institution_kind":
                kind = values.get(detail_field) or kind
            else:
                tier = values.get(detail_field)
            organisation = Organisation(
                name=name, kind=kind, city=city, tier=tier, is_sample=self.sample
            )
            self.session.add(organisation)
            self.session.flush()  # its id keys the records remembered below
            self.report.organisations_created.append(name)
            self.organisations[name] = organisation
            return organisation
        # Only details a row states are taken over; blank cells leave them as they are.
        if city and organisation.city != city:
            organisation.city = city
        if detail_field == "firm_tier" and values.get(detail_field):
            organisation.tier = values[detail_field]
        return organisation

    def write(self, row: PreparedRow) -> tuple[str, Need | Result]:
        organisation = self.organisation(row.organisation, row.values)
        fields = _model_fields(self.schema.side, row.values)
        if fields.get("status") is None:
            # New records take the model's default (open / active); a blank status never
            # reopens or withdraws an existing one.
            fields.pop("status", None)
        kind, value = self._key_parts(row)
        record = self.records.get((organisation.id, kind, value))
        if record is None:
            # content_hash and dedup_key are set by the models' insert/update hooks.
            record = self.model(**fields, organisation=organisation)
            self.session.add(record)
            self._remember(record, organisation.id, row.dedup_key)
            return "created", record
        changed = {name: value for name, value in fields.items() if getattr(record, name) != value}
        if not changed:
            return "unchanged", record
        for name, value in changed.items():
            setattr(record, name, value)
        self._remember(record, organisation.id, row.dedup_key)
        return "updated", record


def _progress(iterable: Iterable[Any], total: int, description: str, progress: bool | None):
    # None: a bar for large files only; True: always. Either way tqdm (disable=None) stays
    # quiet when stderr is not a terminal, so logs and tests get no bar.
    disable: bool | None = None
    if progress is False or (progress is None and total < PROGRESS_MIN_ROWS):
        disable = True
    return tqdm(iterable, total=total, desc=description, unit="行", disable=disable)


def _checked_default_organisation(name: str) -> str:
    """The organisation given for the whole file (the CLI's --organisation, an office's own
    institution) passes the same checks a row's organisation cell does."""
    problem = encoding_problem(name)
    if problem:
        raise ImportFileError(f"指定的单位名称{problem}")
    name = " ".join(name.split())
    if not name:
        raise ImportFileError("指定的单位名称为空")
    if len(name) > NAME_MAX:
        raise ImportFileError(f"指定的单位名称超过 {NAME_MAX} 个字符")
    return name


def import_table(
    session: Session,
    side: Side,
    table: SourceTable,
    *,
    source: str,
    keep_valid: bool = False,
    organisation: str | None = None,
    lock_organisation: bool = False,
    sample: bool = False,
    progress: bool | None = None,
) -> ImportReport:
    """Check every row of `table`, then write them (all, or with `keep_valid` the good ones)."""
    if lock_organisation and not organisation:
        raise ValueError("lock_organisation needs the organisation to lock to")
    if organisation is not None:
        organisation = _checked_default_organisation(organisation)
    schema = schema_for(side)
    report = ImportReport(side=side, source=source, total_rows=len(table.rows))
    report.unknown_columns = list(table.unknown_columns)
    prepared: list[PreparedRow] = []
    first_line_of_key: dict[tuple[str, ...], int] = {}
    for source_row in _progress(table.rows, len(table.rows), "校验", progress):
        row, errors = _prepare(schema, source_row, organisation, lock_organisation)
        if row is not None and row.key in first_line_of_key:
            field_name = "external_id" if row.key[1] == "编号" else "title"
            spec = schema.by_name(field_name)
            what = "编号" if field_name == "external_id" else "标题和内容"
            message = f"{what}与第 {first_line_of_key[row.key]} 行重复"
            errors = [RowError(row.line, field_name, spec.label, message)]
            row = None
        if row is None:
            report.rejected.append(RejectedRow(source_row.line, _original(source_row), errors))
            continue
        first_line_of_key[row.key] = row.line
        prepared.append(row)
    if report.rejected and not keep_valid:
        raise RowsRejected(report)

    writer = _Writer(session, schema, sample, report)
    writer.preload(prepared)
    outcomes: list[tuple[str, Need | Result]] = []
    for number, row in enumerate(_progress(prepared, len(prepared), "写入", progress), 1):
        outcomes.append(writer.write(row))
        if number % _BATCH == 0:
            session.flush()  # batched INSERTs; bounded memory for pending rows
    session.flush()  # ids for the report
    for outcome, record in outcomes:
        getattr(report, f"{outcome}_ids").append(record.id)
    report.written = True
    return report


def _original(row: SourceRow) -> dict[str, Any]:
    if row.raw_text is not None:
        return {REJECT_RAW_COLUMN: row.raw_text}
    return dict(row.original)


def import_file(
    session: Session,
    path: str | os.PathLike[str],
    side: Side,
    *,
    keep_valid: bool = False,
    rejects_path: str | os.PathLike[str] | None = None,
    organisation: str | None = None,
    lock_organisation: bool = False,
    sample: bool = False,
    progress: bool | None = None,
) -> ImportReport:
    """Import a .jsonl, .csv or .xlsx file of needs or results through `session`.

    - Any bad row and `keep_valid` false: raises `RowsRejected` (its `.report` lists them all);
      nothing is written.
    - `keep_valid`: the good rows are written; the bad ones go to `rejects_path` (default: next
      to the file, `<name>.rejects.csv` or `.jsonl`) with their line number and reason.
    - `organisation`: owner of rows that name none; `lock_organisation` rejects rows that name
      another one (an office uploading its own results).
    - Whole-file problems (type, size, encoding, header) raise `ImportFileError`.
    The caller commits; the import is one transaction.
    """
    file_path = Path(path)
    schema = schema_for(side)
    table = read_source(schema, file_path)
    report = import_table(
        session, side, table, source=file_path.name, keep_valid=keep_valid,
        organisation=organisation, lock_organisation=lock_organisation, sample=sample,
        progress=progress,
    )
    if report.rejected:
        target = Path(rejects_path) if rejects_path is not None else default_rejects_path(file_path)
        write_rejects(target, table, report.rejected)
        report.rejects_path = target
    return report


def import_records(
    session: Session,
    side: Side,
    records: Iterable[Mapping[str, Any]],
    *,
    source: str = "records",
    first_line: int = 1,
    keep_valid: bool = False,
    organisation: str | None = None,
    lock_organisation: bool = False,
    sample: bool = False,
    progress: bool | None = None,
) -> ImportReport:
    """Import in-memory records (column → value, any accepted column name) like a JSONL file;
    record i is reported as line `first_line + i`."""
    schema = schema_for(side)
    unknown: list[str] = []
    rows = [
        _record_row(schema, first_line + offset, record, unknown)
        for offset, record in enumerate(records)
    ]
    table = SourceTable("records", rows, unknown_columns=unknown)
    return import_table(
        session, side, table, source=source, keep_valid=keep_valid, organisation=organisation,
        lock_organisation=lock_organisation, sample=sample, progress=progress,
    )


# --- the rejects file ---------------------------------------------------------------------


def default_rejects_path(path: Path) -> Path:
    suffix = ".jsonl" if path.suffix.lower() == ".jsonl" else ".csv"
    return path.with_name(f"{path.stem}.rejects{suffix}")


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def write_rejects(path: Path, table: SourceTable, rejected: Sequence[RejectedRow]) -> None:
    """Rejected rows with their original values, line number and reason: JSONL for JSONL
    sources, else CSV (UTF-8 with BOM, so Excel shows the Chinese). Written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO(newline="")
    if path.suffix.lower() == ".jsonl":
        for row in rejected:
            original = {key: _plain(value) if isinstance(value, date) else value
                        for key, value in row.original.items()}
            record = {REJECT_LINE_COLUMN: row.line, **original}
            record[REJECT_REASON_COLUMN] = [str(error) for error in row.errors]
            buffer.write(json.dumps(record, ensure_ascii=False) + "\n")
        encoding = "utf-8"
    else:
        columns = list(table.columns)
        for row in rejected:
            columns.extend(name for name in row.original if name not in columns)
        writer = csv.writer(buffer)
        writer.writerow([REJECT_LINE_COLUMN, *columns, REJECT_REASON_COLUMN])
        for row in rejected:
            cells = [_plain(row.original.get(column)) for column in columns]
            writer.writerow([row.line, *cells, row.reason])
        encoding = "utf-8-sig"
    # Lone surrogates cannot be encoded: keep them visible as \udXXX rather than fail.
    data = buffer.getvalue().encode(encoding, errors="backslashreplace")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- command line -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    from corpora.db import create_engine_for, session_scope, upgrade

    parser = argparse.ArgumentParser(
        prog="python -m corpora.importer",
        description="导入技术需求或科技成果（JSONL / CSV / XLSX）",
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--side", choices=("need", "result"), required=True,
                        help="need = 技术需求, result = 科技成果")
    parser.add_argument("--keep-valid", action="store_true",
                        help="导入正确的行，错误行写入拒绝文件")
    parser.add_argument("--rejects", type=Path, help="拒绝文件路径（默认与源文件同目录）")
    parser.add_argument("--organisation", help="行中未写单位时使用的单位名称")
    parser.add_argument("--database-url", help="默认：DATABASE_URL 或 MATCHER_HOME 下的 SQLite")
    args = parser.parse_args(argv)

    upgrade(args.database_url)
    engine = create_engine_for(args.database_url)
    try:
        with session_scope(engine) as session:
            report = import_file(
                session, args.path, args.side, keep_valid=args.keep_valid,
                rejects_path=args.rejects, organisation=args.organisation,
            )
    except RowsRejected as rejected:
        print(rejected.report.summary(max_errors=200), file=sys.stderr)
        return 1
    except ImportFileError as error:
        print(f"无法导入：{error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
