"""Where shared read-only data and per-install runtime state live.

Both are resolved relative to the repository root so a fresh checkout works without
configuration; the environment variables exist for CI, containers and tests.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def matcher_home() -> Path:
    """Runtime state (models, indexes, databases): `MATCHER_HOME`, else `<repo>/var`."""
    configured = os.environ.get("MATCHER_HOME", "").strip()
    return Path(configured).expanduser() if configured else REPO_ROOT / "var"


def shared_dir() -> Path:
    """Shared read-only data (corpora, eval sets, seed texts).

    `MATCHER_SHARED`, else `<repo>/datasets`, which ships with the code so a clone needs
    nothing beside it."""
    configured = os.environ.get("MATCHER_SHARED", "").strip()
    return Path(configured).expanduser() if configured else REPO_ROOT / "datasets"


def models_dir() -> Path:
    return matcher_home() / "models"
