"""What the Milvus backend adds to the shared contract (tests/engine/test_vector_index.py):
a collection shared by several processes, each with its own view; a Milvus that cannot be
reached; where a save says the vectors are; the backend chosen by the settings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from matcher import vector_milvus
from matcher.index_backend import IndexBackend
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
    assert backend.milvus_uri == str(tmp_path / "milvus" / "indexes.db")  # Lite by default
    assert backend.collection("need", "windows") == "g60_need_windows"
    remote = Settings.from_env({"INDEX_BACKEND": "milvus",
                                "MILVUS_URI": "http://g60:pw@milvus:19530",
                                "MILVUS_COLLECTION_PREFIX": "songjiang"})
    served = backend_for(remote)
    assert served.location("result", "vectors") == "http://***@milvus:19530#songjiang_result_vectors"
    assert "pw@" not in repr(remote)  # the URI may carry a password
    for name, value in [("INDEX_BACKEND", "elastic"), ("MILVUS_INDEX_TYPE", "DISKANN"),
                        ("MILVUS_COLLECTION_PREFIX", "g60-prod")]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: value})
