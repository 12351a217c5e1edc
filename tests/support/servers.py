"""Site processes for the system tests: their environment, a seeded database, the flask CLI.

Shared by test_workers (two gunicorn servers) and test_crash (processes killed outright).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.web import seed
from web import create_app

REPO = Path(__file__).resolve().parents[2]
SECRET = "workers-test-secret"
# Workers save their index files this long after an edit (in the background).
SAVE_SECONDS = 0.5


def site_env(home: Path, db_url: str) -> dict[str, str]:
    """The environment of a site process: its own home and database, the fake encoder."""
    env = dict(os.environ)
    env.update(MATCHER_HOME=str(home), DATABASE_URL=db_url, MATCHER_MODEL="fake",
               MATCHER_SECRET_KEY=SECRET, PYTHONPATH=str(REPO),
               INDEX_SAVE_SECONDS=str(SAVE_SECONDS))
    return env


def seed_site(home: Path, db_url: str) -> dict[str, Any]:
    """Migrate and seed the database (tests.support.web), building no index."""
    app = create_app({"TESTING": True, "MATCHER_HOME": home, "DATABASE_URL": db_url,
                      "MATCHER_MODEL": "fake", "SECRET_KEY": SECRET})
    try:
        return seed(app)
    finally:
        app.extensions["matcher.engine"].dispose()


def flask_cli(env: dict[str, str], *args: str, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "web", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)
