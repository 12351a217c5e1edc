"""The database is the source of truth: indexes follow it, incrementally, across restarts."""

import json

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from corpora.importer import import_records
from corpora.models import Result
from embeddings.cache import CachedEncoder, EmbeddingCache
from embeddings.fake import FakeEncoder
from matcher.indexing import IndexStore, open_store

RESULTS = [
    {
        "external_id": "R1",
        "title": "高镍正极材料包覆改性",
        "abstract": "氧化铝包覆提高锂电池正极循环稳定性",
        "institution": "示例大学甲（演示数据）",
        "result_type": "发明专利",
        "industry": "新能源汽车",
    },
    {
        "external_id": "R2",
        "title": "工业视觉缺陷检测",
        "abstract": "深度学习表面缺陷检测算法",
        "institution": "示例大学乙（演示数据）",
        "result_type": "论文",
        "industry": "人工智能",
    },
    {
        "external_id": "R3",
        "title": "光伏组件清洗机器人",
        "abstract": "自动清洗光伏板灰尘",
        "institution": "示例大学甲（演示数据）",
        "result_type": "样机",
        "industry": "低碳技术",
    },
]
NEEDS = [
    {
        "external_id": "N1",
        "title": "正极循环寿命不足",
        "description": "高镍正极循环衰减快，需要包覆改性技术",
        "firm": "示例电池有限公司（演示）",
        "industry": "新能源汽车",
        "cooperation_mode": "合作开发",
    },
]


class CountingEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__(48)
        self.documents_seen = 0

    def encode_document_windows(self, texts, *, progress=False):
        # What indexing calls: one vector per window of each document.
        self.documents_seen += len(texts)
        return super().encode_document_windows(texts)


@pytest.fixture()
def sessions(engine):
    def factory() -> Session:
        return Session(engine)

    with factory() as session:
        import_records(session, "result", RESULTS, sample=True)
        import_records(session, "need", NEEDS, sample=True)
        session.commit()
    return factory


def test_first_sync_builds_then_restart_loads_without_encoding(sessions, tmp_path):
    encoder = CountingEncoder()
    store, reports = open_store(tmp_path, encoder, sessions)
    assert {r.side: r.added for r in reports} == {"need": 1, "result": 3}
    assert encoder.documents_seen == 4
    top = store.matcher.search("正极包覆", side="result", k=1)[0]
    assert store.matcher.collections["result"].items[top.id].title == "高镍正极材料包覆改性"

    again = CountingEncoder()
    store2, reports2 = open_store(tmp_path, again, sessions)
    assert not any(r.changed for r in reports2)
    assert again.documents_seen == 0
    assert store2.matcher.search("正极包覆", side="result", k=1)[0].id == top.id


def test_sync_repairs_differences_from_the_database(sessions, tmp_path):
    encoder = CountingEncoder()
    open_store(tmp_path, encoder, sessions)
    with sessions() as session:
        r2 = session.scalars(select(Result).where(Result.external_id == "R2")).one()
        r2.status = "withdrawn"
        import_records(
            session,
            "result",
            [
                {**RESULTS[0], "abstract": "氧化铝与磷酸盐双层包覆提高正极稳定性"},
                {
                    "external_id": "R4",
                    "title": "固态电解质薄膜",
                    "abstract": "硫化物固态电解质",
                    "institution": "示例大学乙（演示数据）",
                },
            ],
            sample=True,
        )
        session.commit()
        withdrawn_id = r2.id
    encoder.documents_seen = 0
    store, reports = open_store(tmp_path, encoder, sessions)
    result_report = next(r for r in reports if r.side == "result")
    assert (result_report.added, result_report.updated, result_report.removed) == (1, 1, 1)
    assert encoder.documents_seen == 2  # only the new and the changed text
    for mode in ("hybrid", "dense", "lexical"):
        found = store.matcher.search("缺陷检测", side="result", k=5, mode=mode)
        assert withdrawn_id not in [m.id for m in found]
    with sessions() as session:
        assert all(not r.changed for r in store.check(session))


def test_index_from_another_model_is_rebuilt(sessions, tmp_path):
    open_store(tmp_path, CountingEncoder(), sessions)
    other = FakeEncoder(32)
    store, reports = open_store(tmp_path, other, sessions)
    assert sum(r.added for r in reports) == 4
    sidecar = json.loads((tmp_path / "indexes" / "result" / "vectors" / "index.json").read_text())
    assert sidecar["model"] == other.name and sidecar["dimension"] == 32


def test_items_changed_applies_one_edit_without_full_sync(sessions, tmp_path):
    encoder = CountingEncoder()
    store, _ = open_store(tmp_path, encoder, sessions)
    with sessions() as session:
        r3 = session.scalars(select(Result).where(Result.external_id == "R3")).one()
        r3.abstract = "钙钛矿光伏组件封装与清洗"
        session.commit()
        encoder.documents_seen = 0
        store.items_changed(session, "result", [r3.id])
        assert encoder.documents_seen == 1
        assert store.matcher.search("钙钛矿", side="result", k=1, mode="lexical")[0].id == r3.id
        assert all(not r.changed for r in store.check(session))


def test_cached_encoder_makes_rebuild_free(sessions, tmp_path):
    inner = CountingEncoder()
    cached = CachedEncoder(inner, EmbeddingCache(tmp_path / "cache.sqlite"))
    open_store(tmp_path / "a", cached, sessions)
    inner.documents_seen = 0
    store = IndexStore(tmp_path / "b", cached)  # a fresh index folder: full rebuild
    with sessions() as session:
        store.sync(session)
    assert inner.documents_seen == 0
    assert store.matcher.collections["result"].vectors.count() == 3
    np.testing.assert_equal(sorted(store.matcher.collections["result"].items), [1, 2, 3])


class WindowedCountingEncoder(CountingEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.window_chars = 8  # every demo text here spans several windows
        self.name += "-w8"


def test_window_vectors_survive_a_restart(sessions, tmp_path):
    store, _ = open_store(tmp_path, WindowedCountingEncoder(), sessions)
    coll = store.matcher.collections["result"]
    assert coll.extra_windows and coll.windows.count() == sum(coll.extra_windows.values())
    before = store.matcher.search("正极包覆", side="result", k=3, mode="dense")

    again = WindowedCountingEncoder()
    store2, reports = open_store(tmp_path, again, sessions)
    assert not any(r.changed for r in reports) and again.documents_seen == 0
    assert store2.matcher.collections["result"].extra_windows == coll.extra_windows
    after = store2.matcher.search("正极包覆", side="result", k=3, mode="dense")
    assert [(m.id, round(m.score, 5)) for m in after] == [(m.id, round(m.score, 5))
                                                          for m in before]


def test_an_index_saved_in_an_older_layout_is_rebuilt(sessions, tmp_path):
    open_store(tmp_path, CountingEncoder(), sessions)
    hashes_path = tmp_path / "indexes" / "result" / "hashes.json"
    hashes = json.loads(hashes_path.read_text(encoding="utf-8"))
    del hashes["layout"]
    hashes_path.write_text(json.dumps(hashes), encoding="utf-8")
    again = CountingEncoder()
    _, reports = open_store(tmp_path, again, sessions)
    assert {r.side: r.added for r in reports} == {"need": 0, "result": 3}
    assert again.documents_seen == 3
