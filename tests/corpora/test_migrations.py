"""The migrations and the models describe the same schema, on both databases, and go down."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.command import downgrade
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from corpora.db import alembic_config, create_engine_for, upgrade
from corpora.models import Base


def test_models_match_migrations(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_platform_migration_goes_down_and_up(db_url: str) -> None:
    upgrade(db_url)
    downgrade(alembic_config(db_url), "0001")
    engine = create_engine_for(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert "users" not in tables and "needs" in tables
    finally:
        engine.dispose()
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        assert {"users", "shortlists", "shortlist_lots", "audit_log", "match_feedback"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_released_savepoint_still_rolls_back_with_its_transaction(engine) -> None:  # noqa: ANN001
    """On SQLite this needs BEGIN to be emitted by us (corpora.db): pysqlite's own handling
    would make the RELEASE a commit."""
    from sqlalchemy import func, select

    from corpora.db import PlatformSession
    from corpora.models import Organisation

    with PlatformSession(engine) as session:
        with session.begin_nested():
            session.add(Organisation(name="保存点单位", kind="firm"))
        session.rollback()
    with PlatformSession(engine) as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 0
