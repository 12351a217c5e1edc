"""The site's CLI commands: init-db, setup-demo, import, reindex, check-index, create-admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from corpora.models import Result, User
from service.demo import DEMO_PASSWORD
from web import create_app
from web.database import sessions


def _app(tmp_path: Path):  # noqa: ANN202
    return create_app({"TESTING": True, "MATCHER_HOME": tmp_path / "home",
                       "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
                       "MATCHER_MODEL": "fake", "SECRET_KEY": "x", "WTF_CSRF_ENABLED": False})


def test_setup_demo_is_resumable_and_creates_demo_accounts(tmp_path: Path) -> None:
    app = _app(tmp_path)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["setup-demo", "--limit", "5"])
    assert first.exit_code == 0, first.output
    assert "新建 admin, officer, firm, firm2, office" in first.output
    second = _app(tmp_path).test_cli_runner().invoke(args=["setup-demo", "--limit", "5"])
    assert second.exit_code == 0, second.output
    assert "无（已存在）" in second.output and "新增 0, 更新 0, 删除 0" in second.output
    client = app.test_client()
    login = client.post("/login", data={"username": "firm", "password": DEMO_PASSWORD})
    assert login.status_code == 302
    assert client.get("/").status_code == 200
    app.extensions["matcher.engine"].dispose()


def test_import_then_check_and_reindex(tmp_path: Path) -> None:
    app = _app(tmp_path)
    runner = app.test_cli_runner()
    data = tmp_path / "results.csv"
    data.write_text("成果名称,摘要,单位名称\n量子点显示膜,一种量子点显示膜的制备方法,示例大学\n",
                    encoding="utf-8")
    imported = runner.invoke(args=["import", str(data), "--side", "result"])
    assert imported.exit_code == 0, imported.output
    check = runner.invoke(args=["check-index"])
    assert check.exit_code == 0, check.output
    assert "result: 增量同步, 新增 0, 更新 0, 删除 0, 共 1 条" in check.output
    with app.app_context(), sessions()() as db:
        db.get(Result, db.scalar(select(Result.id))).status = "withdrawn"
        db.commit()
    stale = runner.invoke(args=["check-index"])
    assert stale.exit_code == 1 and "删除 1" in stale.output
    fixed = runner.invoke(args=["reindex"])
    assert fixed.exit_code == 0 and "删除 1" in fixed.output
    assert runner.invoke(args=["check-index"]).exit_code == 0
    full = runner.invoke(args=["reindex", "--full"])
    assert full.exit_code == 0, full.output
    bad = tmp_path / "bad.csv"
    bad.write_text("成果名称,摘要\n,没有标题\n", encoding="utf-8")
    refused = runner.invoke(args=["import", str(bad), "--side", "result",
                                  "--organisation", "示例大学"])
    assert refused.exit_code == 1 and "第 2 行" in refused.output
    app.extensions["matcher.engine"].dispose()


def test_create_admin_checks_password_strength(tmp_path: Path) -> None:
    app = _app(tmp_path)
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["create-admin", "--username", "root", "--password", "short"])
    assert weak.exit_code != 0 and "密码至少" in weak.output
    made = runner.invoke(args=["create-admin", "--username", "root",
                               "--password", "Strong-pass-2026"])
    assert made.exit_code == 0, made.output
    assert runner.invoke(args=["init-db"]).exit_code == 0
    with app.app_context(), sessions()() as db:
        assert db.scalar(select(func.count()).select_from(User).where(User.role == "admin")) == 1
    app.extensions["matcher.engine"].dispose()


@pytest.mark.milvus
def test_index_commands_on_milvus_and_when_it_cannot_be_reached(tmp_path: Path) -> None:
    """check-index and reindex against the Milvus backend (a Milvus Lite file); a Milvus that
    cannot be reached is one clear message and exit status 1, not a traceback."""
    from matcher import vector_milvus

    uri = str(tmp_path / "milvus.db")
    app = create_app({"TESTING": True, "MATCHER_HOME": tmp_path / "home",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
                      "MATCHER_MODEL": "fake", "SECRET_KEY": "x", "INDEX_BACKEND": "milvus",
                      "MILVUS_URI": uri})
    runner = app.test_cli_runner()
    data = tmp_path / "results.csv"
    data.write_text("成果名称,摘要,单位名称\n量子点显示膜,一种量子点显示膜的制备方法,示例大学\n",
                    encoding="utf-8")
    assert runner.invoke(args=["import", str(data), "--side", "result"]).exit_code == 0
    check = runner.invoke(args=["check-index"])
    assert check.exit_code == 0 and "共 1 条" in check.output, check.output
    full = runner.invoke(args=["reindex", "--full"])
    assert full.exit_code == 0 and "result:" in full.output, full.output
    app.extensions["matcher.engine"].dispose()
    vector_milvus.close_client(uri)

    down = create_app({"TESTING": True, "MATCHER_HOME": tmp_path / "home",
                       "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
                       "MATCHER_MODEL": "fake", "SECRET_KEY": "x", "INDEX_BACKEND": "milvus",
                       "MILVUS_URI": "http://127.0.0.1:9"})
    for args in (["check-index"], ["reindex"]):
        failed = down.test_cli_runner().invoke(args=args)
        assert failed.exit_code == 1, failed.output
        assert "无法连接 Milvus http://127.0.0.1:9" in failed.output
        assert "Traceback" not in failed.output
    down.extensions["matcher.engine"].dispose()
