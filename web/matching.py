"""The matching service as a Flask resource: one `MatchService` per app, built on first use.

The service itself (locks, change-log catch-up, background saves, coverage) lives in
`service.matching` and is composed by `service.composition.build_service` from the app's
settings; this module only attaches it to the app and offers the `reindex` and `check-index`
commands.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from corpora.models import Need, Result
from matcher.indexing import SyncReport
from matcher.types import Side
from matcher.vector_index import IndexUnavailableError
from service.composition import build_service as compose_service
from service.matching import MatchService
from service.records import FieldErrors
from web.database import get_db
from web.settings import settings_of

_build_lock = threading.Lock()


def save_and_index(side: Side, write: Callable[[Session], Need | Result]
                   ) -> tuple[Need | Result | None, dict[str, str]]:
    """Run `write` in this request's session and commit; then make the row matchable at once.
    On `FieldErrors` nothing is saved and the field messages come back instead."""
    db = get_db()
    try:
        row = write(db)
        db.commit()
    except FieldErrors as bad:
        db.rollback()
        return None, bad.errors
    service().changed(db, side, [row.id])
    return row, {}


def service() -> MatchService:
    """This app's service, built on first use: loading the model and repairing the indexes
    takes seconds, which CLI commands such as `init-db` should not pay."""
    svc = current_app.extensions.get("matcher.service")
    if svc is None:
        with _build_lock:
            svc = current_app.extensions.get("matcher.service")
            if svc is None:
                svc = start_service(current_app._get_current_object())  # type: ignore[attr-defined]
    return svc


def build_service(app: Flask, *, load: bool = True) -> MatchService:
    """The service over the saved indexes (none with `load=False`), not yet synced."""
    return compose_service(settings_of(app), sessions=app.extensions["matcher.sessions"],
                           load=load)


def _print_reports(reports: Iterable[SyncReport]) -> None:
    for report in reports:
        click.echo(report.summary())


@click.command("reindex")
@with_appcontext
@click.option("--full", is_flag=True, help="丢弃现有索引，从数据库完整重建")
def reindex_command(full: bool) -> None:
    """Bring the indexes in step with the database (only what changed, unless --full)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    app.config["SYNC_INDEX_ON_START"] = False  # the sync below is the one with a progress bar
    with _index_errors():
        _reindex(app, full)


def _reindex(app: Flask, full: bool) -> None:
    if full:
        # Built from nothing in memory, then every side's files replaced atomically: the old
        # index stays usable (by running workers, or after a crash) until the new one is saved.
        svc = build_service(app, load=False)
        svc.start(sync=False)
        app.extensions["matcher.service"] = svc
        with svc.store.writing():
            reports = svc.sync(progress=True)
            for report in reports:
                if not report.total:  # nothing to index, so the sync wrote nothing
                    svc.store.save_side(report.side)
        _print_reports(reports)
        return
    _print_reports(service().sync(progress=True))


@click.command("check-index")
@with_appcontext
def check_index_command() -> None:
    """Report how the saved indexes differ from the database (ids, hashes, model, dimension),
    changing nothing; exit status 1 if they differ."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with _index_errors():
        svc = app.extensions.get("matcher.service")
        if svc is None:
            # Compare the files as saved: a start-up sync first would repair what we look for.
            svc = build_service(app)
        reports = svc.check()
    _print_reports(reports)
    if any(r.changed for r in reports):
        raise SystemExit(1)


@contextlib.contextmanager
def _index_errors() -> Iterator[None]:
    """A Milvus that cannot be reached: its message and exit status 1, not a traceback."""
    try:
        yield
    except IndexUnavailableError as error:
        raise click.ClickException(str(error)) from error


def start_service(app: Flask) -> MatchService:
    """Build the service and repair the indexes against the database before any use."""
    svc = build_service(app)
    for report in svc.start(sync=app.config["SYNC_INDEX_ON_START"]):
        if report.changed:
            app.logger.info("index %s", report.summary())
    app.extensions["matcher.service"] = svc
    return svc


def init_app(app: Flask) -> None:
    app.extensions["matcher.service"] = None
    app.cli.add_command(reindex_command)
    app.cli.add_command(check_index_command)
