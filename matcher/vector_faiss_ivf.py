"""Making an IVF index for `FaissIndex`: how many lists, training on a sample, filling each
list once, and calibrating how many lists a query probes (see `matcher.vector_faiss`)."""

from __future__ import annotations

import math

import faiss
import numpy as np
from tqdm import tqdm

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


def progress_bar(total: int, description: str, *, progress: bool) -> tqdm:
    """A bar shown only with `progress` and for work big enough to wait on."""
    return tqdm(
        total=total,
        desc=description,
        unit="vec",
        disable=not progress or total < PROGRESS_MIN_ROWS,
    )


def add_in_chunks(
    index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, *, description: str,
    progress: bool,
) -> None:
    with progress_bar(ids.size, description, progress=progress) as bar:
        for start in range(0, ids.size, ADD_CHUNK):
            stop = start + ADD_CHUNK
            index.add_with_ids(vectors[start:stop], ids[start:stop])
            bar.update(min(stop, ids.size) - start)


def train_ivf(
    ids: np.ndarray, vectors: np.ndarray, rng: np.random.Generator, *, seed: int,
    progress: bool,
) -> faiss.IndexIVFFlat:
    """An IVF index trained on a sample of `vectors` and holding all of them, with the
    hash-table direct map that lets single ids be removed and reconstructed."""
    dimension = vectors.shape[1]
    nlist = nlist_for(ids.size)
    sample_size = min(ids.size, nlist * TRAIN_POINTS_PER_LIST)
    sample = vectors[np.sort(rng.choice(ids.size, sample_size, replace=False))]
    ivf = faiss.index_factory(dimension, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = seed
    if progress and ids.size >= PROGRESS_MIN_ROWS:
        tqdm.write(f"training IVF: {nlist} lists on {sample_size} vectors")
    ivf.train(sample)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    _fill(ivf, ids, vectors, progress=progress)
    return ivf


def _fill(ivf: faiss.IndexIVFFlat, ids: np.ndarray, vectors: np.ndarray, *,
          progress: bool) -> None:
    """Add everything to a freshly trained IVF index with each list allocated once.

    Plain add_with_ids grows every list's std::vector by doubling, which left ~320 bytes
    of slack per 384-d vector (RSS 1,910 vs 1,595 B/vector at 300k, measured). Assigning
    lists first gives their final sizes, so each is reserved exactly; add_core then
    reuses the assignments instead of searching the quantizer a second time.
    """
    lists = np.empty(ids.size, dtype=np.int64)
    with progress_bar(ids.size, "assigning to IVF lists", progress=progress) as bar:
        for start in range(0, ids.size, ADD_CHUNK):
            chunk = slice(start, start + ADD_CHUNK)
            lists[chunk] = ivf.quantizer.search(vectors[chunk], 1)[1][:, 0]
            bar.update(lists[chunk].size)
    for number, size in enumerate(np.bincount(lists, minlength=ivf.nlist).tolist()):
        if size:  # resize up allocates exactly, resize down keeps the capacity
            ivf.invlists.resize(number, size)
            ivf.invlists.resize(number, 0)
    with progress_bar(ids.size, "indexing (faiss-ivf)", progress=progress) as bar:
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


def calibrate(
    ivf: faiss.IndexIVFFlat, ids: np.ndarray, vectors: np.ndarray, rng: np.random.Generator,
    target_recall: float,
) -> tuple[dict[int, int], dict[int, float]]:
    """For each k in CALIBRATION_KS, the smallest nprobe whose recall@k reaches
    target_recall, with stored vectors as queries (each query's own id left out), and the
    recall it reached."""
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
        while (high_recall := recall(high, k)) < target_recall and high < ivf.nlist:
            low, high = high, min(ivf.nlist, high * 2)
        # Doubling overshoots by up to 2x the work; bisect back down.
        while high - low > 1:
            middle = (low + high) // 2
            if (middle_recall := recall(middle, k)) >= target_recall:
                high, high_recall = middle, middle_recall
            else:
                low = middle
        nprobe_by_k[k], recall_by_k[k] = high, high_recall
        low = high - 1
    return nprobe_by_k, recall_by_k


def calibrated_nprobe(nprobe_by_k: dict[int, int], nlist: int, k: int) -> int:
    """Lists to probe for a top-k search: the calibrated count of the smallest calibrated
    k' >= k, scaled up linearly past the largest (deeper lists need wider probes)."""
    for calibrated_k in sorted(nprobe_by_k):
        if k <= calibrated_k:
            return nprobe_by_k[calibrated_k]
    largest_k = max(nprobe_by_k)
    return min(nlist, math.ceil(nprobe_by_k[largest_k] * k / largest_k))


def _ranked_without(ranked_ids: list[int], own_id: int) -> list[int]:
    return [i for i in ranked_ids if i != own_id]
