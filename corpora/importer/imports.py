"""The importer's entry points: a file, or records already in memory, read, checked and
written through the caller's session, which commits."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from corpora.importer.readers import records_table, stream_source
from corpora.importer.rejects import default_rejects_path, write_rejects
from corpora.importer.report import ImportReport
from corpora.importer.writer import import_table
from corpora.schema import schema_for
from matcher.types import Side


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
    max_rows: int | None = None,
) -> ImportReport:
    """Import a .jsonl, .csv or .xlsx file of needs or results through `session`.

    The file is read as it is checked, never held as rows: memory grows with the good rows
    kept for writing, not with the file.
    - Any bad row and `keep_valid` false: raises `RowsRejected` (its `.report` lists the
      first `REJECTED_SHOWN_MAX` in full and counts all of them by reason); nothing is
      written.
    - `keep_valid`: the good rows are written; the bad ones go to `rejects_path` (default: next
      to the file, `<name>.rejects.csv` or `.jsonl`) with their line number and reason.
    - `organisation`: owner of rows that name none; `lock_organisation` rejects rows that name
      another one (an office uploading its own results).
    - `max_rows`: at most this many good rows (an upload); more raise `ImportFileError`.
    - Whole-file problems (type, size, encoding, header) raise `ImportFileError`.
    The caller commits; the import is one transaction.
    """
    file_path = Path(path)
    schema = schema_for(side)
    table = stream_source(schema, file_path)
    try:
        report = import_table(
            session, side, table, source=file_path.name, keep_valid=keep_valid,
            organisation=organisation, lock_organisation=lock_organisation, sample=sample,
            progress=progress, max_rows=max_rows,
        )
    finally:
        table.close()
    if report.rejected_total:
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
    table = records_table(schema_for(side), records, first_line)
    return import_table(
        session, side, table, source=source, keep_valid=keep_valid, organisation=organisation,
        lock_organisation=lock_organisation, sample=sample, progress=progress,
    )
