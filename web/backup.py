"""`flask --app web backup DEST` and `flask --app web restore SRC [--force]`.

Thin command-line wrappers over `service.backup`, which holds the logic and knows nothing of
Flask: the commands only supply this site's database engine and home (its `Settings`). A
backup may be taken while the site serves; a restore is for a stopped site (it replaces the
database's rows and the indexes, which a running site holds in memory), after which the next
start syncs the indexes with the restored rows.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from service.backup import BackupError, create_backup, describe, restore_backup
from web.settings import settings_of


def _echo_table(name: str, rows: int) -> None:
    click.echo(f"    {name}: {rows} 行", err=True)


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_command(dest: Path) -> None:
    """Write a consistent backup of the database and indexes to the new folder DEST."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(f"==> 备份到 {dest}", err=True)
    try:
        manifest = create_backup(app.extensions["matcher.engine"], dest,
                                 home=settings_of(app).home, on_table=_echo_table)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(describe(manifest))
    click.echo(f"备份完成：{dest}")


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="目标数据库已有数据时，用备份覆盖全部数据")
@with_appcontext
def restore_command(src: Path, force: bool) -> None:
    """Restore the backup folder SRC (stop the site first). All or nothing."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(f"==> 校验并恢复 {src}", err=True)
    try:
        checked = restore_backup(app.extensions["matcher.engine"], src,
                                 home=settings_of(app).home, force=force,
                                 on_table=_echo_table)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    # A service built before the restore holds the old indexes: the next use rebuilds it,
    # and its start-up sync compares the restored indexes with the restored rows.
    app.extensions["matcher.service"] = None
    click.echo(describe(checked.manifest))
    for note in checked.notes:
        click.echo(f"注意：{note}", err=True)
    click.echo("恢复完成；网站下次启动时会将索引与数据库比对并补齐差异。")


def init_app(app: Flask) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
