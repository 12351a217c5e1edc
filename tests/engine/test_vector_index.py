"""One contract, every backend: numpy brute force, exact FAISS, FAISS IVF (forced by a
small threshold) and Milvus (Milvus Lite, a FLAT collection). Exact backends must equal an
independent brute force; IVF must reach recall@10 >= 0.95 and score what it returns exactly.
The tests of the saved files' layout run on the backends whose data is the files."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import tempfile
from datetime import datetime
from pathlib import Path

import faiss
import numpy as np
import pytest

from matcher import vector_faiss_ivf, vector_milvus
from matcher.vector_common import LOCK_NAME, SIDECAR_NAME, TEMP_PREFIX
from matcher.vector_index import (
    ANN_THRESHOLD,
    DimensionMismatchError,
    FaissIndex,
    IndexFileError,
    MilvusIndex,
    NumpyIndex,
    VectorIndex,
    new_index,
    open_index,
)

DIM = 32
N = 3_000
SMALL_THRESHOLD = 1_000  # forces IVF for N vectors; removals must keep >= 500 to stay IVF
BACKENDS = ["numpy", "faiss-exact", "faiss-ivf", "milvus"]
EXACT_BACKENDS = ["numpy", "faiss-exact", "milvus"]
# Backends whose saved data is the files themselves (Milvus saves a pointer to its collection).
FILE_BACKENDS = ["numpy", "faiss-exact", "faiss-ivf"]

# One Milvus Lite file for the module (a file admits one process); a collection per index.
_MILVUS_DIR = tempfile.TemporaryDirectory(prefix="milvus-contract-")
MILVUS_URI = f"{_MILVUS_DIR.name}/contract.db"
_COLLECTIONS = itertools.count()


@pytest.fixture(autouse=True, scope="module")
def _close_milvus():
    yield
    vector_milvus.close_client(MILVUS_URI)
    _MILVUS_DIR.cleanup()


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class Mixture:
    """Clustered unit vectors, like embeddings: Gaussian blobs around random centres."""

    def __init__(self, centres: int = 40, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.centres = unit(rng.standard_normal((centres, DIM)))

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, len(self.centres), n)
        noise = rng.standard_normal((n, DIM)) * 0.8 / np.sqrt(DIM)
        return unit(self.centres[labels] + noise)


MIXTURE = Mixture()
VECTORS = MIXTURE.sample(N, seed=1)
# Sparse, large ids: nothing may assume ids are row numbers.
IDS = np.arange(N, dtype=np.int64) * 7 + 10**12
QUERIES = MIXTURE.sample(50, seed=2)
ROW_OF_ID = {int(item_id): row for row, item_id in enumerate(IDS)}


def make_index(backend: str, dimension: int = DIM) -> VectorIndex:
    if backend == "numpy":
        return NumpyIndex(dimension)
    if backend == "faiss-exact":
        return FaissIndex(dimension, progress=False)
    if backend == "milvus":
        return MilvusIndex(dimension, uri=MILVUS_URI, collection=f"c{next(_COLLECTIONS)}")
    return FaissIndex(dimension, ann_threshold=SMALL_THRESHOLD, progress=False)


@functools.cache
def _built_once(backend: str) -> VectorIndex:
    index = make_index(backend)
    index.build(IDS, VECTORS)
    if backend == "faiss-ivf":
        assert index.kind == "faiss-ivf"
    return index


def built(backend: str) -> VectorIndex:
    """A fresh copy of the index over IDS/VECTORS (built once per backend: IVF training is
    the slow part of this module). A Milvus index is a collection: each gets its own."""
    if backend == "milvus":
        index = make_index(backend)
        index.build(IDS, VECTORS)
        return index
    return copy.deepcopy(_built_once(backend))


def brute_force(
    queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int
) -> list[list[tuple[int, float]]]:
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [
        [(int(ids[j]), float(row[j])) for j in top] for row, top in zip(scores, order, strict=True)
    ]


def true_score(query: np.ndarray, item_id: int) -> float:
    return float(query @ VECTORS[ROW_OF_ID[item_id]])


def assert_exact(got, expected, queries) -> None:
    """Same scores position by position; same ids except where two scores tie within 1e-5."""
    assert len(got) == len(expected)
    for query, got_row, expected_row in zip(queries, got, expected, strict=True):
        assert len(got_row) == len(expected_row)
        for (got_id, got_score), (expected_id, expected_score) in zip(
            got_row, expected_row, strict=True
        ):
            assert got_score == pytest.approx(expected_score, abs=1e-5)
            if got_id != expected_id:
                assert true_score(query, got_id) == pytest.approx(expected_score, abs=1e-5)


def recall_at(got, expected) -> float:
    found = sum(
        len({i for i, _ in g} & {i for i, _ in e}) for g, e in zip(got, expected, strict=True)
    )
    return found / sum(len(e) for e in expected)


# --- search quality --------------------------------------------------------------------


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_exact_backends_equal_brute_force(backend: str) -> None:
    index = built(backend)
    for k in (1, 10, 37):
        assert_exact(index.search(QUERIES, k), brute_force(QUERIES, IDS, VECTORS, k), QUERIES)


def test_ivf_recall_and_exact_scores_on_clustered_data() -> None:
    index = built("faiss-ivf")
    got = index.search(QUERIES, 10)
    assert recall_at(got, brute_force(QUERIES, IDS, VECTORS, 10)) >= 0.95
    for query, row in zip(QUERIES, got, strict=True):
        assert len(row) == 10
        assert [s for _, s in row] == sorted((s for _, s in row), reverse=True)
        for item_id, score in row:  # IVF-Flat scores are exact inner products
            assert score == pytest.approx(true_score(query, item_id), abs=1e-5)


def test_ivf_calibrates_a_probe_count_below_exhaustive() -> None:
    index = built("faiss-ivf")
    nlist = vector_faiss_ivf.nlist_for(N)
    assert 1 <= index.nprobe_for(10) <= index.nprobe_for(100) < nlist
    assert index.nprobe_for(1) == index.nprobe_for(10)
    assert index.nprobe_for(400) == min(nlist, 4 * index.nprobe_for(100))
    assert all(r >= vector_faiss_ivf.TARGET_RECALL for r in index._calibrated_recall.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_query_vector_and_results_best_first(backend: str) -> None:
    index = built(backend)
    (row,) = index.search(QUERIES[0], 5)
    assert len(row) == 5
    assert all(isinstance(i, int) and isinstance(s, float) for i, s in row)
    assert [s for _, s in row] == sorted((s for _, s in row), reverse=True)
    (self_hit, *_), *_ = index.search(VECTORS[:1], 1)
    assert self_hit[0] == IDS[0] and self_hit[1] == pytest.approx(1.0, abs=1e-5)


# --- updates ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_upsert_replaces_existing_vectors(backend: str) -> None:
    index = built(backend)
    target = int(IDS[123])
    new_vector = QUERIES[:1]
    index.add(np.array([target]), new_vector)
    assert index.count() == N
    np.testing.assert_array_equal(index.vectors(np.array([target])), new_vector)
    (top, *_), *_ = index.search(new_vector, 1)
    assert top[0] == target and top[1] == pytest.approx(1.0, abs=1e-5)
    # the old vector is gone: searching for it no longer finds `target` at score 1
    hits = index.search(VECTORS[123:124], 20)[0]
    assert all(score < 0.999 for item_id, score in hits if item_id == target)


@pytest.mark.parametrize("backend", BACKENDS)
def test_add_new_items_is_searchable(backend: str) -> None:
    index = built(backend)
    new_ids = np.array([5, 6], dtype=np.int64)
    index.add(new_ids, QUERIES[:2])
    assert index.count() == N + 2
    assert {5, 6} <= set(index.ids().tolist())
    assert [row[0][0] for row in index.search(QUERIES[:2], 3)] == [5, 6]


@pytest.mark.parametrize("backend", BACKENDS)
def test_remove_removes_for_good(backend: str) -> None:
    index = built(backend)
    gone = IDS[:400]
    assert index.remove(np.concatenate([gone, gone[:5], [42]])) == 400  # dupes, absent ignored
    assert index.count() == N - 400
    assert not set(gone.tolist()) & set(index.ids().tolist())
    for row in index.search(VECTORS[:400], 20):
        assert len(row) == 20 and not {i for i, _ in row} & set(gone.tolist())
    assert index.remove(gone) == 0
    with pytest.raises(KeyError):
        index.vectors(gone[:1])


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_exact_after_updates_equals_brute_force(backend: str) -> None:
    index = built(backend)
    index.remove(IDS[::3])
    keep = np.ones(N, dtype=bool)
    keep[::3] = False
    assert_exact(
        index.search(QUERIES, 10), brute_force(QUERIES, IDS[keep], VECTORS[keep], 10), QUERIES
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_vectors_returns_stored_vectors_in_order(backend: str) -> None:
    index = built(backend)
    rows = np.array([17, 3, 2999, 17])
    np.testing.assert_array_equal(index.vectors(IDS[rows]), VECTORS[rows])
    assert index.ids().dtype == np.int64
    assert sorted(index.ids().tolist()) == sorted(IDS.tolist())


# --- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("allowed_count", [3, 40, 900, 2_500])
def test_filtered_search_returns_only_allowed_and_full_top_k(
    backend: str, allowed_count: int
) -> None:
    index = built(backend)
    rng = np.random.default_rng(allowed_count)
    rows = np.sort(rng.choice(N, allowed_count, replace=False))
    allowed = np.concatenate([IDS[rows], [1, 2, 3]])  # ids not stored are ignored
    got = index.search(QUERIES, 10, allowed_ids=allowed)
    for row in got:
        assert len(row) == min(10, allowed_count)
        assert {i for i, _ in row} <= set(IDS[rows].tolist())
    expected = brute_force(QUERIES, IDS[rows], VECTORS[rows], 10)
    if backend in EXACT_BACKENDS:
        assert_exact(got, expected, QUERIES)
    else:
        assert recall_at(got, expected) >= 0.95


def test_ivf_search_widens_until_full(monkeypatch) -> None:
    """Probing one list finds too few (allowed) items: the search must widen until full,
    through the index's selector rather than the brute-force shortcut."""
    index = built("faiss-ivf")
    monkeypatch.setattr(index, "_exact_filter_limit", lambda k, allowed_count: 0)
    monkeypatch.setattr(index, "nprobe_for", lambda k: 1)
    rows = np.random.default_rng(9).choice(N, 40, replace=False)
    for allowed, available in ((IDS[rows], rows.size), (None, N)):
        k = min(available, 600)  # 600 is far more than the ~40 items of one list
        got = index.search(QUERIES[:5], k, allowed_ids=allowed)
        assert all(len(row) == k for row in got)
        if allowed is not None:  # 40 of 3,000 spread over all lists: widened to every list
            assert_exact(got, brute_force(QUERIES[:5], IDS[rows], VECTORS[rows], k), QUERIES[:5])


