"""The database is the source of truth: indexes follow it, incrementally, across restarts."""

import json

import numpy as np
import pytest
from sqlalchemy import select

from corpora.db import PlatformSession
from corpora.importer import import_records
from corpora.items import DatabaseItems
from corpora.models import Result
from embeddings.cache import CachedEncoder, EmbeddingCache
from embeddings.fake import FakeEncoder
from matcher.indexing import IndexStore
from service.composition import open_store

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
    def factory() -> PlatformSession:
        return PlatformSession(engine)

    with factory() as session:
        import_records(session, "result", RESULTS, sample=True)
        import_records(session, "need", NEEDS, sample=True)
        session.commit()
    return factory


def test_first_sync_builds_then_restart_loads_without_encoding(index_backend, sessions, tmp_path):
    encoder = CountingEncoder()
    store, reports = open_store(tmp_path, encoder, sessions, backend=index_backend)
    assert {r.side: r.added for r in reports} == {"need": 1, "result": 3}
    assert encoder.documents_seen == 4
    top = store.matcher.search("正极包覆", side="result", k=1)[0]
    assert store.matcher.collections["result"].items[top.id].title == "高镍正极材料包覆改性"

    again = CountingEncoder()
    store2, reports2 = open_store(tmp_path, again, sessions, backend=index_backend)
    assert not any(r.changed for r in reports2)
    assert again.documents_seen == 0
    assert store2.matcher.search("正极包覆", side="result", k=1)[0].id == top.id


def test_a_new_host_reembeds_only_what_the_shared_index_lacks(index_backend, sessions, tmp_path):
    """A second host starts with an empty index folder. In-process indexes are its own to
    build (every text encoded); a Milvus side is shared and its hashes sit beside the vectors,
    so that host encodes only what changed since, and its BM25 is cut from the database."""
    open_store(tmp_path / "host-a", CountingEncoder(), sessions, backend=index_backend)
    with sessions() as session:
        row = session.scalars(select(Result).where(Result.external_id == "R2")).one()
        row.abstract = "深度学习表面缺陷检测算法，新增小样本学习"
        session.commit()
        edited = row.id
    encoder = CountingEncoder()
    host_b, reports = open_store(tmp_path / "host-b", encoder, sessions, backend=index_backend)
    assert encoder.documents_seen == (1 if index_backend.shared else 4)
    assert host_b.matcher.search("小样本学习", side="result", k=1, mode="lexical")[0].id == edited
    top = host_b.matcher.search("正极包覆", side="result", k=1)[0]
    assert host_b.matcher.collections["result"].items[top.id].title == "高镍正极材料包覆改性"
    with sessions() as session:
        assert not any(r.changed for r in host_b.check(DatabaseItems(session)))


def test_sync_repairs_differences_from_the_database(index_backend, sessions, tmp_path):
    encoder = CountingEncoder()
    open_store(tmp_path, encoder, sessions, backend=index_backend)
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
    store, reports = open_store(tmp_path, encoder, sessions, backend=index_backend)
    result_report = next(r for r in reports if r.side == "result")
    assert (result_report.added, result_report.updated, result_report.removed) == (1, 1, 1)
    assert encoder.documents_seen == 2  # only the new and the changed text
    for mode in ("hybrid", "dense", "lexical"):
        found = store.matcher.search("缺陷检测", side="result", k=5, mode=mode)
        assert withdrawn_id not in [m.id for m in found]
    with sessions() as session:
        assert all(not r.changed for r in store.check(DatabaseItems(session)))


def test_index_from_another_model_is_rebuilt(index_backend, sessions, tmp_path):
    open_store(tmp_path, CountingEncoder(), sessions, backend=index_backend)
    other = FakeEncoder(32)
    store, reports = open_store(tmp_path, other, sessions, backend=index_backend)
    assert sum(r.added for r in reports) == 4
    sidecar = json.loads((tmp_path / "indexes" / "result" / "vectors" / "index.json").read_text())
    assert sidecar["model"] == other.name and sidecar["dimension"] == 32


