"""Reading a needs or results file (CSV, JSONL or XLSX) into rows of raw values.

`stream_source` picks the reader by the file's type after the whole-file checks (type, size);
CSV is read by `corpora.importer.csv_reader`, XLSX by `corpora.importer.xlsx_reader`, JSONL and
in-memory records here. Whole-file problems (type, size, encoding, header) raise
`ImportFileError`; bad rows travel with the rows (`corpora.importer.tables`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from corpora.importer.csv_reader import RAW_TEXT_MAX, read_csv
from corpora.importer.report import ImportFileError
from corpora.importer.tables import SourceRow, SourceTable, decode_text
from corpora.importer.xlsx_reader import read_xlsx
from corpora.schema import RowError, SideSchema

SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".xlsx")
# Beyond this the file is refused before it is parsed (a 200 MB upload is a mistake or worse).
MAX_FILE_BYTES = 50 * 1024 * 1024

__all__ = ["MAX_FILE_BYTES", "RAW_TEXT_MAX", "SUPPORTED_SUFFIXES", "SourceRow", "SourceTable",
           "read_csv", "read_jsonl", "read_source", "read_xlsx", "record_row", "records_table",
           "stream_source"]


def read_jsonl(schema: SideSchema, data: bytes, name: str) -> SourceTable:
    text = decode_text(data, name)
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