@pytest.mark.parametrize("backend", ["faiss-exact", "faiss-ivf"])
@pytest.mark.parametrize("id_scale", [1, 10**12], ids=["bitmap", "hash-set"])
def test_filter_through_faiss_selectors_is_exact_when_exhaustive(
    backend: str, id_scale: int, monkeypatch
) -> None:
    """Small ids filter through a bitmap, huge ones through a hash set; both must keep
    exactly the allowed ids (widening to every list here makes IVF exhaustive)."""
    index = make_index(backend)
    ids = np.arange(N, dtype=np.int64) * 3 + id_scale
    index.build(ids, VECTORS)
    if backend == "faiss-ivf":
        monkeypatch.setattr(index, "_exact_filter_limit", lambda k, allowed_count: 0)
        monkeypatch.setattr(index, "nprobe_for", lambda k: vector_faiss_ivf.nlist_for(N))
    rows = np.random.default_rng(3).choice(N, 700, replace=False)
    got = index.search(QUERIES, 10, allowed_ids=ids[rows])
    expected = brute_force(QUERIES, ids[rows], VECTORS[rows], 10)
    for got_row, expected_row in zip(got, expected, strict=True):
        assert [i for i, _ in got_row] == [i for i, _ in expected_row]


@pytest.mark.parametrize("k", [100, 400])
def test_ivf_deep_search_keeps_recall(k: int) -> None:
    index = built("faiss-ivf")
    allowed = IDS[::2]
    assert recall_at(index.search(QUERIES, k), brute_force(QUERIES, IDS, VECTORS, k)) >= 0.95
    got = index.search(QUERIES, k, allowed_ids=allowed)
    assert all(len(row) == k for row in got)
    expected = brute_force(QUERIES, IDS[::2], VECTORS[::2], k)
    assert recall_at(got, expected) >= 0.95