def test_items_changed_applies_one_edit_without_full_sync(index_backend, sessions, tmp_path):
    encoder = CountingEncoder()
    store, _ = open_store(tmp_path, encoder, sessions, backend=index_backend)
    with sessions() as session:
        r3 = session.scalars(select(Result).where(Result.external_id == "R3")).one()
        r3.abstract = "钙钛矿光伏组件封装与清洗"
        session.commit()
        encoder.documents_seen = 0
        store.items_changed(DatabaseItems(session), "result", [r3.id])
        assert encoder.documents_seen == 1
        assert store.matcher.search("钙钛矿", side="result", k=1, mode="lexical")[0].id == r3.id
        assert all(not r.changed for r in store.check(DatabaseItems(session)))


def test_cached_encoder_makes_rebuild_free(index_backend, sessions, tmp_path):
    inner = CountingEncoder()
    cached = CachedEncoder(inner, EmbeddingCache(tmp_path / "cache.sqlite"))
    open_store(tmp_path / "a", cached, sessions, backend=index_backend)
    inner.documents_seen = 0
    store = IndexStore(tmp_path / "b", cached, index_backend)  # a fresh index folder: full rebuild
    with sessions() as session:
        store.sync(DatabaseItems(session))
    assert inner.documents_seen == 0
    assert store.matcher.collections["result"].vectors.count() == 3
    np.testing.assert_equal(sorted(store.matcher.collections["result"].items), [1, 2, 3])


