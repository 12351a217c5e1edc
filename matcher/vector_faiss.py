"""FAISS inner-product index that picks exact or approximate search by size.

Structure and when it changes (all automatic, no caller has to remember a rebuild):

* `build` chooses from scratch: exact `IndexIDMap2(IndexFlatIP)` below `ann_threshold`
  vectors, else `IndexIVFFlat` trained on (a sample of) the vectors being built.
* `add` / `remove` / upsert touch single items in place: IDMap2 keeps a reverse map and the
  IVF index a hash-table direct map, so neither rebuilds. Two growth points do restructure,
  each at least doubling the size since the last one, so the cost per added item stays O(1)
  amortised: an exact index that reaches `ann_threshold` becomes IVF, and an IVF index that
  reaches twice the size it was trained on is retrained (its centroids and probe count were
  fitted to half the data; lists grow long and latency with them).
* `remove` turns IVF back into exact below `ann_threshold / 2` (the gap stops flip-flopping
  around the threshold); that needs no training and is cheap at that size.

IVF stores full float32 vectors, so its scores are exact inner products and `vectors`
returns the stored vectors bit for bit; only *which* candidates are scored is approximate.
How many lists a query probes (`nprobe`) is calibrated at training time on stored vectors
used as queries: for k = 10 and k = 100, the smallest nprobe whose recall@k against exact
search reaches `target_recall` (deeper k scale it linearly). Any search, filtered or not,
keeps widening its probe until it returns min(k, items it may return) hits.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from matcher.vector_common import (
    Hits,
    IndexFileError,
    as_ids,
    as_queries,
    as_vectors,
    check_k,
    check_loaded,
    commit_index_files,
    open_committed,
    sorted_unique,
    utc_now_iso,
)

KIND_FLAT = "faiss-flat"
KIND_IVF = "faiss-ivf"

# Below this many vectors the index is exact. Measured with `benchmarks/search.py` (384-d
# clustered vectors, one thread, p50 per single query): exact search costs ~0.085 ms per
# 1,000 vectors (0.41 ms at 10k, 1.8 ms at 20k, 4.5 ms at 50k, 8.2 ms at 100k, 85 ms at
# 1M), IVF 0.11 ms at 20k, 0.14 ms at 50k, 0.20 ms at 100k, 0.60 ms at 1M, with recall@10
# 0.97-0.98. Up to 20k exact search stays under ~2 ms, is perfect and needs no training
# (IVF takes ~1 s to train at 20k), so approximation buys nothing there; past it exact
# latency grows linearly and IVF is 30x faster by 50k.
ANN_THRESHOLD = 20_000
# Recall@10 the calibration aims for on stored vectors; above the 0.95 promised against
# exact search, to leave room for real queries being harder than stored items.
TARGET_RECALL = 0.97
# faiss warns below 39 training points per centroid; 40 is enough for k-means to place
# them, and keeps training at 1M vectors to tens of seconds on one core.
TRAIN_POINTS_PER_LIST = 40
# Lists ~ 2·sqrt(n): a probe then scans ~sqrt(n)/2 vectors (see nlist_for).
NLIST_PER_SQRT_N = 2.0
CALIBRATION_QUERIES = 256
# Calibrated depths: 10 for result pages, 100 for candidate lists handed to fusion/rerank.
CALIBRATION_KS = (10, 100)
# Filtered IVF search always brute-forces allowed sets this small (see _exact_filter_limit).
FILTER_EXACT_MIN = 1_000
# Filters over ids below this bound use a bitmap (at most 8 MiB), larger ids a hash set.
BITMAP_MAX_ID = 1 << 26
ADD_CHUNK = 65_536
PROGRESS_MIN_ROWS = 100_000


def nlist_for(count: int) -> int:
    """Number of IVF lists for `count` vectors.

    More lists make each probe cheaper but need more probes, and training time grows with
    the square of the count (samples and centroids both scale with it). Measured at 1M on
    the benchmark's data, one thread: 1,024 lists reached recall@10 0.98 at 4 probes with
    p95 4.9 ms (long lists: cluster sizes are skewed), 2,048 lists 0.97 at 4 probes with
    p95 0.6 ms, and took 29 s to train on two threads, against 5 s; 4,096 would train ~4x
    longer again. So ~2·sqrt(n), and never fewer than TRAIN_POINTS_PER_LIST per list.
    """
    lists = int(NLIST_PER_SQRT_N * math.sqrt(count))
    return max(1, min(lists, count // TRAIN_POINTS_PER_LIST))


class FaissIndex:
    def __init__(
        self,
        dimension: int,
        *,
        ann_threshold: int = ANN_THRESHOLD,
        target_recall: float = TARGET_RECALL,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if ann_threshold < 2 * TRAIN_POINTS_PER_LIST:
            raise ValueError(f"ann_threshold must be at least {2 * TRAIN_POINTS_PER_LIST}")
        self.dimension = int(dimension)
        self.ann_threshold = int(ann_threshold)
        self.target_recall = float(target_recall)
        self.seed = seed
        self.progress = progress
        self.meta: dict[str, Any] = {}
        self._index: faiss.Index = self._new_flat()
        self._ivf: faiss.IndexIVFFlat | None = None
        # Sorted copy of the stored ids: membership tests for upsert, filters and `vectors`
        # without asking FAISS (whose direct maps expose no batch lookup). 8 bytes an id.
        self._sorted_ids = np.empty(0, dtype=np.int64)
        # calibrated per k (see _calibrate); both empty while the index is exact
        self._nprobe_by_k: dict[int, int] = {}
        self._calibrated_recall: dict[int, float] = {}
        self._trained_count = 0
        self._built_at = utc_now_iso()

    # --- structure ----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return KIND_IVF if self._ivf is not None else KIND_FLAT

    def _new_flat(self) -> faiss.Index:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def _bar(self, total: int, description: str) -> tqdm:
        return tqdm(
            total=total,
            desc=description,
            unit="vec",
            disable=not self.progress or total < PROGRESS_MIN_ROWS,
        )

    def _add_chunks(self, index: faiss.Index, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._bar(ids.size, f"indexing ({self.kind})") as bar:
            for start in range(0, ids.size, ADD_CHUNK):
                stop = start + ADD_CHUNK
                index.add_with_ids(vectors[start:stop], ids[start:stop])
                bar.update(min(stop, ids.size) - start)

    def _fill_ivf(self, ivf: faiss.IndexIVFFlat, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add everything to a freshly trained IVF index with each list allocated once.

        Plain add_with_ids grows every list's std::vector by doubling, which left ~320 bytes
        of slack per 384-d vector (RSS 1,910 vs 1,595 B/vector at 300k, measured). Assigning
        lists first gives their final sizes, so each is reserved exactly; add_core then
        reuses the assignments instead of searching the quantizer a second time.
        """
        lists = np.empty(ids.size, dtype=np.int64)
        with self._bar(ids.size, "assigning to IVF lists") as bar:
            for start in range(0, ids.size, ADD_CHUNK):
                chunk = slice(start, start + ADD_CHUNK)
                lists[chunk] = ivf.quantizer.search(vectors[chunk], 1)[1][:, 0]
                bar.update(lists[chunk].size)
        for number, size in enumerate(np.bincount(lists, minlength=ivf.nlist).tolist()):
            if size:  # resize up allocates exactly, resize down keeps the capacity
                ivf.invlists.resize(number, size)
                ivf.invlists.resize(number, 0)
        with self._bar(ids.size, "indexing (faiss-ivf)") as bar:
            for start in range(0, ids.size, ADD_CHUNK):
                chunk = slice(start, start + ADD_CHUNK)
                rows = lists[chunk].size
                ivf.add_core(
                    rows,
                    faiss.swig_ptr(vectors[chunk]),
                    faiss.swig_ptr(ids[chunk]),
                    faiss.swig_ptr(lists[chunk]),
                )
                bar.update(rows)

    def build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the contents, choosing exact or IVF for this many vectors."""
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension, ids.size)
        if ids.size >= self.ann_threshold:
            self._build_ivf(ids, vectors)
        else:
            self._ivf = None
            self._index = self._new_flat()
            self._trained_count = 0
            self._calibrated_recall = {}
            self._nprobe_by_k = {}
            self._add_chunks(self._index, ids, vectors)
        self._sorted_ids = np.sort(ids)
        self._built_at = utc_now_iso()

    def _build_ivf(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        nlist = nlist_for(ids.size)
        rng = np.random.default_rng(self.seed)
        sample_size = min(ids.size, nlist * TRAIN_POINTS_PER_LIST)
        sample = vectors[np.sort(rng.choice(ids.size, sample_size, replace=False))]
        ivf = faiss.index_factory(self.dimension, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = self.seed
        if self.progress and ids.size >= PROGRESS_MIN_ROWS:
            tqdm.write(f"training IVF: {nlist} lists on {sample_size} vectors")
        ivf.train(sample)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._ivf = self._index = ivf
        self._fill_ivf(ivf, ids, vectors)
        self._trained_count = ids.size
        self._nprobe_by_k, self._calibrated_recall = self._calibrate(ids, vectors, rng)

    def _calibrate(
        self, ids: np.ndarray, vectors: np.ndarray, rng: np.random.Generator
    ) -> tuple[dict[int, int], dict[int, float]]:
        """For each k in CALIBRATION_KS, the smallest nprobe whose recall@k reaches
        target_recall, with stored vectors as queries (each query's own id left out)."""
        assert self._ivf is not None
        ivf = self._ivf
        rows = rng.choice(ids.size, min(CALIBRATION_QUERIES, ids.size), replace=False)
        queries = vectors[rows]
        own_ids = ids[rows].tolist()
        largest_k = min(max(CALIBRATION_KS), ids.size - 1)
        # +1: the query itself is among its own neighbours
        _, truth_rows = faiss.knn(queries, vectors, largest_k + 1, faiss.METRIC_INNER_PRODUCT)
        truth_ranked = [
            _ranked_without(ids[row[row >= 0]].tolist(), own)
            for row, own in zip(truth_rows, own_ids, strict=True)
        ]

        def recall(nprobe: int, k: int) -> float:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            _, found = ivf.search(queries, k + 1, params=params)
            hit = total = 0
            for row, expected, own in zip(found, truth_ranked, own_ids, strict=True):
                got = _ranked_without(row[row >= 0].tolist(), own)[:k]
                hit += len(set(expected[:k]).intersection(got))
                total += len(expected[:k])
            return hit / total if total else 1.0

        nprobe_by_k: dict[int, int] = {}
        recall_by_k: dict[int, float] = {}
        # recall(low) is below target (nothing probed at 0); a larger k never needs fewer probes
        low = 0
        for k in sorted({min(k, largest_k) for k in CALIBRATION_KS}):
            high = low + 1
            while (high_recall := recall(high, k)) < self.target_recall and high < ivf.nlist:
                low, high = high, min(ivf.nlist, high * 2)
            # Doubling overshoots by up to 2x the work; bisect back down.
            while high - low > 1:
                middle = (low + high) // 2
                if (middle_recall := recall(middle, k)) >= self.target_recall:
                    high, high_recall = middle, middle_recall
                else:
                    low = middle
            nprobe_by_k[k], recall_by_k[k] = high, high_recall
            low = high - 1
        return nprobe_by_k, recall_by_k

    def nprobe_for(self, k: int) -> int:
        """Lists to probe for a top-k search: the calibrated count of the smallest calibrated
        k' >= k, scaled up linearly past the largest (deeper lists need wider probes)."""
        if self._ivf is None:
            return 1
        for calibrated_k in sorted(self._nprobe_by_k):
            if k <= calibrated_k:
                return self._nprobe_by_k[calibrated_k]
        largest_k = max(self._nprobe_by_k)
        return min(self._ivf.nlist, math.ceil(self._nprobe_by_k[largest_k] * k / largest_k))

    def _restructure_if_due(self) -> None:
        count = self.count()
        grew_past_exact = self._ivf is None and count >= self.ann_threshold
        outgrew_training = self._ivf is not None and count >= 2 * self._trained_count
        shrank_below_ann = self._ivf is not None and count < self.ann_threshold // 2
        if grew_past_exact or outgrew_training or shrank_below_ann:
            ids = self.ids()
            self.build(ids, self.vectors(ids))

    # --- updates ------------------------------------------------------------------------

    def _contains(self, ids: np.ndarray) -> np.ndarray:
        positions = np.searchsorted(self._sorted_ids, ids)
        inside = positions < self._sorted_ids.size
        found = np.zeros(ids.size, dtype=bool)
        found[inside] = self._sorted_ids[positions[inside]] == ids[inside]
        return found

    def _remove_present(self, present: np.ndarray) -> None:
        """Remove `present`: sorted, unique, all stored."""
        # The IVF hash-table direct map removes by id lookup, but only from an array
        # selector; the flat IDMap scans every stored id, so give it a hashed batch.
        if self._ivf is not None:
            selector = faiss.IDSelectorArray(present)
        else:
            selector = faiss.IDSelectorBatch(present)
        removed = self._index.remove_ids(selector)
        if removed != present.size:
            raise RuntimeError(f"FAISS removed {removed} of {present.size} ids")
        # `present` is sorted and all stored: delete at their positions, O(n) memmove
        self._sorted_ids = np.delete(self._sorted_ids, np.searchsorted(self._sorted_ids, present))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert, or replace the vectors of ids already present (upsert)."""
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension, ids.size)
        if ids.size == 0:
            return
        present = np.sort(ids[self._contains(ids)])
        if present.size:
            self._remove_present(present)
        self._add_chunks(self._index, ids, vectors)
        # none of `ids` is stored now: insert them in order (np.union1d would re-sort all)
        new_ids = np.sort(ids)
        self._sorted_ids = np.insert(
            self._sorted_ids, np.searchsorted(self._sorted_ids, new_ids), new_ids
        )
        self._restructure_if_due()

    def remove(self, ids: np.ndarray) -> int:
        ids = sorted_unique(as_ids(ids, unique=False))
        present = ids[self._contains(ids)]
        if present.size == 0:
            return 0
        self._remove_present(present)
        self._restructure_if_due()
        return int(present.size)

    # --- reads --------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        return self._sorted_ids.copy()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = as_ids(ids, unique=False)
        missing = ids[~self._contains(ids)]
        if missing.size:
            raise KeyError(f"ids not in the index: {missing[:10].tolist()}")
        if ids.size == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_batch(ids)

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None) -> Hits:
        """Top-k by inner product, best first.

        With `allowed_ids`, only those ids are returned and each list is full (k long)
        whenever k allowed ids are stored: exact search is filtered exactly, IVF search
        probes more lists as the allowed share shrinks and keeps probing until full.
        """
        queries = as_queries(queries, self.dimension)
        k = check_k(k)
        if allowed_ids is None:
            return self._search(queries, k, available=self.count(), selector=None)
        allowed = sorted_unique(as_ids(allowed_ids, unique=False))
        allowed = allowed[self._contains(allowed)]
        if allowed.size == 0:
            return [[] for _ in range(len(queries))]
        if self._ivf is not None and allowed.size <= self._exact_filter_limit(k, allowed.size):
            return _as_hits(*self._exact_among(queries, allowed, k))
        selector, _bitmap = _selector_for(allowed)  # the bitmap must outlive the search
        return self._search(queries, k, available=int(allowed.size), selector=selector)

    def _exact_filter_limit(self, k: int, allowed_count: int) -> int:
        """Largest allowed set worth brute-forcing rather than filtering inside IVF.

        Measured at 300k vectors (one thread): brute force costs ~1 µs per allowed vector
        (reconstruct + score), the IVF selector ~5 ns per stored vector its probes scan.
        So brute-force while allowed < scanned / 200, and always up to FILTER_EXACT_MIN,
        where both take well under a millisecond.
        """
        assert self._ivf is not None
        depth = min(self.count(), math.ceil(k * self.count() / allowed_count))
        scanned = self.count() * self.nprobe_for(depth) // self._ivf.nlist
        return max(FILTER_EXACT_MIN, scanned // 200)

    def _exact_among(
        self, queries: np.ndarray, allowed: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over the stored vectors of `allowed` (all stored): exact."""
        stored = self._index.reconstruct_batch(allowed)
        # faiss.knn rather than numpy: single-threaded SIMD under omp_set_num_threads(1),
        # where a BLAS call may wake threads that a busy machine makes wait.
        scores, rows = faiss.knn(queries, stored, min(k, allowed.size), faiss.METRIC_INNER_PRODUCT)
        return scores, np.where(rows >= 0, allowed[rows], -1)

    def _search(
        self, queries: np.ndarray, k: int, *, available: int, selector: faiss.IDSelector | None
    ) -> Hits:
        if available == 0:
            return [[] for _ in range(len(queries))]
        k_asked = min(k, available)
        if self._ivf is None:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
            return _as_hits(*self._index.search(queries, k_asked, params=params))
        return _as_hits(*self._search_ivf(queries, k_asked, available, selector))

    def _search_ivf(
        self, queries: np.ndarray, k: int, available: int, selector: faiss.IDSelector | None
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self._ivf is not None
        nlist = self._ivf.nlist
        # A filter keeping a share s of the items puts the allowed top-k around depth k/s of
        # the unfiltered ranking: probe as widely as an unfiltered top-(k/s) search would.
        depth = min(self.count(), math.ceil(k * self.count() / available))
        nprobe = self.nprobe_for(depth)

        def probe(rows: np.ndarray, lists: int) -> tuple[np.ndarray, np.ndarray]:
            if selector is None:
                params = faiss.SearchParametersIVF(nprobe=lists)
            else:
                params = faiss.SearchParametersIVF(nprobe=lists, sel=selector)
            return self._ivf.search(queries[rows], k, params=params)

        every_row = np.arange(len(queries))
        scores, labels = probe(every_row, nprobe)
        # The probed lists can hold fewer than k (allowed) items: widen until full; probing
        # every list is exhaustive, so that always ends full.
        short = np.flatnonzero((labels >= 0).sum(axis=1) < k)
        while short.size and nprobe < nlist:
            nprobe = min(nlist, nprobe * 2)
            scores[short], labels[short] = probe(short, nprobe)
            short = short[(labels[short] >= 0).sum(axis=1) < k]
        return scores, labels

    def copy(self) -> FaissIndex:
        """An independent index with the same contents and settings: a snapshot that can be
        saved by another thread while this one changes."""
        clone = copy.copy(self)
        clone._index = faiss.clone_index(self._index)  # a memory copy: 0.2 s at 100k × 384
        clone._ivf = clone._index if self._ivf is not None else None
        clone._sorted_ids = self._sorted_ids.copy()
        clone._nprobe_by_k = dict(self._nprobe_by_k)
        clone._calibrated_recall = dict(self._calibrated_recall)
        clone.meta = dict(self.meta)
        return clone

    # --- persistence --------------------------------------------------------------------

    def save(self, directory: Path, *, model: str) -> None:
        if not model:
            raise ValueError("save needs the name of the model that made the vectors")
        sidecar: dict[str, Any] = {
            "kind": self.kind,
            "model": model,
            "dimension": self.dimension,
            "count": self.count(),
            "metric": "inner_product",
            "built_at": self._built_at,
            "faiss_version": faiss.__version__,
            "ann_threshold": self.ann_threshold,
        }
        if self._ivf is not None:
            sidecar |= {
                "nlist": int(self._ivf.nlist),
                # JSON object keys are strings: {"10": nprobe, "100": nprobe}
                "nprobe_by_k": {str(k): n for k, n in self._nprobe_by_k.items()},
                "calibrated_recall": {str(k): r for k, r in self._calibrated_recall.items()},
                "trained_count": self._trained_count,
                "target_recall": self.target_recall,
            }
        self.meta = commit_index_files(
            Path(directory),
            "faiss",
            lambda path: faiss.write_index(self._index, str(path)),
            sidecar,
        )

    @classmethod
    def load(cls, directory: Path) -> FaissIndex:
        sidecar, data_path = open_committed(Path(directory), (KIND_FLAT, KIND_IVF))
        try:
            stored = faiss.read_index(str(data_path))
        except RuntimeError as error:
            raise IndexFileError(f"{data_path} is not a readable FAISS index: {error}") from error
        check_loaded(sidecar, dimension=stored.d, count=stored.ntotal, where=data_path)
        if stored.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexFileError(f"{data_path}: index does not use inner product")
        index = cls(
            sidecar["dimension"],
            ann_threshold=int(sidecar.get("ann_threshold", ANN_THRESHOLD)),
            target_recall=float(sidecar.get("target_recall", TARGET_RECALL)),
        )
        if sidecar["kind"] == KIND_IVF:
            # read_index hands back the concrete class; a downcast_index wrapper would not
            # own the C++ object, which would then die with `stored`.
            ivf = stored
            if not isinstance(ivf, faiss.IndexIVFFlat):
                raise IndexFileError(f"{data_path}: sidecar says IVF, file holds {type(ivf)}")
            if ivf.direct_map.type != faiss.DirectMap.Hashtable:
                raise IndexFileError(f"{data_path}: IVF index lacks its id direct map")
            index._index = index._ivf = ivf
            try:
                index._nprobe_by_k = {int(k): int(n) for k, n in sidecar["nprobe_by_k"].items()}
                index._calibrated_recall = {
                    int(k): float(r) for k, r in sidecar["calibrated_recall"].items()
                }
                index._trained_count = int(sidecar["trained_count"])
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise IndexFileError(f"{data_path}: sidecar lacks IVF settings: {error}") from error
            if not index._nprobe_by_k:
                raise IndexFileError(f"{data_path}: sidecar has no calibrated nprobe")
            stored_ids = _ivf_ids(ivf)
        else:
            if not isinstance(stored, faiss.IndexIDMap2):
                raise IndexFileError(f"{data_path}: sidecar says exact, file holds {type(stored)}")
            index._index = stored
            stored_ids = faiss.vector_to_array(stored.id_map)
        index._sorted_ids = sorted_unique(stored_ids.astype(np.int64))
        if index._sorted_ids.size != stored.ntotal:
            raise IndexFileError(f"{data_path}: index holds duplicate ids")
        index._built_at = sidecar["built_at"]
        index.meta = sidecar
        return index


def _selector_for(allowed: np.ndarray) -> tuple[faiss.IDSelector, np.ndarray | None]:
    """A faiss id filter for sorted, non-negative `allowed` ids, and the buffer it reads.

    Database ids are small dense integers, so a bitmap is cheap to build and a single bit
    test per scanned item; a hash set (IDSelectorBatch) costs a hash insert per allowed id
    to build, which dominates a filtered search over hundreds of thousands of ids.
    """
    largest = int(allowed[-1])
    if largest >= BITMAP_MAX_ID:
        return faiss.IDSelectorBatch(allowed), None
    member = np.zeros(largest + 1, dtype=bool)
    member[allowed] = True
    bitmap = np.packbits(member, bitorder="little")
    return faiss.IDSelectorBitmap(bitmap.size, faiss.swig_ptr(bitmap)), bitmap


def _as_hits(scores: np.ndarray, labels: np.ndarray) -> Hits:
    return [
        [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
        for row_ids, row_scores in zip(labels, scores, strict=True)
    ]


def _ranked_without(ranked_ids: list[int], own_id: int) -> list[int]:
    return [i for i in ranked_ids if i != own_id]


def _ivf_ids(ivf: faiss.IndexIVF) -> np.ndarray:
    lists = ivf.invlists
    parts = []
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            pointer = lists.get_ids(number)
            parts.append(faiss.rev_swig_ptr(pointer, size).copy())
            lists.release_ids(number, pointer)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
