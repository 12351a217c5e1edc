"""Rebuild the fuzzer's seed corpus from the files the project's own tests import.

    python -m tests.fuzz.collect_seeds

runs the import tests (tests/corpora/test_import.py, test_hostile_import.py and
tests/web/test_malicious_uploads.py, SQLite only) with this module as a pytest plugin: every
file they hand to a reader is copied, by content hash, to a scratch folder. libFuzzer's
-merge then keeps only the files that add coverage, into tests/data/fuzz/seeds/<format>/,
which is committed, so a fuzz run starts from what the tests already know to be interesting
(valid files of both sides, every hostile .xlsx the guard refuses, broken encodings...).
The files kept under tests/data (tests/data/hostile, tests/data/tiny) are read by every run
as they are (tests.fuzz.run.project_files), not copied here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz.run import FUZZ_ENV, MAX_LEN, REPO, SEEDS, harness_command

SOURCES = ["tests/corpora/test_import.py", "tests/corpora/test_hostile_import.py",
           "tests/web/test_malicious_uploads.py"]
_TARGET = "FUZZ_SEED_CAPTURE"  # the scratch folder, handed to the pytest run


def _keep(fmt: str, data: bytes) -> None:
    folder = Path(os.environ[_TARGET]) / fmt
    if not data or len(data) > MAX_LEN[fmt]:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pytest_configure(config: pytest.Config) -> None:
    """Wrap the three readers where read_source finds them (module globals)."""
    from corpora.importer import readers

    read_csv, read_jsonl, read_xlsx = readers.read_csv, readers.read_jsonl, readers.read_xlsx

    def csv_copy(schema: Any, data: bytes, name: str) -> Any:
        _keep("csv", data)
        return read_csv(schema, data, name)

    def jsonl_copy(schema: Any, data: bytes, name: str) -> Any:
        _keep("jsonl", data)
        return read_jsonl(schema, data, name)

    def xlsx_copy(schema: Any, path: Path) -> Any:
        _keep("xlsx", Path(path).read_bytes())
        return read_xlsx(schema, path)

    readers.read_csv, readers.read_jsonl, readers.read_xlsx = csv_copy, jsonl_copy, xlsx_copy


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-seeds-") as scratch:
        env = {**os.environ, _TARGET: scratch, "HOSTILE_EXAMPLES": "80"}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.fuzz.collect_seeds",
                        "-m", "not postgres", "-p", "no:cacheprovider", *SOURCES],
                       cwd=REPO, env=env, check=False)
        for fmt in ("csv", "jsonl", "xlsx"):
            target = SEEDS / fmt
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            found = Path(scratch) / fmt
            command = harness_command(fmt, ["-merge=1", str(target), str(found)])
            subprocess.run(command, cwd=REPO, env={**os.environ, **FUZZ_ENV,
                                                   "FUZZ_SCRATCH": f"{scratch}/run"},
                           check=True)
            print(f"{fmt}: {len(list(found.iterdir()))} captured, "
                  f"{len(list(target.iterdir()))} kept")


if __name__ == "__main__":
    main()
