#!/usr/bin/env bash
# One command for a fresh machine: install, build the model, import and index the demo
# corpus, create the demo accounts, then serve the site at http://127.0.0.1:5000.
# Finished steps are skipped on later runs. HOST, PORT, WORKERS and THREADS override the defaults.
set -euo pipefail
. "$(dirname "$0")/scripts/bootstrap.sh"
flask --app web setup-demo
echo "==> 服务已启动: http://${HOST:-127.0.0.1}:${PORT:-5000}  (Ctrl-C 停止; 演示账号见 README)" >&2
exec gunicorn --workers "${WORKERS:-1}" --threads "${THREADS:-8}" \
  --bind "${HOST:-127.0.0.1}:${PORT:-5000}" --timeout 120 --access-logfile - web.wsgi:app
