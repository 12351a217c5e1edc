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

- `corpora.importer.readers`: a file (or in-memory records) → rows of raw values, by type:
  `csv_reader` (strict quoting), `xlsx_reader` (only the cells the sheet holds), JSONL there;
  `tables` holds what they share (rows, decoding, the header mapped to fields);
- `corpora.importer.xlsx_guard`: what an .xlsx may contain, checked before openpyxl opens it;
- `corpora.importer.rows`: a row's values checked, its organisation and re-import key found;
- `corpora.importer.writer`: `import_table`, the upserts behind every import;
- `corpora.importer.imports`: `import_file` and `import_records`, the entry points;
- `corpora.importer.rejects`: the rejects file of a `keep_valid` import;
- `corpora.importer.report`: `ImportReport` and the importer's errors;
- `corpora.importer.cli`: the command line.
"""

from corpora.importer.cli import main
from corpora.importer.imports import import_file, import_records
from corpora.importer.readers import (
    MAX_FILE_BYTES,
    RAW_TEXT_MAX,
    SUPPORTED_SUFFIXES,
    SourceRow,
    SourceTable,
    read_csv,
    read_jsonl,
    read_source,
    read_xlsx,
    records_table,
    stream_source,
)
from corpora.importer.rejects import (
    REJECT_LINE_COLUMN,
    REJECT_RAW_COLUMN,
    REJECT_REASON_COLUMN,
    default_rejects_path,
    write_rejects,
)
from corpora.importer.report import (
    REASON_OTHER,
    REASONS_MAX,
    REJECTED_SHOWN_MAX,
    ImportFileError,
    ImportProblem,
    ImportReport,
    RejectedRow,
    RowsRejected,
    reason_of,
)
from corpora.importer.rows import PreparedRow
from corpora.importer.writer import PROGRESS_MIN_ROWS, RecordKey, import_table
from corpora.importer.xlsx_guard import (
    EXCEL_MAX_COLUMNS,
    EXCEL_MAX_ROWS,
    XLSX_MAX_MEMBERS,
    XLSX_MAX_RATIO,
    XLSX_MAX_UNCOMPRESSED,
    XLSX_PROLOG_BYTES,
    XLSX_RATIO_MIN_BYTES,
    check_xlsx_archive,
)

__all__ = [
    "EXCEL_MAX_COLUMNS",
    "EXCEL_MAX_ROWS",
    "MAX_FILE_BYTES",
    "PROGRESS_MIN_ROWS",
    "RAW_TEXT_MAX",
    "REASONS_MAX",
    "REASON_OTHER",
    "REJECTED_SHOWN_MAX",
    "REJECT_LINE_COLUMN",
    "REJECT_RAW_COLUMN",
    "REJECT_REASON_COLUMN",
    "SUPPORTED_SUFFIXES",
    "XLSX_MAX_MEMBERS",
    "XLSX_MAX_RATIO",
    "XLSX_MAX_UNCOMPRESSED",
    "XLSX_PROLOG_BYTES",
    "XLSX_RATIO_MIN_BYTES",
    "ImportFileError",
    "ImportProblem",
    "ImportReport",
    "PreparedRow",
    "RecordKey",
    "RejectedRow",
    "RowsRejected",
    "SourceRow",
    "SourceTable",
    "check_xlsx_archive",
    "default_rejects_path",
    "import_file",
    "import_records",
    "import_table",
    "main",
    "read_csv",
    "read_jsonl",
    "read_source",
    "read_xlsx",
    "reason_of",
    "records_table",
    "stream_source",
    "write_rejects",
]
