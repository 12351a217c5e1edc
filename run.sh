#!/usr/bin/env bash
# One command for a fresh machine: install, build the model, import and index the demo
# corpus, then answer a sample query. Finished steps are skipped on later runs.
set -euo pipefail
. "$(dirname "$0")/scripts/bootstrap.sh"
exec python -m matcher demo "$@"
