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

# Findings whose fix is pending, by file name, with the reason (none now). Fixed, both 500s
# on upload found on 2026-12-01: a zip whose central directory asks for "version needed to
# extract" 23.5 (zipfile.ZipFile() raised NotImplementedError past check_xlsx_archive), and a
# [Content_Types].xml declaring encoding="UTF-4" (expat's LookupError escaped the guard's
# scan, then openpyxl's load_workbook).
OPEN: dict[str, str] = {}


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
