"""The coverage-guided fuzz run of the CSV, JSONL and XLSX readers, bounded for CI.

About a minute in all (XLSX gets half: it is the slowest reader and the richest format), each
reader in its own libFuzzer process (tests.fuzz.run). A crash (any exception but the readers'
refusals) or an input slower than tests.fuzz.run.TIMEOUT_S fails the test with the input's
path and its bytes in base64, so a CI log is enough to reproduce it; keep it as a regression
input (tests/data/fuzz/regressions/, see test_regressions.py). Longer runs: scripts/fuzz.sh.

The runner's own tests plant a crash and a hang in the selftest target: a fuzz test that
could never fail would prove nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.harness import SELFTEST_CRASH, SELFTEST_HANG
from tests.fuzz.run import RSS_LIMIT_MB, fuzz

BUDGET_S = {"csv": 15, "jsonl": 15, "xlsx": 30}
# The suite's runs take fixed random choices: what CI explores in its minute is what was
# explored here before a commit (a prefix of it on a slower machine), so a finding fails the
# run that brought it, not a later unrelated one. scripts/fuzz.sh explores at random.
CI_SEED = 20261201


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(BUDGET_S))
def test_reader_survives_a_fuzz_run(fmt: str, tmp_path: Path) -> None:
    result = fuzz(fmt, BUDGET_S[fmt], tmp_path, seed=CI_SEED)
    print(result.summary())
    found = "\n".join(finding.describe() for finding in result.findings)
    assert not result.findings, f"{result.summary()}\n{found}\n{result.log[-6000:]}"
    assert result.returncode == 0, result.log[-6000:]
    # The run really ran: the seeds were read and the readers' code was reached.
    assert result.stats.get("execs", 0) > 100 and result.stats.get("cov", 0) > 100, \
        result.log[-3000:]


def _seeded(tmp_path: Path, data: bytes) -> list[Path]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "planted").write_bytes(data)
    return [seeds]


@pytest.mark.parametrize(("planted", "kind"), [(SELFTEST_CRASH, "crash"),
                                               (SELFTEST_HANG, "timeout")])
def test_the_runner_reports_a_crash_and_a_slow_input(tmp_path: Path, planted: bytes,
                                                     kind: str) -> None:
    result = fuzz("selftest", 5, tmp_path / "work", seeds=_seeded(tmp_path, planted))
    assert [finding.kind for finding in result.findings] == [kind], result.log[-3000:]
    assert result.findings[0].path.read_bytes() == planted
    assert result.returncode != 0
    assert "base64" in result.findings[0].describe()


def test_the_runner_reports_a_quiet_run_as_clean(tmp_path: Path) -> None:
    result = fuzz("selftest", 2, tmp_path / "work", seeds=_seeded(tmp_path, b"plain"))
    assert result.findings == [] and result.returncode == 0, result.log[-3000:]
    assert result.stats["execs"] > 0


def test_a_big_parent_does_not_count_against_the_fuzzers_memory_limit(tmp_path: Path) -> None:
    """The suite's pytest holds the model (GBs) when it starts a fuzz run; the run's memory
    limit must measure the fuzzer alone (CI failed every fuzz test on this once)."""
    ballast = bytearray(RSS_LIMIT_MB * 1024 * 1024 + 256 * 1024 * 1024)
    for offset in range(0, len(ballast), 4096):  # touch every page: resident, not reserved
        ballast[offset] = 1
    result = fuzz("selftest", 2, tmp_path / "work", seeds=_seeded(tmp_path, b"plain"))
    del ballast
    assert result.findings == [] and result.returncode == 0, result.log[-3000:]
