"""Run the fuzz target for one reader for a while and say what it found.

    python -m tests.fuzz.run [--seconds N] [--formats csv,jsonl,xlsx] [--work DIR] [--promote]

Each reader's run starts from the committed seeds (tests/data/fuzz/seeds/<format>/), from
every file of its format elsewhere under tests/data (the hostile files, the tiny corpus) and
from whatever an earlier run in the same --work folder added to its corpus, so longer runs by
scripts/fuzz.sh build on each other. A crash (any exception but the readers' refusals) or an
input slower than TIMEOUT_S[format] stops the run; the input is left under
<work>/<format>/artifacts/, and --promote copies it to tests/data/fuzz/regressions/, where
tests/fuzz/test_regressions.py runs it from then on.
The exit status is 1 when anything was found. tests/fuzz/test_fuzz.py runs it for a minute.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.targets import SCRATCH_ROOT

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "fuzz"
SEEDS = DATA / "seeds"
REGRESSIONS = DATA / "regressions"
TEST_DATA = REPO / "tests" / "data"
# Inputs are kept small: the readers' size cap is tested elsewhere, and small inputs make
# many executions. A 64 KB .xlsx still holds thousands of cells.
MAX_LEN = {"csv": 16 * 1024, "jsonl": 16 * 1024, "xlsx": 64 * 1024, "selftest": 64}
# What counts as a slow input. Reading an input of MAX_LEN bytes takes milliseconds when the
# work follows what the file holds; these bounds leave room for a loaded CI machine and only
# catch work that grows with something the file merely declares (the XLSX whose
# dimension claims 16,384 columns, or row numbers near Excel's last row).
TIMEOUT_S = {"csv": 5, "jsonl": 5, "xlsx": 10, "selftest": 2}
# libFuzzer's own memory bound (the process is Python + openpyxl + SQLAlchemy, ~150 MB).
RSS_LIMIT_MB = 2048
FUZZ_ENV = {"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
# Tokens libFuzzer splices into inputs (for xlsx, into the XML parts), with every column name
# the schema accepts, so a mutated header still maps to fields and the rows get read.
_TOKENS = {
    "csv": ['"', '""', ",", "\r\n", "\n", "\r", "\ufeff", "\x00", ";", "\t", ',"', '",'],
    "jsonl": ["{", "}", '":', '"', "null", "true", "[]", "{}", "1e400", "-0", "\\u0000",
              "\\ud800", "\\n", "\n"],
    "xlsx": ['<row r="1">', "</row>", 'r="1048576"', 'r="1048577"', '<c r="XFD1"', 't="s"',
             't="inlineStr"', 't="b"', 't="e"', 't="d"', 't="str"', 't="n"', 's="1"', "<is><t>",
             "</t></is>", "<v>", "</v>", "<f>", "</f>", "<si><t>", "</t></si>", "<sheetData>",
             "</sheetData>", "<sheetData/>", '<dimension ref="A1:XFD1048576"/>',
             '<mergeCell ref="A1:XFD1048576"/>', "<!DOCTYPE", "<!ENTITY", "&amp;", "&#0;",
             "_x0000_", "_xD800_", 'xml:space="preserve"', '<sheet name="', 'r:id="rId1"',
             'date1904="1"', 'numFmtId="14"', '<numFmt formatCode="', 'count="', "45000",
             "1e308", "-1e308", "NaN", "2958466", "-1"],
}
_STATUS = re.compile(r"^#(\d+)\s+(?:DONE|NEW|REDUCE|pulse|INITED)\s+cov: (\d+) ft: (\d+) "
                     r"corp: (\d+)/")


@dataclass
class Finding:
    kind: str  # crash | timeout | oom | slow-unit | leak
    path: Path

    def describe(self) -> str:
        data = self.path.read_bytes()
        # In full up to 16 KB (every csv/jsonl input; most xlsx ones): a CI log is enough
        # to get the file back (base64 -d) and keep it as a regression input.
        return (f"{self.kind}: {self.path} ({len(data)} bytes)\n"
                f"  base64: {base64.b64encode(data[:16384]).decode()}"
                f"{' …' if len(data) > 16384 else ''}")


@dataclass
class FuzzRun:
    fmt: str
    seconds: float  # wall time of the run, start-up included
    returncode: int
    log: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        stats = self.stats
        return (f"{self.fmt}: {self.seconds:.0f} s, {stats.get('execs', 0):,} executions "
                f"({stats.get('exec_per_sec', 0):,}/s), coverage {stats.get('cov', 0)} edges / "
                f"{stats.get('ft', 0)} features, corpus {stats.get('corpus', 0)} inputs, "
                f"peak RSS {stats.get('peak_rss_mb', 0)} MB, slowest input "
                f"{stats.get('slowest_s', 0)} s, findings: {len(self.findings)}")


# Linux keeps a process's peak RSS across exec, and a child started by vfork + exec inherits
# its parent's: launched straight from a pytest that has loaded the model (4 GB), libFuzzer's
# -rss_limit_mb check saw 4 GB before its first input and called every run an out-of-memory.
# A shell that forks the harness gives it a peak of its own.
_FRESH_PEAK_RSS = ["sh", "-c", '"$@"; exit $?', "fuzz-harness"]


def harness_command(fmt: str, flags: list[str]) -> list[str]:
    return [*_FRESH_PEAK_RSS, sys.executable, "-m", "tests.fuzz.harness", fmt, *flags]


def write_dictionary(fmt: str, path: Path) -> Path:
    """libFuzzer's -dict file for `fmt`: format tokens and the schema's column names."""
    from corpora.schema import schema_for

    tokens = list(_TOKENS.get(fmt, []))
    for side in ("need", "result"):
        for spec in schema_for(side).fields:  # type: ignore[arg-type]
            tokens.extend((spec.name, *spec.aliases))
    if fmt == "jsonl":
        tokens = [*tokens[:len(_TOKENS["jsonl"])],
                  *(f'"{name}":' for name in tokens[len(_TOKENS["jsonl"]):])]
    lines = []
    for token in dict.fromkeys(tokens):
        escaped = "".join(chr(byte) if 32 <= byte < 127 and byte not in b'"\\' else
                          f"\\x{byte:02x}" for byte in token.encode("utf-8"))
        lines.append(f'"{escaped}"')
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def _parse_stats(log: str) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in log.splitlines():
        match = _STATUS.match(line)
        if match:
            stats.update(execs=int(match[1]), cov=int(match[2]), ft=int(match[3]),
                         corpus=int(match[4]))
        for key, name in (("number_of_executed_units", "execs"),
                          ("average_exec_per_sec", "exec_per_sec"),
                          ("peak_rss_mb", "peak_rss_mb"), ("slowest_unit_time_sec", "slowest_s")):
            if line.startswith(f"stat::{key}:"):
                stats[name] = int(line.split(":")[-1])
    return stats


def fuzz(fmt: str, seconds: int, work: Path, *, seeds: list[Path] | None = None,
         timeout_s: int | None = None, seed: int | None = None) -> FuzzRun:
    """Fuzz `fmt`'s reader for `seconds` (libFuzzer's -max_total_time; start-up and the seed
    corpus' first pass come on top), corpus and findings kept under work/<fmt>/. With `seed`,
    libFuzzer's random choices are fixed, so a run explores the same inputs in the same order
    and a shorter (or slower) run explores a prefix of a longer one."""
    root = work / fmt
    corpus, artifacts = root / "corpus", root / "artifacts"
    scratch = Path(tempfile.mkdtemp(prefix=f"fuzz-{fmt}-", dir=SCRATCH_ROOT))
    for folder in (corpus, artifacts):
        folder.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    if seeds is None:
        seeds = [folder for folder in (SEEDS / fmt, project_files(fmt, root / "project-files"))
                 if folder.is_dir()]
    timeout = timeout_s or TIMEOUT_S[fmt]
    flags = [f"-max_total_time={seconds}", f"-timeout={timeout}",
             f"-report_slow_units={timeout}", f"-rss_limit_mb={RSS_LIMIT_MB}",
             f"-max_len={MAX_LEN[fmt]}", f"-artifact_prefix={artifacts}/",
             "-print_final_stats=1", "-print_pcs=0"]
    if seed is not None:
        flags.append(f"-seed={seed}")
    if fmt in _TOKENS:
        flags.append(f"-dict={write_dictionary(fmt, root / 'fuzz.dict')}")
    started = time.monotonic()
    try:
        finished = subprocess.run(
            harness_command(fmt, [*flags, str(corpus), *map(str, seeds)]), cwd=REPO,
            env={**os.environ, **FUZZ_ENV, "FUZZ_SCRATCH": str(scratch)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            # libFuzzer stops itself; this only guards against a harness that never starts.
            timeout=seconds + 10 * timeout + 300, check=False)
        log, returncode = finished.stdout, finished.returncode
    except subprocess.TimeoutExpired as expired:
        log = (expired.stdout or "") if isinstance(expired.stdout, str) else ""
        log, returncode = log + "\n(the fuzzer did not stop in time)", -1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    findings = [Finding(path.name.split("-")[0] if not path.name.startswith("slow-unit")
                        else "slow-unit", path)
                for path in sorted(set(artifacts.iterdir()) - before)]
    return FuzzRun(fmt, time.monotonic() - started, returncode, log, findings, _parse_stats(log))


def project_files(fmt: str, folder: Path) -> Path:
    """The files of format `fmt` under tests/data (the hostile files of the issues, the tiny
    corpus...), copied afresh into `folder`: libFuzzer reads seeds by folder, and those
    folders mix formats. Files added there later are seeds from then on."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in sorted(TEST_DATA.rglob(f"*.{fmt}")):
        if DATA not in path.parents and path.is_file():
            shutil.copyfile(path, folder / f"{path.parent.name}-{path.name}")
    return folder


def promote(finding: Finding, fmt: str) -> Path:
    """Copy a finding into the regression inputs, named by format, kind and content hash."""
    data = finding.path.read_bytes()
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    target = REGRESSIONS / f"{fmt}-{finding.kind}-{hashlib.sha1(data).hexdigest()[:12]}.{fmt}"
    target.write_bytes(data)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="per reader (default 300)")
    parser.add_argument("--formats", default="csv,jsonl,xlsx")
    parser.add_argument("--work", type=Path, default=REPO / "var" / "fuzz")
    parser.add_argument("--promote", action="store_true",
                        help="copy what is found to tests/data/fuzz/regressions/")
    args = parser.parse_args(argv)
    found = False
    for fmt in args.formats.split(","):
        result = fuzz(fmt, args.seconds, args.work)
        print(result.summary(), flush=True)
        if result.returncode != 0 and not result.findings:
            print(result.log[-4000:])
            found = True
        for finding in result.findings:
            found = True
            print(finding.describe())
            if args.promote:
                print(f"  kept as {promote(finding, fmt).relative_to(REPO)}")
        if result.findings:
            print(result.log[-4000:])
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
