#!/usr/bin/env bash
# One command for a fresh machine: install, build the model, import and index the demo
# corpus, create the demo accounts, then serve the site at http://127.0.0.1:5000.
# Finished steps are skipped on later runs. HOST, PORT and THREADS override the defaults.
# The site is served by waitress (web/serve.py): one process whose IO thread buffers every
# request, so slow or idle clients hold a socket, not one of the THREADS that run the app.
# WORKERS is gone: several worker processes are gunicorn behind a buffering proxy (nginx),
# the production setup in the README.
set -euo pipefail
. "$(dirname "$0")/scripts/bootstrap.sh"
flask --app web setup-demo
echo "==> 服务已启动: http://${HOST:-127.0.0.1}:${PORT:-5000}  (Ctrl-C 停止; 演示账号见 README)" >&2
exec python -m web.serve --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}" \
  --threads "${THREADS:-8}"
