"""The rejects file of a `keep_valid` import: each bad row with its original values, its line
number and the reason, in a file the user can fix and import again."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from corpora.importer.readers import SourceRow, SourceTable
from corpora.importer.report import RejectedRow

# Column names the rejects file adds around a row's original values.
REJECT_LINE_COLUMN = "行号"
REJECT_REASON_COLUMN = "错误原因"
REJECT_RAW_COLUMN = "原始内容"


def rejected_original(row: SourceRow) -> dict[str, Any]:
    """What the rejects file shows of a bad row: its cells, or a JSONL line that did not
    parse as it was."""
    if row.raw_text is not None:
        return {REJECT_RAW_COLUMN: row.raw_text}
    return dict(row.original)


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