@pytest.mark.parametrize("backend", BACKENDS)
def test_filter_with_nothing_allowed(backend: str) -> None:
    index = built(backend)
    assert index.search(QUERIES[:2], 5, allowed_ids=np.array([], dtype=np.int64)) == [[], []]
    assert index.search(QUERIES[:2], 5, allowed_ids=np.array([1, 2])) == [[], []]


# --- edge cases and bad input ----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_index(backend: str, tmp_path: Path) -> None:
    index = make_index(backend)
    assert index.count() == 0 and index.ids().size == 0
    assert index.search(QUERIES[:3], 5) == [[], [], []]
    assert index.search(QUERIES[:1], 5, allowed_ids=IDS[:3]) == [[]]
    index.save(tmp_path, model="m")
    assert open_index(tmp_path).search(QUERIES[:1], 5) == [[]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_k_larger_than_count(backend: str) -> None:
    index = make_index(backend)
    index.build(IDS[:5], VECTORS[:5])
    (row,) = index.search(QUERIES[:1], 50)
    assert sorted(i for i, _ in row) == sorted(IDS[:5].tolist())
    assert_exact([row], brute_force(QUERIES[:1], IDS[:5], VECTORS[:5], 50), QUERIES[:1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dimension_mismatch_is_refused_clearly(backend: str) -> None:
    index = built(backend)
    wrong = unit(np.ones((1, DIM + 1)))
    with pytest.raises(DimensionMismatchError, match=f"dimension {DIM + 1}.*{DIM}-d"):
        index.add(np.array([1]), wrong)
    with pytest.raises(DimensionMismatchError, match="queries have dimension"):
        index.search(wrong, 3)
    with pytest.raises(DimensionMismatchError):
        make_index(backend).build(np.array([1]), wrong)
    assert index.count() == N


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_is_refused_and_changes_nothing(backend: str) -> None:
    index = built(backend)
    with pytest.raises(ValueError, match="duplicate ids"):
        index.add(np.array([1, 1]), QUERIES[:2])
    with pytest.raises(ValueError, match="L2-normalised"):
        index.add(np.array([1]), QUERIES[:1] * 2)
    with pytest.raises(ValueError, match="non-negative"):
        index.add(np.array([-1]), QUERIES[:1])
    with pytest.raises(ValueError, match="2 ids but 1 vectors"):
        index.add(np.array([1, 2]), QUERIES[:1])
    with pytest.raises(TypeError, match="integers"):
        index.add(np.array([1.5]), QUERIES[:1])
    with pytest.raises(ValueError, match="k must be"):
        index.search(QUERIES, 0)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, DIM), np.nan), 3)
    assert index.count() == N


