"""Fresh PostgreSQL schemas on the shared test server, one per use (see tests/conftest.py).

PostgreSQL is `DATABASE_TEST_URL` or postgresql+psycopg://127.0.0.1:5432/test. If the server is
missing, the caller fails: postgres cases are never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

POSTGRES_TEST_URL = os.environ.get(
    "DATABASE_TEST_URL", "postgresql+psycopg://127.0.0.1:5432/test"
)


def postgres_schema_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema's URL (the schema is dropped afterwards)."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_TEST_URL, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        pytest.fail(f"PostgreSQL test server unreachable at {POSTGRES_TEST_URL}: {error}")
    url = make_url(POSTGRES_TEST_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# The same schema as a `with` block, for tests that need a second database beside a fixture's.
postgres_schema = contextmanager(postgres_schema_url)
