"""Setting up the demo, once: the corpus, the demo accounts and the indexes.

`flask --app web setup-demo` (what `./run.sh` does) and `python -m service demo` both call
`set_up_demo`; each step skips what is already done (the import is idempotent, accounts that
exist are kept, the sync touches only rows whose content changed), so a second run costs
seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from corpora.demo import DemoReport, build_demo
from corpora.models import Need, Organisation, User
from matcher.indexing import SyncReport
from service.accounts import NewUser, create_user
from service.audit import record
from service.matching import MatchService

DEMO_PASSWORD = "g60-demo-2026"
FIRST_DEMO_NEED = "DEMO-NEED-001"


class DemoError(RuntimeError):
    """A demo step that cannot run (its message says why, in Chinese)."""


def demo_accounts(first_firm: str, second_firm: str) -> list[NewUser]:
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


def ensure_demo_accounts(sessions: sessionmaker[Session]) -> list[str]:
    """Create the demo accounts that do not exist yet; returns the usernames created."""
    created = []
    with sessions() as session:
        first = session.scalar(select(Need).where(Need.external_id == FIRST_DEMO_NEED))
        if first is None:
            raise DemoError("演示需求尚未导入：请先运行 setup-demo 的导入步骤")
        second = session.scalar(
            select(Organisation).where(Organisation.kind == "firm",
                                       Organisation.id != first.organisation_id,
                                       Organisation.is_sample.is_(True))
            .order_by(Organisation.id))
        firms = (first.organisation.name, second.name if second else first.organisation.name)
        for account in demo_accounts(*firms):
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


@dataclass
class DemoSetUp:
    corpus: DemoReport
    accounts_created: list[str]
    indexes: list[SyncReport] = field(default_factory=list)


def set_up_demo(sessions: sessionmaker[Session], datasets: Path,
                service: Callable[[], MatchService], *, limit: int | None = None,
                progress: bool = True, say: Callable[[str], None] = lambda _line: None
                ) -> DemoSetUp:
    """Import the demo corpus from `datasets`, create the demo accounts, sync the indexes.

    `service` is called only for the last step, so the model is loaded after the import."""
    say("==> 1/3 演示语料：导入示例成果与企业需求")
    with sessions() as session:
        corpus = build_demo(session, datasets, limit=limit, progress=progress)
        session.commit()
    say("    " + corpus.summary().replace("\n", "\n    "))
    say("==> 2/3 演示账号")
    created = ensure_demo_accounts(sessions)
    say(f"    新建 {', '.join(created) if created else '无（已存在）'}；密码均为 {DEMO_PASSWORD}")
    say("==> 3/3 索引：加载模型，与数据库比对并增量更新")
    reports = service().sync(progress=progress)
    for report in reports:
        say("    " + report.summary())
    return DemoSetUp(corpus, created, reports)
