"""The atheris fuzz target: `python -m tests.fuzz.harness FORMAT [libFuzzer flags] CORPUS...`.

FORMAT is csv, jsonl or xlsx (the reader under test, see tests.fuzz.targets), or selftest (a
target with a planted crash and a planted hang, for the tests of the runner). The importer
(`corpora`), openpyxl and zipfile are imported under atheris' instrumentation, so their
branches guide the fuzzer; for xlsx the structure-aware mutator (tests.fuzz.xlsx_mutator)
mutates the XML inside the zip. An input that raises anything but the readers' refusals is a
crash: libFuzzer writes it under -artifact_prefix as crash-<sha1>; one that runs past
-timeout seconds is written as timeout-<sha1>. Normally started by tests.fuzz.run.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import atheris

SELFTEST_CRASH = b"PLANTED-CRASH"
SELFTEST_HANG = b"PLANTED-HANG"


def _selftest(data: bytes) -> None:
    if SELFTEST_CRASH in data:
        raise RuntimeError("planted crash")
    if SELFTEST_HANG in data:
        time.sleep(3600)


def _relauncher(fmt: str) -> str:
    """An executable that starts this target again: libFuzzer's -merge (and -fork) run the
    target as argv[0] in child processes, and a module run with -m is no executable."""
    script = (f"#!/bin/sh\ncd {shlex.quote(os.getcwd())} && exec {shlex.quote(sys.executable)} "
              f"-m tests.fuzz.harness {shlex.quote(fmt)} \"$@\"\n")
    path = Path(tempfile.gettempdir()) / f"tests-fuzz-harness-{fmt}-{os.getuid()}.sh"
    if not path.is_file() or path.read_text() != script:
        temporary = path.with_suffix(f".{os.getpid()}")
        temporary.write_text(script)
        temporary.chmod(0o755)
        os.replace(temporary, path)
    return str(path)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    fmt = argv[1]
    flags = [_relauncher(fmt), *argv[2:]]
    if fmt == "selftest":
        atheris.Setup(flags, _selftest)
        atheris.Fuzz()
        return
    with atheris.instrument_imports(include=["corpora", "openpyxl", "et_xmlfile", "zipfile"]):
        import openpyxl  # noqa: F401

        import corpora.importer  # noqa: F401 - every reader module, instrumented
    from tests.fuzz import targets, xlsx_mutator

    if fmt not in targets.FORMATS:
        raise SystemExit(f"FORMAT is one of {', '.join(targets.FORMATS)} or selftest")
    # atheris.Fuzz() ends the process itself, so the folder each input is written to is the
    # runner's to make and remove (FUZZ_SCRATCH); by hand, a fresh temporary one.
    scratch = Path(os.environ.get("FUZZ_SCRATCH") or tempfile.mkdtemp(prefix="fuzz-"))
    scratch.mkdir(parents=True, exist_ok=True)

    def test_one_input(data: bytes) -> None:
        targets.check_bytes(fmt, data, scratch)

    if fmt == "xlsx":
        def mutate(data: bytes, max_size: int, seed: int) -> bytes:
            return xlsx_mutator.mutate_xlsx(data, max_size, seed, atheris.Mutate)

        atheris.Setup(flags, test_one_input, custom_mutator=mutate)
    else:
        atheris.Setup(flags, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
