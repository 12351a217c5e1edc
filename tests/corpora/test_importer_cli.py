"""`python -m corpora.importer`: the database comes from the settings unless named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from corpora.db import create_engine_for, make_sessionmaker
from corpora.importer.cli import main
from corpora.models import Result

CSV = "title,abstract,organisation\n锂电池正极包覆,高镍三元正极材料的包覆改性工艺,示例大学甲\n"


def _results(url: str) -> int:
    engine = create_engine_for(url)
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalar(select(func.count()).select_from(Result)) or 0
    finally:
        engine.dispose()


def test_default_database_is_the_one_under_matcher_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("MATCHER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    source = tmp_path / "results.csv"
    source.write_text(CSV, encoding="utf-8")
    assert main([str(source), "--side", "result"]) == 0
    assert "新增 1" in capsys.readouterr().out
    assert _results(f"sqlite:///{tmp_path / 'home' / 'matcher.sqlite'}") == 1


def test_a_named_database_is_used_and_bad_rows_import_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'named.sqlite'}"
    source = tmp_path / "results.csv"
    source.write_text(CSV + "没有摘要,,示例大学甲\n", encoding="utf-8")
    assert main([str(source), "--side", "result", "--database-url", url]) == 1
    error = capsys.readouterr().err
    assert "第 3 行" in error and "未导入任何数据" in error
    assert _results(url) == 0
