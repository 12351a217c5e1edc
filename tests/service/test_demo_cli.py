"""The README's main job end to end (with the fake encoder): set up, then resume."""

import pytest

from service.cli import main
from settings import Settings


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MATCHER_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def test_demo_sets_up_answers_and_resumes(home, capsys):
    if not (Settings.from_env().datasets / "data" / "patents.jsonl").exists():
        pytest.fail(f"demo data missing at {Settings.from_env().datasets}: datasets/ ships "
                    "in the repository")
    assert main(["demo", "--model", "fake", "--query", "高镍正极材料循环稳定性 包覆改性"]) == 0
    first = capsys.readouterr()
    assert "最匹配的科技成果" in first.out and "共同术语" in first.out
    assert "新增 82" in first.err  # the needs file
    assert (home / "indexes" / "result" / "vectors" / "index.json").exists()

    assert main(["demo", "--model", "fake", "--query", "高镍正极材料循环稳定性 包覆改性"]) == 0
    second = capsys.readouterr()
    assert "新增 0, 更新 0, 删除 0" in second.err  # nothing re-indexed
    assert second.out == first.out