# --- persistence -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_round_trip_gives_identical_results(backend: str, tmp_path: Path) -> None:
    index = built(backend)
    index.remove(IDS[:10])
    index.add(np.array([3]), QUERIES[:1])
    allowed = IDS[::5]
    index.save(tmp_path, model="intfloat/multilingual-e5-small")
    for loaded in (open_index(tmp_path), type(index).load(tmp_path)):
        assert type(loaded) is type(index)
        assert loaded.count() == index.count() and loaded.dimension == DIM
        np.testing.assert_array_equal(np.sort(loaded.ids()), np.sort(index.ids()))
        assert loaded.search(QUERIES, 10) == index.search(QUERIES, 10)
        assert loaded.search(QUERIES, 10, allowed_ids=allowed) == index.search(
            QUERIES, 10, allowed_ids=allowed
        )
        assert loaded.meta == index.meta
        # still updatable in place after loading
        loaded.add(np.array([4]), QUERIES[1:2])
        assert loaded.search(QUERIES[1:2], 1)[0][0][0] == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_copy_is_independent_and_saves_like_the_original(backend: str, tmp_path: Path) -> None:
    index = built(backend)
    index.remove(IDS[:10])
    before = index.search(QUERIES, 10)
    clone = index.copy()
    assert type(clone) is type(index) and clone.count() == index.count()
    assert clone.search(QUERIES, 10) == before
    # Edits of either side leave the other alone.
    index.add(np.array([3]), QUERIES[:1])
    index.remove(IDS[10:20])
    clone.remove(IDS[30:31])
    assert int(IDS[10]) in clone.ids().tolist() and 3 not in clone.ids().tolist()
    assert int(IDS[30]) in index.ids().tolist()
    clone.save(tmp_path, model="m")
    loaded = open_index(tmp_path)
    assert loaded.count() == clone.count()
    assert loaded.search(QUERIES, 10) == clone.search(QUERIES, 10)


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_sidecar_contents(backend: str, tmp_path: Path) -> None:
    index = built(backend)
    index.save(tmp_path, model="bge-small-zh")
    sidecar = json.loads((tmp_path / SIDECAR_NAME).read_text(encoding="utf-8"))
    assert sidecar["model"] == "bge-small-zh"
    assert sidecar["dimension"] == DIM and sidecar["count"] == N
    assert sidecar["kind"] == backend.replace("faiss-exact", "faiss-flat")
    built_at = datetime.fromisoformat(sidecar["built_at"])
    assert built_at.utcoffset() is not None and built_at.utcoffset().total_seconds() == 0
    assert (tmp_path / sidecar["file"]).stat().st_size == sidecar["file_bytes"]
    assert len(sidecar["sha256"]) == 64
    if backend != "numpy":
        assert sidecar["faiss_version"] == faiss.__version__
    if backend == "faiss-ivf":
        assert sidecar["nlist"] == vector_faiss_ivf.nlist_for(N)
        assert sidecar["nprobe_by_k"] == {"10": index.nprobe_for(10), "100": index.nprobe_for(100)}
        assert sidecar["trained_count"] == N
    assert index.meta == sidecar


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_resaving_leaves_one_data_file_and_no_temporaries(backend: str, tmp_path: Path) -> None:
    index = built(backend)
    (tmp_path / f"{TEMP_PREFIX}leftover").write_bytes(b"from a crashed save")
    index.save(tmp_path, model="m")
    index.remove(IDS[:1])
    index.save(tmp_path, model="m")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([SIDECAR_NAME, LOCK_NAME, index.meta["file"]])
    assert open_index(tmp_path).count() == N - 1


