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
keeps widening its probe until it returns min(k, items it may return) hits. How the IVF index
is sized, trained, filled and calibrated lives in `matcher.vector_faiss_ivf`, and its files
in `matcher.vector_faiss_files`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from matcher.vector_common import (
    Hits,
    as_ids,
    as_queries,
    as_vectors,
    check_k,
    sorted_unique,
    utc_now_iso,
)
from matcher.vector_faiss_files import KIND_FLAT, KIND_IVF, IvfSettings, load_faiss, save_faiss
from matcher.vector_faiss_ivf import (
    TARGET_RECALL,
    TRAIN_POINTS_PER_LIST,
    add_in_chunks,
    calibrate,
    calibrated_nprobe,
    train_ivf,
)

# Below this many vectors the index is exact. Measured with `benchmarks/search.py` (384-d
# clustered vectors, one thread, p50 per single query): exact search costs ~0.085 ms per
# 1,000 vectors (0.41 ms at 10k, 1.8 ms at 20k, 4.5 ms at 50k, 8.2 ms at 100k, 85 ms at
# 1M), IVF 0.11 ms at 20k, 0.14 ms at 50k, 0.20 ms at 100k, 0.60 ms at 1M, with recall@10
# 0.97-0.98. Up to 20k exact search stays under ~2 ms, is perfect and needs no training
# (IVF takes ~1 s to train at 20k), so approximation buys nothing there; past it exact
# latency grows linearly and IVF is 30x faster by 50k.
ANN_THRESHOLD = 20_000
# Filtered IVF search always brute-forces allowed sets this small (see _exact_filter_limit).
FILTER_EXACT_MIN = 1_000
# Filters over ids below this bound use a bitmap (at most 8 MiB), larger ids a hash set.
BITMAP_MAX_ID = 1 << 26


class FaissIndex:
    persistent = False  # in memory; saved as files

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
        # calibrated per k (see vector_faiss_ivf.calibrate); both empty while the index is exact
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

    def _add_chunks(self, index: faiss.Index, ids: np.ndarray, vectors: np.ndarray) -> None:
        add_in_chunks(index, ids, vectors, description=f"indexing ({self.kind})",
                      progress=self.progress)

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
        # One generator draws the training sample, then the calibration queries.
        rng = np.random.default_rng(self.seed)
        ivf = train_ivf(ids, vectors, rng, seed=self.seed, progress=self.progress)
        self._ivf = self._index = ivf
        self._trained_count = ids.size
        self._nprobe_by_k, self._calibrated_recall = calibrate(
            ivf, ids, vectors, rng, self.target_recall)

    def nprobe_for(self, k: int) -> int:
        """Lists to probe for a top-k search (1 while the index is exact)."""
        if self._ivf is None:
            return 1
        return calibrated_nprobe(self._nprobe_by_k, self._ivf.nlist, k)

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
        ivf = None if self._ivf is None else IvfSettings(
            self._nprobe_by_k, self._calibrated_recall, self._trained_count)
        self.meta = save_faiss(
            Path(directory), self._index, model=model, built_at=self._built_at,
            ann_threshold=self.ann_threshold, target_recall=self.target_recall, ivf=ivf,
        )

    @classmethod
    def load(cls, directory: Path) -> FaissIndex:
        saved = load_faiss(Path(directory))
        sidecar = saved.sidecar
        index = cls(
            sidecar["dimension"],
            ann_threshold=int(sidecar.get("ann_threshold", ANN_THRESHOLD)),
            target_recall=float(sidecar.get("target_recall", TARGET_RECALL)),
        )
        index._index = saved.index
        if saved.ivf is not None:
            index._ivf = saved.index
            index._nprobe_by_k = saved.ivf.nprobe_by_k
            index._calibrated_recall = saved.ivf.calibrated_recall
            index._trained_count = saved.ivf.trained_count
        index._sorted_ids = saved.sorted_ids
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
