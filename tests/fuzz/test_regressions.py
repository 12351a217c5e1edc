"""Every input the fuzzer found (tests/data/fuzz/regressions/) stays fixed: run through the
readers as a needs and as a results file, each is refused cleanly (ImportProblem) or read,
its rows checked and its rejects written, within the fuzzer's time bound for its format.

A file is named <format>-<kind>-<sha1 prefix>.<format>, kind being what libFuzzer called it
(crash, timeout...). `python -m tests.fuzz.run --promote` adds new ones. A finding whose fix
belongs to another change is listed in OPEN with the reason, as a strict xfail: the test
starts failing (XPASS) the day it is fixed, so the entry is removed then.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.run import REGRESSIONS, TIMEOUT_S
from tests.fuzz.targets import FORMATS, check_bytes, deadline

# Findings whose fix is pending, by file name, with the reason. Fixed: the first XLSX finding
# (2026-12-01), a zip whose central directory asks for "version needed to extract" 23.5,
# made zipfile.ZipFile() raise NotImplementedError past check_xlsx_archive (a 500 on
# upload); the guard now catches ZIP_READ_ERRORS when it opens the archive.
OPEN: dict[str, str] = {
    # Found after 50 s of XLSX fuzzing on 50f232b: [Content_Types].xml declares
    # encoding="UTF-4". expat asks Python for that codec and the LookupError escapes
    # xlsx_guard._scan_sheet_part (it catches ExpatError only), a 500 on upload. With the
    # guard fixed, openpyxl's load_workbook raises the same LookupError, which
    # readers._OPENPYXL_ERRORS (KeyError, IndexError, not their base LookupError) misses too.
    "xlsx-crash-649c3e9d7f2b.xlsx": "LookupError (unknown XML encoding) escapes "
                                    "xlsx_guard._scan_sheet_part and read_xlsx",
}


def _inputs() -> list[object]:
    files = sorted(path for path in REGRESSIONS.glob("*.*") if path.suffix[1:] in FORMATS)
    return [pytest.param(path, id=path.name, marks=[pytest.mark.xfail(
        reason=OPEN[path.name], strict=True)] if path.name in OPEN else []) for path in files]


@pytest.mark.parametrize("path", _inputs())
def test_found_input_is_refused_or_read_in_bounded_time(path: Path, tmp_path: Path) -> None:
    fmt = path.suffix[1:]
    with deadline(TIMEOUT_S[fmt]):
        outcomes = check_bytes(fmt, path.read_bytes(), tmp_path)
    assert len(outcomes) == 2, outcomes


def test_every_regression_input_is_a_known_format() -> None:
    """A file the parametrisation above would skip (a typo in its suffix) is an error."""
    stray = [path.name for path in REGRESSIONS.iterdir()
             if path.suffix[1:] not in FORMATS and path.name != "README.md"]
    assert stray == []
    assert set(OPEN) <= {path.name for path in REGRESSIONS.iterdir()}