def test_crash_while_writing_keeps_the_previous_index(tmp_path: Path, monkeypatch) -> None:
    index = built("faiss-exact")
    index.save(tmp_path, model="m")
    before = sorted(p.name for p in tmp_path.iterdir())

    def torn_write(_index, path: str) -> None:
        Path(path).write_bytes(b"half an index")
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", torn_write)
    index.remove(IDS[:100])
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path, model="m")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert open_index(tmp_path).count() == N


def _edit_sidecar(directory: Path, **changes) -> None:
    path = directory / SIDECAR_NAME
    sidecar = json.loads(path.read_text(encoding="utf-8"))
    sidecar.update(changes)
    path.write_text(json.dumps(sidecar), encoding="utf-8")


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_inconsistent_or_corrupt_index_is_refused(backend: str, tmp_path: Path) -> None:
    index = built(backend)
    index.save(tmp_path, model="m")
    sidecar_text = (tmp_path / SIDECAR_NAME).read_text(encoding="utf-8")
    data_path = tmp_path / index.meta["file"]
    data = data_path.read_bytes()

    def restore() -> None:
        (tmp_path / SIDECAR_NAME).write_text(sidecar_text, encoding="utf-8")
        data_path.write_bytes(data)

    cases = {
        "count": (lambda: _edit_sidecar(tmp_path, count=N + 1), "sidecar says 3001"),
        "dimension": (lambda: _edit_sidecar(tmp_path, dimension=DIM * 2), "sidecar says 64"),
        "json": (lambda: (tmp_path / SIDECAR_NAME).write_text("{oops"), "not valid JSON"),
        "field": (lambda: _edit_sidecar(tmp_path, model=None), "'model'"),
        "kind": (lambda: _edit_sidecar(tmp_path, kind="hnsw"), "unknown index kind"),
        "corrupt data": (
            lambda: data_path.write_bytes(data[:-100] + bytes(100)),
            "corrupt or replaced",
        ),
        "missing data": (lambda: data_path.unlink(), "is missing"),
        "garbage that matches its sidecar": (
            lambda: _garbage_with_matching_sidecar(tmp_path, data_path),
            "not a readable",
        ),
    }
    for name, (damage, message) in cases.items():
        damage()
        with pytest.raises(IndexFileError, match=message):
            open_index(tmp_path)
        restore()
        assert open_index(tmp_path).count() == N, name
    (tmp_path / SIDECAR_NAME).unlink()
    with pytest.raises(IndexFileError, match="index.json is missing"):
        open_index(tmp_path)


