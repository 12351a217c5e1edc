#!/usr/bin/env bash
# One command for the whole suite: lint + tests, real-model and browser tests included.
set -euo pipefail
. "$(dirname "$0")/scripts/bootstrap.sh"
. "$(dirname "$0")/scripts/system-packages.sh"
ruff check .
lint-imports
exec python -m pytest "$@"
