"""Serve the site with waitress: what `./run.sh` runs (`python -m web.serve`).

    python -m web.serve [--host 127.0.0.1] [--port 5000] [--threads 8]

Why waitress and not gunicorn's threads: a gunicorn gthread worker hands each new connection
to one of its threads, which then blocks reading that connection's headers. Eight connections
that never finish their headers hold all eight threads, and `GET /login` waits for as long as
they stay open (the slow-client fault of issue 12). Waitress reads every request in its one IO
thread (`poll`, no thread per connection) and a worker thread only ever sees a request that
has fully arrived, body included, so a slow or idle client holds a socket, never a thread.
`tests/system/test_slow_clients.py` proves it; `benchmarks/hostile_load.py` measures it against
gunicorn. Several processes behind a buffering proxy (nginx in front of gunicorn) stay the
advice for production: README.

Waitress answers some requests itself, before the app sees them (a malformed request line,
headers too large, a body over the limit, an app that fails mid-response). Those answers carry
the headers the app sets on every response: `web.security.SECURITY_HEADERS` (CSP,
X-Frame-Options, ..., `Cache-Control: no-store`), the very dict the app's own hook applies.
"""

from __future__ import annotations

import argparse
import logging
import resource
from collections.abc import Sequence
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

from settings import Settings
from web.security import MAX_HEADER_BYTES, SECURITY_HEADERS

# Idle and slow clients cost a socket each: allow many. Waitress's default (100) is what a
# hundred idle connections would exhaust, and past the limit it stops accepting altogether.
CONNECTION_LIMIT = 1000
# A connection that sends nothing for this long is closed (waitress checks every 30 s).
CHANNEL_TIMEOUT_S = 60
# Room above the upload cap for the multipart framing and the form's other fields, so that an
# upload a little over the cap gets the app's own page (413, in Chinese, naming the limit);
# only a body far beyond it is refused by waitress before it is read.
BODY_SLACK_BYTES = 256 * 1024


def channel_class(headers: Sequence[tuple[str, str]]) -> type[HTTPChannel]:
    """Waitress's channel whose own error answers carry `headers`."""
    extra = list(headers)

    class SecureErrorTask(ErrorTask):
        def execute(self) -> None:
            # Before the parent writes the body: the first write sends the headers.
            self.response_headers.extend(extra)
            super().execute()

    class SecureChannel(HTTPChannel):
        error_task_class = SecureErrorTask

    return SecureChannel


def adjustments(settings: Settings, *, host: str, port: int, threads: int) -> dict[str, Any]:
    """Waitress's settings for this site (waitress.adjustments.Adjustments)."""
    return {
        "host": host, "port": port, "threads": threads,
        "connection_limit": CONNECTION_LIMIT,
        "channel_timeout": CHANNEL_TIMEOUT_S,
        # select() cannot watch a descriptor numbered 1024 or more.
        "asyncore_use_poll": True,
        "max_request_header_size": MAX_HEADER_BYTES,
        "max_request_body_size": settings.max_upload_bytes + BODY_SLACK_BYTES,
        # No proxy is trusted: X-Forwarded-* from a client are dropped, never believed.
        "trusted_proxy": None,
        "clear_untrusted_proxy_headers": True,
        "expose_tracebacks": False,
    }


def _allow_descriptors(wanted: int) -> None:
    """Raise this process's soft limit on open files towards `wanted` (the hard limit caps
    it): many systems start at 1024, fewer than the connection limit plus the files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def create(app: Flask, *, host: str, port: int, threads: int) -> Any:
    """A waitress server for `app`, bound and not yet running (`.run()` serves)."""
    settings: Settings = app.extensions["settings"]
    _allow_descriptors(CONNECTION_LIMIT + 256)
    sockets: dict[int, Any] = {}
    server = create_server(app, map=sockets,
                           **adjustments(settings, host=host, port=port, threads=threads))
    channel = channel_class(list(SECURITY_HEADERS.items()))
    # One listening server per address `host` resolves to; none accepts before `.run()`.
    listeners = [s for s in sockets.values() if isinstance(s, BaseWSGIServer)]
    if not listeners:
        raise RuntimeError("waitress made no listening server: its internals changed")
    for listener in listeners:
        listener.channel_class = channel
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8,
                        help="worker threads running the app (connections are not limited "
                             "by them)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("waitress").setLevel(logging.INFO)
    from web.wsgi import app  # loads the model and repairs the indexes first

    server = create(app, host=args.host, port=args.port, threads=args.threads)
    server.print_listen("waitress 在 http://{}:{} 上服务")
    server.run()


if __name__ == "__main__":
    main()