def _garbage_with_matching_sidecar(directory: Path, data_path: Path) -> None:
    from matcher.vector_common import sha256_of

    data_path.write_bytes(b"not an index at all")
    _edit_sidecar(directory, file_bytes=data_path.stat().st_size, sha256=sha256_of(data_path))


def test_loading_with_the_wrong_backend_is_refused(tmp_path: Path) -> None:
    built("numpy").save(tmp_path, model="m")
    with pytest.raises(IndexFileError, match="kind 'numpy'"):
        FaissIndex.load(tmp_path)


# --- automatic structure ---------------------------------------------------------------


def test_new_index_is_automatic_faiss() -> None:
    index = new_index(DIM)
    assert isinstance(index, FaissIndex) and isinstance(index, VectorIndex)
    assert index.ann_threshold == ANN_THRESHOLD and index.kind == "faiss-flat"


def test_faiss_switches_structure_with_size_and_stays_correct() -> None:
    index = FaissIndex(DIM, ann_threshold=SMALL_THRESHOLD, progress=False)
    index.build(IDS[:900], VECTORS[:900])
    assert index.kind == "faiss-flat"
    index.add(IDS[900:1000], VECTORS[900:1000])  # reaches the threshold: becomes IVF
    assert index.kind == "faiss-ivf" and index._trained_count == 1000
    index.add(IDS[1000:1999], VECTORS[1000:1999])  # under twice the trained size: in place
    assert index._trained_count == 1000
    index.add(IDS[1999:2000], VECTORS[1999:2000])  # twice the trained size: retrained
    assert index._trained_count == 2000
    got = index.search(QUERIES, 10)
    assert recall_at(got, brute_force(QUERIES, IDS[:2000], VECTORS[:2000], 10)) >= 0.95
    index.remove(IDS[:1501])  # below half the threshold: exact again
    assert index.kind == "faiss-flat" and index.count() == 499
    assert_exact(
        index.search(QUERIES, 10),
        brute_force(QUERIES, IDS[1501:2000], VECTORS[1501:2000], 10),
        QUERIES,
    )
