"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against a live site.

Playwright's own browser downloads are never used: the tests launch the system Chromium,
which `.ci/run` installs from Debian's packages. Screenshots go to BROWSER_SCREENSHOTS
(default `<repo>/test-output/screenshots`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# scripts/screenshots.py repeats these two values: scripts never import the tests.
# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which this closed network refuses.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS", REPO_ROOT / "test-output" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """The app on 127.0.0.1 at a free port, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
