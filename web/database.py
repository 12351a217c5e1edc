"""The database as a Flask resource: one session per request, closed at teardown."""

from __future__ import annotations

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext
from sqlalchemy.orm import Session, sessionmaker

from corpora.db import create_engine_for, make_sessionmaker, upgrade
from web.settings import settings_of


def sessions() -> sessionmaker[Session]:
    return current_app.extensions["matcher.sessions"]


def get_db() -> Session:
    if "db" not in g:
        g.db = sessions()()
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or migrate the database schema (Alembic upgrade to head)."""
    upgrade(current_app.extensions["matcher.engine"])
    click.echo(f"数据库已是最新结构: {settings_of(current_app).database_url}")


def init_app(app: Flask) -> None:
    engine = create_engine_for(settings_of(app).database_url)
    # The schema is always brought to head before anything reads it.
    upgrade(engine)
    app.extensions["matcher.engine"] = engine
    app.extensions["matcher.sessions"] = make_sessionmaker(engine)
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
