"""Database fixtures: every DB test runs on SQLite and on the PostgreSQL server.

PostgreSQL is `DATABASE_TEST_URL` or postgresql+psycopg://127.0.0.1:5432/test. The server is
shared, so each test gets a schema of its own (via search_path in the URL) and drops it after.
If the server is missing, the postgres cases fail: they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from corpora.db import create_engine_for, upgrade
from tests.support.databases import postgres_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables yet): a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a migrated database, on both backends."""
    upgrade(db_url)
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database only: for the many checks whose outcome cannot depend on
    the backend (validation happens before any SQL), kept fast."""
    url = f"sqlite:///{tmp_path / 'fast.sqlite'}"
    upgrade(url)
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


@pytest.fixture
def site(db_url: str, tmp_path: Path):  # noqa: ANN201 - tests.support.web.Site
    """The seeded web site on both databases (CSRF off; see test_web_security for CSRF)."""
    from tests.support.web import make_site

    site = make_site(db_url, tmp_path / "home", WTF_CSRF_ENABLED=False)
    yield site
    site.app.extensions["matcher.engine"].dispose()


@pytest.fixture
def sqlite_site(tmp_path: Path):  # noqa: ANN201
    """The seeded site on SQLite only, for checks that cannot depend on the backend."""
    from tests.support.web import make_site

    site = make_site(f"sqlite:///{tmp_path / 'site.sqlite'}", tmp_path / "home",
                     WTF_CSRF_ENABLED=False)
    yield site
    site.app.extensions["matcher.engine"].dispose()


@pytest.fixture
def csrf_site(tmp_path: Path):  # noqa: ANN201
    """The seeded site on SQLite with CSRF checks on, as in production (the other sites turn
    them off so tests can post forms without reading a token first)."""
    from tests.support.web import make_site

    site = make_site(f"sqlite:///{tmp_path / 'csrf.sqlite'}", tmp_path / "home")
    yield site
    site.app.extensions["matcher.engine"].dispose()


@pytest.fixture(params=["faiss", pytest.param("milvus", marks=pytest.mark.milvus)])
def index_backend(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    """Where a store keeps its vectors: FAISS in the process, or a Milvus Lite file (the
    embedded Milvus; the same code talks to a Milvus server by URI)."""
    from matcher import vector_milvus
    from matcher.index_backend import IndexBackend

    if request.param == "faiss":
        yield IndexBackend()
        return
    uri = str(tmp_path / "milvus" / "indexes.db")
    (tmp_path / "milvus").mkdir(exist_ok=True)
    yield IndexBackend("milvus", uri)
    vector_milvus.close_client(uri)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Milvus with SQLite only: where the vectors live and which database holds the records
    are independent (the index sync reads the same `ItemSource` from either), so the Milvus
    variants of the database tests are not generated again for PostgreSQL."""
    kept = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_milvus = "milvus" in (params.get("index_backend"), params.get("workers"),
                                 params.get("backend"))
        if not (on_milvus and params.get("db_url") == "postgresql"):
            kept.append(item)
    items[:] = kept