class WindowedCountingEncoder(CountingEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.window_chars = 8  # every demo text here spans several windows
        self.name += "-w8"


def test_window_vectors_survive_a_restart(index_backend, sessions, tmp_path):
    store, _ = open_store(tmp_path, WindowedCountingEncoder(), sessions, backend=index_backend)
    coll = store.matcher.collections["result"]
    assert coll.extra_windows and coll.windows.count() == sum(coll.extra_windows.values())
    before = store.matcher.search("正极包覆", side="result", k=3, mode="dense")

    again = WindowedCountingEncoder()
    store2, reports = open_store(tmp_path, again, sessions, backend=index_backend)
    assert not any(r.changed for r in reports) and again.documents_seen == 0
    assert store2.matcher.collections["result"].extra_windows == coll.extra_windows
    after = store2.matcher.search("正极包覆", side="result", k=3, mode="dense")
    assert [(m.id, round(m.score, 5)) for m in after] == [(m.id, round(m.score, 5))
                                                          for m in before]


def test_an_index_saved_in_an_older_layout_is_rebuilt(index_backend, sessions, tmp_path):
    open_store(tmp_path, CountingEncoder(), sessions, backend=index_backend)
    hashes_path = tmp_path / "indexes" / "result" / "hashes.json"
    hashes = json.loads(hashes_path.read_text(encoding="utf-8"))
    del hashes["layout"]
    hashes_path.write_text(json.dumps(hashes), encoding="utf-8")
    again = CountingEncoder()
    _, reports = open_store(tmp_path, again, sessions, backend=index_backend)
    # Milvus keeps the hashes beside the shared vectors too: nothing to embed again there.
    redone = 0 if index_backend.shared else 3
    assert {r.side: r.added for r in reports} == {"need": 0, "result": redone}
    assert again.documents_seen == redone


# --- crash safety, several writers, the change log -------------------------------------------


@pytest.fixture()
def sqlite_sessions(sqlite_engine):
    """As `sessions`, on SQLite only: for checks of the files that cannot depend on the DB."""
    def factory() -> PlatformSession:
        return PlatformSession(sqlite_engine)

    with factory() as session:
        import_records(session, "result", RESULTS, sample=True)
        import_records(session, "need", NEEDS, sample=True)
        session.commit()
    return factory


def _edit_r3(sessions, text: str) -> int:
    with sessions() as session:
        r3 = session.scalars(select(Result).where(Result.external_id == "R3")).one()
        r3.abstract = text
        session.commit()
        return r3.id


def test_a_save_cut_short_before_its_hashes_is_refused_then_rebuilt(
    index_backend,
        sqlite_sessions, tmp_path, monkeypatch):
    """A process dying after writing the vectors but before hashes.json leaves files of two
    saves side by side; load must not take them for one, whatever their ids say."""
    import matcher.indexing as indexing

    store, _ = open_store(tmp_path, CountingEncoder(), sqlite_sessions, backend=index_backend)
    r3 = _edit_r3(sqlite_sessions, "钙钛矿光伏组件封装")

    def die(*_args):
        raise KeyboardInterrupt("killed between the files and hashes.json")

    monkeypatch.setattr(indexing, "_write_json_atomically", die)
    with sqlite_sessions() as session, pytest.raises(KeyboardInterrupt):
        store.items_changed(DatabaseItems(session), "result", [r3])
    monkeypatch.undo()
    assert not list((tmp_path / "indexes").rglob(".tmp-*"))  # the temporaries went with it

    fresh = IndexStore(tmp_path, CountingEncoder(), index_backend)
    fresh.load()
    assert "不是同一次保存" in fresh.load_problems["result"]
    assert "need" not in fresh.load_problems
    with sqlite_sessions() as session:
        report = next(r for r in fresh.check(DatabaseItems(session)) if r.side == "result")
        assert report.changed and report.rebuilt and "不是同一次保存" in report.summary()
        synced = next(r for r in fresh.sync(DatabaseItems(session)) if r.side == "result")
        if index_backend.shared:  # the vectors are trusted by the hashes beside them
            assert synced.rebuilt and (synced.added, synced.updated) == (0, 1)
        else:
            assert synced.rebuilt and synced.added == 3
        assert not any(r.changed for r in fresh.check(DatabaseItems(session)))
    assert fresh.matcher.search("钙钛矿", side="result", k=1, mode="lexical")[0].id == r3


@pytest.mark.parametrize("damage", ["delete-sidecar", "truncate-tokens", "garbage-hashes",
                                    "delete-side", "swap-data-file"])
def test_damaged_index_files_are_reported_then_repaired_at_the_next_start(
    index_backend,
        sqlite_sessions, tmp_path, damage):
    open_store(tmp_path, CountingEncoder(), sqlite_sessions, backend=index_backend)
    side = tmp_path / "indexes" / "result"
    if damage == "delete-sidecar":
        (side / "vectors" / "index.json").unlink()
    elif damage == "truncate-tokens":
        words = side / "lexical" / "postings.npz"
        words.write_bytes(words.read_bytes()[:60])
    elif damage == "garbage-hashes":
        (side / "hashes.json").write_text("{not json", encoding="utf-8")
    elif damage == "delete-side":
        import shutil

        shutil.rmtree(side)
    else:  # another valid data file under the name the sidecar gives
        sidecar = json.loads((side / "vectors" / "index.json").read_text(encoding="utf-8"))
        other = json.loads((side / "windows" / "index.json").read_text(encoding="utf-8"))
        (side / "vectors" / sidecar["file"]).write_bytes(
            (side / "windows" / other["file"]).read_bytes())

    # what `flask check-index` does
    checked = IndexStore(tmp_path, CountingEncoder(), index_backend)
    checked.load()
    with sqlite_sessions() as session:
        report = next(r for r in checked.check(DatabaseItems(session)) if r.side == "result")
    assert report.changed and report.added == 3

    encoder = CountingEncoder()
    # a start: load + sync
    store, reports = open_store(tmp_path, encoder, sqlite_sessions, backend=index_backend)
    # Only the damaged side is re-indexed; on Milvus its vectors are trusted by the hashes
    # beside them, so nothing is encoded (the BM25 side is cut again from the database).
    redone = 0 if index_backend.shared else 3
    assert next(r for r in reports if r.side == "result").added == redone
    assert encoder.documents_seen == redone
    with sqlite_sessions() as session:
        assert not any(r.changed for r in store.check(DatabaseItems(session)))
    assert store.matcher.search("光伏板清洗", side="result", k=1)[0].id in \
        store.matcher.collections["result"].items


def test_two_writers_saving_at_once_never_leave_a_mixed_set(
    index_backend, sqlite_sessions, tmp_path
):
    """Two stores (as two processes: flock locks are per open file, so two stores in one
    process exclude each other like two processes) save different states of the same folder
    over and over; every load afterwards, and during, takes one whole save."""
    import threading

    first, _ = open_store(tmp_path, CountingEncoder(), sqlite_sessions, backend=index_backend)
    r3 = _edit_r3(sqlite_sessions, "钙钛矿光伏组件封装")
    second = IndexStore(tmp_path, CountingEncoder(), index_backend)
    second.load()
    with sqlite_sessions() as session:
        second.sync(DatabaseItems(session))  # second holds the edited text, first the old one
    errors: list[BaseException] = []
    stop = threading.Event()

    def saver(store: IndexStore) -> None:
        try:
            while not stop.is_set():
                store.save_side("result")
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=saver, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(10):
            reader = IndexStore(tmp_path, CountingEncoder(), index_backend)
            reader.load()
            assert reader.load_problems == {}
            assert reader._consistent("result")
            text = reader._indexed_hashes["result"][r3]
            assert text in (first._indexed_hashes["result"][r3],
                            second._indexed_hashes["result"][r3])
            vector = reader.matcher.collections["result"].vectors.vectors(np.array([r3]))[0]
            source = first if text == first._indexed_hashes["result"][r3] else second
            np.testing.assert_array_equal(
                vector, source.matcher.collections["result"].vectors.vectors(np.array([r3]))[0])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []


def test_write_atomically_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from matcher.vector_common import write_atomically

    target = tmp_path / "data.json"
    target.write_text("old", encoding="utf-8")

    def half_then_fail(path):
        path.write_text("half of the new", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomically(target, half_then_fail)
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]
    write_atomically(target, lambda path: path.write_text("new", encoding="utf-8"))
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_every_committed_change_to_a_record_is_logged_in_its_transaction(engine):
    """corpora.changes: inserts, edits, status changes, deletions and an organisation's
    facets are logged once committed; a rollback logs nothing; ids follow commit order."""
    from datetime import timedelta

    from sqlalchemy import func

    from corpora.changes import changes_since, latest_change_id, prune
    from corpora.models import IndexChange, Need, Organisation

    def logged(session, after):
        return changes_since(session, after, latest_change_id(session))

    with PlatformSession(engine) as session:
        import_records(session, "result", RESULTS, sample=True)
        session.commit()
        assert logged(session, 0) == {"result": {1, 2, 3}}
        mark = latest_change_id(session)
        session.add(Need(title="需要", description="说明", organisation=session.scalars(
            select(Organisation).where(Organisation.kind == "university")).first()))
        session.rollback()
        assert latest_change_id(session) == mark  # rolled back: no row
        r2 = session.get(Result, 2)
        r2.status = "withdrawn"
        session.commit()
        assert logged(session, mark) == {"result": {2}}
        mark = latest_change_id(session)
        r2.organisation.city = "嘉兴"  # a facet of every record of that institution
        with session.begin_nested():
            session.delete(session.get(Result, 3))
        session.commit()
        owned = {r.id for r in session.scalars(select(Result).where(
            Result.organisation_id == r2.organisation_id))}
        assert logged(session, mark) == {"result": owned | {3}}
        mark = latest_change_id(session)
        session.get(Result, 1).title = session.get(Result, 1).title  # no real change
        session.commit()
        assert latest_change_id(session) == mark
        assert prune(session) == 0  # all younger than a day
        total = session.scalar(select(func.count()).select_from(IndexChange))
        assert prune(session, older_than=timedelta(0)) == total
        session.commit()
        session.get(Result, 1).abstract = "新的摘要"
        session.commit()
        assert latest_change_id(session) > mark  # ids never start again once pruned
