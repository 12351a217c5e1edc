"""What the fuzzer checks: one file's bytes through the importer's reading path, with no
database, and the one rule that tells a crash from a refusal.

The readers' contract (corpora/importer/readers.py): a file they cannot take raises
`ImportProblem` (in practice `ImportFileError`: type, size, encoding, header, a damaged or
hostile .xlsx); a row they cannot take travels as `RowError`s and is reported, never raised.
So here an `ImportProblem` is a clean refusal and every other exception is a crash. Each input
is read as a needs file and as a results file (the header decides which side it fits; the
other side refuses it at the header, cheaply), every row is checked as the importer checks it
before writing (`prepare_row`) and the bad rows are written to a rejects file, as an import
with `--keep-valid` would.

An input that takes too long is a fault too; that bound is the caller's (libFuzzer's
-timeout in the harness, `deadline` in the regression tests).
"""

from __future__ import annotations

import os
import signal
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corpora.importer.readers import SourceTable, read_source
from corpora.importer.rejects import default_rejects_path, write_rejects
from corpora.importer.report import ImportProblem, RejectedRow
from corpora.importer.rows import prepare_row
from corpora.schema import schema_for

FORMATS = ("csv", "jsonl", "xlsx")
# The organisation an office's upload gets by default: rows that name none are still checked.
DEFAULT_ORGANISATION = "测试大学"
# tmpfs where there is one: the rejects file is fsynced, and the fuzzer writes every input.
SCRATCH_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None


class SlowInput(Exception):
    """An input ran past its deadline (raised inside the reader by SIGALRM)."""


def check_table(side: str, table: SourceTable, scratch: Path) -> tuple[int, int]:
    """Every row checked as `import_table` checks it; the bad ones written as rejects.
    `table.rows` is iterated once (a reader may hand rows on as it reads them, and raise a
    refusal part-way). Returns (rows, bad rows)."""
    schema = schema_for(side)  # type: ignore[arg-type]
    rejected: list[RejectedRow] = []
    total = 0
    for row in table.rows:
        total += 1
        prepared, errors = prepare_row(schema, row, DEFAULT_ORGANISATION, False)
        if prepared is None:
            rejected.append(RejectedRow(row.line, row.original, errors))
    if rejected:
        write_rejects(default_rejects_path(scratch / f"in.{table.format}"), table, rejected)
    return total, len(rejected)


def read_file(path: Path) -> list[str]:
    """Read `path` as needs and as results; what happened to each side, in words. Raises only
    what is a crash (anything but `ImportProblem`)."""
    outcomes: list[str] = []
    with warnings.catch_warnings():
        # openpyxl warns about odd parts (unknown extensions, bad styles); in production a
        # warning is a log line, not a failure, and pytest would turn it into an exception.
        warnings.simplefilter("ignore")
        for side in ("need", "result"):
            try:
                table = read_source(schema_for(side), path)  # type: ignore[arg-type]
                rows, bad = check_table(side, table, path.parent)
            except ImportProblem as problem:
                outcomes.append(f"{side}: refused: {problem}")
                continue
            outcomes.append(f"{side}: {rows} rows, {bad} bad")
    return outcomes


@contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-", dir=SCRATCH_ROOT) as name:
        yield Path(name)


def check_bytes(fmt: str, data: bytes, scratch: Path) -> list[str]:
    """`data` written as an upload of format `fmt` in `scratch`, then `read_file`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    path = scratch / f"上传.{fmt}"
    path.write_bytes(data)
    return read_file(path)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise `SlowInput` in the main thread if the block runs past `seconds` (Linux/macOS:
    SIGALRM). Python checks signals between bytecodes, so a slow pure-Python reader is
    interrupted where it is."""

    def expire(_signum: int, _frame: object) -> None:
        raise SlowInput(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
