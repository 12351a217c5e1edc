"""What the Milvus backend adds to the shared contract (tests/engine/test_vector_index.py):
a collection shared by several processes, each with its own view; a Milvus that cannot be
reached; where a save says the vectors are; the backend chosen by the settings."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from embeddings.fake import FakeEncoder
from matcher import vector_milvus
from matcher.filters import Filters
from matcher.index_backend import IndexBackend
from matcher.indexing import IndexStore
from matcher.retriever import Matcher
from matcher.sources import MemoryItems
from matcher.types import Item
from matcher.vector_common import SIDECAR_NAME, IndexUnavailableError
from matcher.vector_index import MilvusIndex, open_index
from service.composition import backend_for
from settings import Settings, SettingsError

pytestmark = pytest.mark.milvus
DIM = 16


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def uri(tmp_path: Path):  # noqa: ANN201
    path = str(tmp_path / "milvus.db")
    yield path
    vector_milvus.close_client(path)


def test_two_views_of_one_collection_see_only_what_each_has_applied(uri: str) -> None:
    """Two processes share the collection; each has applied the change log up to its own
    point. Neither is served an item it does not know yet, top-k stays full, and an item the
    other removed scores 0 until this one applies the removal too."""
    rng = np.random.default_rng(0)
    vectors = unit(rng.standard_normal((200, DIM)))
    first = MilvusIndex(DIM, uri=uri, collection="shared")
    first.build(np.arange(200), vectors)
    second = MilvusIndex(DIM, uri=uri, collection="shared")
    assert second.count() == 200

    # The first adds 50 items right where the query looks (more than the search's slack).
    query = vectors[:1]
    near = unit(query + 0.01 * rng.standard_normal((50, DIM)))
    first.add(np.arange(1000, 1050), near)
    hits = second.search(query, 10)[0]
    assert len(hits) == 10 and all(i < 200 for i, _ in hits)
    assert [i for i, _ in hits] == [i for i, _ in first.search(
        query, 10, allowed_ids=np.arange(200))[0]]
    assert {i for i, _ in first.search(query, 10)[0]} <= set(range(1000, 1050)) | {0}

    # The first removes item 0; the second has not heard yet: no error, a zero vector.
    first.remove(np.array([0]))
    assert 0 in second.ids().tolist()
    assert not second.vectors(np.array([0, 1])).any(axis=1)[0]
    np.testing.assert_allclose(second.vectors(np.array([1]))[0], vectors[1], atol=1e-6)
    with pytest.raises(KeyError):
        second.vectors(np.array([1000]))  # not in its view yet


def test_unreachable_milvus_is_a_clear_error_not_a_hang() -> None:
    started = time.monotonic()
    with pytest.raises(IndexUnavailableError, match=r"无法连接 Milvus http://\*\*\*@127\.0\.0\.1:9"):
        MilvusIndex(DIM, uri="http://root:secret@127.0.0.1:9", collection="x")
    assert time.monotonic() - started < 30


def test_save_records_where_the_vectors_are_without_the_password(uri: str, tmp_path: Path
                                                                 ) -> None:
    index = MilvusIndex(DIM, uri=uri, collection="side_vectors", index_type="HNSW")
    index.build(np.arange(5), unit(np.eye(5, DIM)))
    index.save(tmp_path / "saved", model="m")
    sidecar = json.loads((tmp_path / "saved" / SIDECAR_NAME).read_text(encoding="utf-8"))
    assert sidecar["kind"] == "milvus" and sidecar["collection"] == "side_vectors"
    assert sidecar["location"] == f"{uri}#side_vectors" and sidecar["count"] == 5
    assert sidecar["index_type"] == "HNSW"
    loaded = open_index(tmp_path / "saved")
    assert isinstance(loaded, MilvusIndex) and loaded.count() == 5
    assert loaded.search(unit(np.eye(1, DIM)), 1)[0][0][0] == 0
    assert vector_milvus.redacted("http://user:pw@host:19530") == "http://***@host:19530"


def test_a_collection_of_another_width_is_replaced(uri: str) -> None:
    old = MilvusIndex(8, uri=uri, collection="c")
    old.build(np.arange(3), unit(np.eye(3, 8)))
    new = MilvusIndex(DIM, uri=uri, collection="c")  # another model: another width
    assert new.count() == 0 and new.dimension == DIM
    new.add(np.array([7]), unit(np.eye(1, DIM)))
    assert new.search(unit(np.eye(1, DIM)), 5)[0] == [(7, pytest.approx(1.0))]


def test_the_settings_choose_the_backend(tmp_path: Path) -> None:
    assert backend_for(Settings()) == IndexBackend()
    settings = Settings.from_env({"MATCHER_HOME": str(tmp_path), "INDEX_BACKEND": "Milvus",
                                  "MILVUS_INDEX_TYPE": "hnsw"})
    backend = backend_for(settings)
    assert backend.name == "milvus" and backend.milvus_index_type == "HNSW"
    assert backend.milvus_lexical == "milvus" and backend.full_text_factory is not None
    in_process = backend_for(Settings.from_env({"INDEX_BACKEND": "milvus",
                                                "MILVUS_LEXICAL": "Process"}))
    assert in_process.full_text_factory is None
    assert backend.milvus_uri == str(tmp_path / "milvus" / "indexes.db")  # Lite by default
    assert backend.collection("need", "windows") == "g60_need_windows"
    remote = Settings.from_env({"INDEX_BACKEND": "milvus",
                                "MILVUS_URI": "http://g60:pw@milvus:19530",
                                "MILVUS_COLLECTION_PREFIX": "songjiang"})
    served = backend_for(remote)
    assert served.location("result", "vectors") == "http://***@milvus:19530#songjiang_result_vectors"
    assert "pw@" not in repr(remote)  # the URI may carry a password
    for name, value in [("INDEX_BACKEND", "elastic"), ("MILVUS_INDEX_TYPE", "DISKANN"),
                        ("MILVUS_COLLECTION_PREFIX", "g60-prod"), ("MILVUS_LEXICAL", "es")]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: value})


# --- filters inside the search ------------------------------------------------------------

INDUSTRIES = ["新材料", "生物医药", '引号"与\\反斜杠']


def _corpus() -> list[Item]:
    """Results in three industries (one with a quote and a backslash in its name), some with
    several windows, several transfer modes, and dates."""
    items = []
    for n in range(120):
        text = f"第{n}号成果 石墨烯导热膜 抗体制剂 稳定性 传感器 " * (1 + n % 4)
        items.append(Item(n + 1, "result", f"成果{n}", text, facets={
            "industry": INDUSTRIES[n % 3], "result_type": "发明专利" if n % 2 else "论文",
            "cooperation_mode": "许可;技术转让" if n % 5 == 0 else "许可",
            "date": f"20{20 + n % 5}-0{1 + n % 9}-15"}))
    return items


def _matchers(uri: str) -> tuple[Matcher, Matcher]:
    backend = IndexBackend("milvus", uri, "filters")
    in_process = Matcher(FakeEncoder(DIM, window_chars=40))
    on_milvus = Matcher(FakeEncoder(DIM, window_chars=40), index_factory=backend.new)
    for matcher in (in_process, on_milvus):
        matcher.index_items(_corpus())
    return in_process, on_milvus


def test_filters_run_inside_milvus_and_rank_as_in_process(uri: str, monkeypatch) -> None:
    in_process, on_milvus = _matchers(uri)
    coll = on_milvus.collections["result"]
    assert coll.filters_inside() and coll.extra_windows
    # Each search below must reach Milvus with the filter expression, never a list of ids.
    sent: list[str] = []
    real = MilvusIndex.search

    def spy(self, queries, k, *, allowed_ids=None, filters=None):  # noqa: ANN001, ANN202
        assert allowed_ids is None or len(allowed_ids) < vector_milvus.FETCH_ALLOWED_BELOW
        if filters:
            sent.append(vector_milvus.milvus_filter(filters))
        return real(self, queries, k, allowed_ids=allowed_ids, filters=filters)

    monkeypatch.setattr(MilvusIndex, "search", spy)
    cases = [Filters.of(industry=INDUSTRIES[2]), Filters.of(industry=["新材料", "生物医药"],
             result_type="论文"), Filters.of(cooperation_mode="技术转让"),
             Filters.of(date_from="2022-01-01", date_to="2023-12-31", result_type="发明专利")]
    for filters in cases:
        expected = in_process.search("石墨烯导热膜 稳定性", side="result", k=15,
                                     mode="dense", filters=filters)
        got = on_milvus.search("石墨烯导热膜 稳定性", side="result", k=15, mode="dense",
                               filters=filters)
        assert expected and [m.id for m in got] == [m.id for m in expected]
        assert all(filters.allows(coll.items[m.id]) for m in got)
    assert len(sent) >= len(cases) and '\\\\' in sent[0]


def test_facet_edits_reach_milvus_and_a_sync_repairs_lost_ones(uri: str) -> None:
    items = _corpus()
    source = MemoryItems(items)
    backend = IndexBackend("milvus", uri, "facets")
    store = IndexStore(Path(uri).parent / "home", FakeEncoder(DIM, window_chars=40), backend)
    store.sync(source)
    coll = store.matcher.collections["result"]
    only_new = Filters.of(industry="量子信息")
    assert store.matcher.search("石墨烯", side="result", filters=only_new, mode="dense") == []

    # A facet-only edit (no new text, nothing re-embedded): Milvus filters on the new value.
    moved = replace(items[7], facets=items[7].facets | {"industry": "量子信息"})
    source.put(moved)
    store.items_changed(source, "result", [moved.id], save=False)
    assert coll.vectors.stored_facets()[moved.id]["industry"] == ["量子信息"]
    assert [m.id for m in store.matcher.search("石墨烯", side="result", filters=only_new,
                                               mode="dense")] == [moved.id]

    # A facet edit whose write to Milvus was lost: the sync's comparison writes it.
    lost = replace(items[8], facets=items[8].facets | {"industry": "量子信息"})
    source.put(lost)
    coll.items[lost.id] = lost  # this process knows; Milvus does not
    assert store.matcher.search("石墨烯", side="result", filters=only_new, mode="dense",
                                k=5)[0].id == moved.id
    store.sync(source)
    assert coll.vectors.stored_facets()[lost.id]["industry"] == ["量子信息"]
    found = store.matcher.search("石墨烯", side="result", filters=only_new, mode="dense")
    assert sorted(m.id for m in found) == sorted([moved.id, lost.id])


def test_a_collection_of_an_older_layout_is_replaced(uri: str) -> None:
    from pymilvus import DataType

    client = vector_milvus.client_for(uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)  # no facets field
    params = client.prepare_index_params()
    params.add_index("vector", index_type="FLAT", metric_type="IP")
    client.create_collection("old", schema=schema, index_params=params)
    index = MilvusIndex(DIM, uri=uri, collection="old")
    index.add(np.array([1]), unit(np.eye(1, DIM)), facets=[{"industry": ["新材料"]}])
    assert index.stored_facets() == {1: {"industry": ["新材料"]}}


def test_a_lite_file_in_a_folder_not_made_yet(tmp_path: Path) -> None:
    uri = str(tmp_path / "new-home" / "milvus" / "indexes.db")
    try:
        index = MilvusIndex(DIM, uri=uri, collection="c")
        index.add(np.array([1]), unit(np.eye(1, DIM)))
        assert index.count() == 1
    finally:
        vector_milvus.close_client(uri)
