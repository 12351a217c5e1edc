"""Site-level CLI commands: `setup-demo` (what run.sh does) and `import`.

`flask --app web setup-demo` migrates the database, imports the demo corpus, creates the demo
accounts and brings the indexes in step; each step skips what is already done, so a second
run costs seconds. `flask --app web import FILE --side result` imports like the upload page.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from corpora.demo import build_demo
from corpora.importer import ImportProblem, RowsRejected, import_file
from corpora.models import Need, Organisation, User
from embeddings.paths import shared_dir
from web.accounts import NewUser, create_user
from web.audit import record
from web.database import sessions
from web.matching import service

DEMO_PASSWORD = "g60-demo-2026"
FIRST_DEMO_NEED = "DEMO-NEED-001"


def _demo_accounts(first_firm: str, second_firm: str) -> list[NewUser]:
    return [
        NewUser("admin", DEMO_PASSWORD, "admin", "平台管理员"),
        NewUser("officer", DEMO_PASSWORD, "officer", "松江区科委 陈科长"),
        NewUser("firm", DEMO_PASSWORD, "firm", "企业用户（演示）", first_firm),
        NewUser("firm2", DEMO_PASSWORD, "firm", "企业用户二（演示）", second_firm),
        NewUser("office", DEMO_PASSWORD, "office", "示例大学甲 技术转移办公室",
                "示例大学甲（演示数据）"),
        NewUser("office2", DEMO_PASSWORD, "office", "示例研究院戊 技术转移中心",
                "示例研究院戊（演示数据）"),
    ]


def ensure_demo_accounts() -> list[str]:
    """Create the demo accounts that do not exist yet; returns the usernames created."""
    created = []
    with sessions()() as session:
        first = session.scalar(select(Need).where(Need.external_id == FIRST_DEMO_NEED))
        if first is None:
            raise click.ClickException("演示需求尚未导入：请先运行 setup-demo 的导入步骤")
        second = session.scalar(
            select(Organisation).where(Organisation.kind == "firm",
                                       Organisation.id != first.organisation_id,
                                       Organisation.is_sample.is_(True))
            .order_by(Organisation.id))
        firms = (first.organisation.name, second.name if second else first.organisation.name)
        for account in _demo_accounts(*firms):
            if session.scalar(select(User.id).where(User.username == account.username)):
                continue
            if account.organisation and session.scalar(
                    select(Organisation.id).where(Organisation.name == account.organisation)) \
                    is None:
                continue  # that sample institution got no records (a partial corpus)
            user = create_user(session, account)
            record(session, None, "create_user", "user", user.id, {"via": "setup-demo"})
            created.append(account.username)
        session.commit()
    return created


@click.command("setup-demo")
@with_appcontext
@click.option("--limit", type=int, default=None, help="每个数据文件只导入前 N 条（试用）")
def setup_demo_command(limit: int | None) -> None:
    """Import the demo corpus, create demo accounts, index everything (resumable)."""
    click.echo("==> 1/3 演示语料：导入示例成果与企业需求", err=True)
    with sessions()() as session:
        report = build_demo(session, shared_dir(), limit=limit, progress=True)
        session.commit()
    click.echo("    " + report.summary().replace("\n", "\n    "), err=True)
    click.echo("==> 2/3 演示账号", err=True)
    created = ensure_demo_accounts()
    click.echo(f"    新建 {', '.join(created) if created else '无（已存在）'}；"
               f"密码均为 {DEMO_PASSWORD}", err=True)
    click.echo("==> 3/3 索引：加载模型，与数据库比对并增量更新", err=True)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    app.config["SYNC_INDEX_ON_START"] = False
    for sync in service().sync(progress=True):
        click.echo("    " + sync.summary(), err=True)


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
