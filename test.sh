#!/usr/bin/env bash
# One command for the whole suite (lint + tests, real-model tests included).
set -euo pipefail
. "$(dirname "$0")/scripts/bootstrap.sh"
ruff check .
exec python -m pytest "$@"
