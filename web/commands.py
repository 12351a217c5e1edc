"""Site-level CLI commands: `setup-demo` (what run.sh does) and `import`.

`flask --app web setup-demo` runs `service.demo.set_up_demo` (demo corpus, demo accounts,
indexes; each step skips what is already done) on this site's database and settings.
`flask --app web import FILE --side result` imports like the upload page.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from corpora.importer import ImportProblem, RowsRejected, import_file
from service.demo import DemoError, set_up_demo
from web.database import sessions
from web.matching import service
from web.settings import settings_of


@click.command("setup-demo")
@with_appcontext
@click.option("--limit", type=int, default=None, help="每个数据文件只导入前 N 条（试用）")
def setup_demo_command(limit: int | None) -> None:
    """Import the demo corpus, create demo accounts, index everything (resumable)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    app.config["SYNC_INDEX_ON_START"] = False  # the set-up's own sync has a progress bar
    try:
        set_up_demo(sessions(), settings_of(app).datasets, service, limit=limit,
                    progress=True, say=lambda line: click.echo(line, err=True))
    except DemoError as error:
        raise click.ClickException(str(error)) from None


@click.command("import")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--side", type=click.Choice(["need", "result"]), required=True)
@click.option("--organisation", default=None, help="行中未写单位时使用的单位名称")
@click.option("--keep-valid", is_flag=True, help="导入合格行，不合格行写入 rejects 文件")
def import_command(path: Path, side: str, organisation: str | None, keep_valid: bool) -> None:
    """Import needs or results from .jsonl / .csv / .xlsx, then index what changed."""
    with sessions()() as session:
        try:
            report = import_file(session, path, side, organisation=organisation,  # type: ignore[arg-type]
                                 keep_valid=keep_valid, progress=True)
        except RowsRejected as rejected:
            session.rollback()
            click.echo(rejected.report.summary(), err=True)
            raise SystemExit(1) from None
        except ImportProblem as problem:
            session.rollback()
            raise click.ClickException(str(problem)) from None
        session.commit()
        click.echo(report.summary())
        svc = service()
        svc.changed(session, side, report.changed_ids)  # type: ignore[arg-type]
        svc.flush()  # this process ends now: write the index files before it does


def init_app(app: Flask) -> None:
    app.cli.add_command(setup_demo_command)
    app.cli.add_command(import_command)
