"""`python -m service embed-bulk` end to end on a local Ray with two workers (fake encoder):
a JSONL file and a Parquet file fill the cache; a database run fills it and then syncs the
index, which encodes nothing; a rerun encodes nothing either."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpora.db import PlatformSession, create_engine_for, upgrade
from corpora.importer import import_records
from embeddings.bulk import ROLE, start_ray
from embeddings.cache import EmbeddingCache, text_key
from embeddings.loader import load_encoder
from service.cli import main
from settings import Settings
from tests.embeddings.test_bulk import real_texts

# Ray Data's DataContext sets deprecated fields of its own on creation.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    started = start_ray(None, 2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MATCHER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MATCHER_MODEL", "fake")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MATCHER_BACKEND", raising=False)
    return tmp_path / "home"


def cached(texts: list[str]) -> int:
    settings = Settings.from_env()
    encoder = load_encoder("fake")
    cache = EmbeddingCache(settings.embedding_cache)
    try:
        return len(cache.get_many(encoder.name, ROLE, [text_key(t) for t in texts],
                                  encoder.dimension, rows=True))
    finally:
        cache.close()


def run(*args: str) -> int:
    return main(["embed-bulk", *args, "--workers", "2", "--no-progress"])


def test_jsonl_fills_the_cache_and_a_rerun_encodes_nothing(
        local_ray: None, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = real_texts(60)
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": n, "text": t}, ensure_ascii=False) + "\n"
                              for n, t in enumerate(texts)), encoding="utf-8")
    assert run("--jsonl", str(source)) == 0
    assert "texts seen 60," in capsys.readouterr().out
    assert cached(texts) == 60

    assert run("--jsonl", str(source), "--batch-size", "7") == 0
    out = capsys.readouterr().out
    assert "already cached 60, encoded 0 " in out


def test_parquet_reads_its_text_column(local_ray: None, home: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = real_texts(40)
    pq.write_table(pa.table({"text": texts, "n": list(range(40))}), tmp_path / "t.parquet")
    assert run("--parquet", str(tmp_path / "t.parquet")) == 0
    assert "already cached 0, encoded 40 " in capsys.readouterr().out
    assert cached(texts) == 40

    pq.write_table(pa.table({"body": texts}), tmp_path / "wrong.parquet")
    assert run("--parquet", str(tmp_path / "wrong.parquet")) == 1
    assert "没有 text 列" in capsys.readouterr().err


def test_a_jsonl_line_without_text_is_named(local_ray: None, home: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "第一行"}\n{"body": "第二行"}\n', encoding="utf-8")
    assert run("--jsonl", str(source)) == 1
    assert f"{source}:2" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["faiss", pytest.param("milvus", marks=pytest.mark.milvus)])
def test_from_db_embeds_every_item_and_the_index_sync_encodes_nothing(
        local_ray: None, home: Path, tmp_path: Path, backend: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("INDEX_BACKEND", backend)  # Milvus: a Lite file under the home
    monkeypatch.delenv("MILVUS_URI", raising=False)
    (home / "milvus").mkdir(parents=True)  # Milvus Lite opens a file only in a folder that is
    data = Settings.from_env().datasets / "data"
    patents = [json.loads(line) for line in
               (data / "patents.jsonl").read_text(encoding="utf-8").splitlines()[:30]]
    results = [{"external_id": p["id"], "title": p["title"], "abstract": p["abstract"],
                "institution": "示例大学（演示数据）", "result_type": "发明专利",
                "industry": "智能制造"} for p in patents]
    needs = [{"external_id": f"N{n}", "title": p["title"][:20] + "技术需求",
              "description": "寻求合作：" + p["abstract"][:200], "firm": "示例企业（演示）",
              "industry": "智能制造", "cooperation_mode": "合作开发"}
             for n, p in enumerate(patents[:6])]
    url = Settings.from_env().database_url
    upgrade(url)
    engine = create_engine_for(url)
    with PlatformSession(engine) as session:
        import_records(session, "result", results, sample=True)
        import_records(session, "need", needs, sample=True)
        session.commit()
    engine.dispose()

    assert run("--from-db") == 0
    out = capsys.readouterr().out
    assert "texts seen 36," in out and "encoded 36 " in out
    assert "index sync encoded 0 texts" in out
    assert "新增 30, 更新 0, 删除 0, 共 30 条" in out and "新增 6, 更新 0, 删除 0, 共 6 条" in out

    assert run("--from-db") == 0
    out = capsys.readouterr().out
    assert "already cached 36, encoded 0 " in out and "index sync encoded 0 texts" in out
    if backend == "milvus":
        from matcher import vector_milvus
        from service.composition import backend_for

        vector_milvus.close_client(backend_for(Settings.from_env()).milvus_uri)


def test_one_source_is_required(home: Path) -> None:
    with pytest.raises(SystemExit):
        main(["embed-bulk", "--workers", "2"])
