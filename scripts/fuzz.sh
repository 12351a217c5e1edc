#!/usr/bin/env bash
# The longer fuzz run of the file readers (CI runs a minute of it: tests/fuzz/test_fuzz.py).
#
#   scripts/fuzz.sh [SECONDS] [FORMATS]     e.g. scripts/fuzz.sh 1800 xlsx
#
# SECONDS per reader (default 600), FORMATS a comma list of csv,jsonl,xlsx (default all).
# Runs niced, one reader after another; the corpus grows in var/fuzz/<format>/corpus, so a
# second run goes on where the first stopped. Whatever is found is copied to
# tests/data/fuzz/regressions/ (tests/fuzz/test_regressions.py runs it from then on) and the
# script exits 1. The summary lines give time, executions, coverage and findings per reader.
set -euo pipefail
. "$(dirname "$0")/bootstrap.sh"
exec nice -n "${FUZZ_NICE:-10}" python -m tests.fuzz.run --seconds "${1:-600}" \
  --formats "${2:-csv,jsonl,xlsx}" --promote
