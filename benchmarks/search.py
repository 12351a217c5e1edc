"""Vector search benchmark: the automatic index beside exact search, on one core.

    nice python benchmarks/search.py [--sizes 10000,100000,1000000] [--queries 200]

Data: synthetic 384-d L2-normalised vectors clustered like sentence embeddings, a two-level
Gaussian mixture: 64 topic directions, `--centres` (4,000) cluster centres scattered around
them, cluster sizes log-normal (a few big topics, a long tail), each vector its centre plus
isotropic noise of a per-cluster width (cosine to its centre 0.45-0.7). Queries are fresh
draws from the same mixture, not stored vectors. The noise makes neighbourhoods overlap
across clusters, so recall depends on how many IVF lists are probed (a set of tight, well
separated blobs would flatter any ANN index).

For each size it builds the exact baseline (`IndexIDMap2(IndexFlatIP)`, what FaissIndex
uses below its threshold) and the automatic index (`new_index`), then times single queries
(one at a time, faiss.omp_set_num_threads(1), through the public `search`, so the
Python-side cost is included) and reports p50/p95 latency, recall@10 against the exact
results, build time, memory per vector (process RSS growth while building, and the size of
the saved faiss file) and the same for a filtered search keeping a random 1% of the ids.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import platform
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matcher.vector_faiss import FaissIndex  # noqa: E402
from matcher.vector_index import new_index  # noqa: E402

DIMENSION = 384
TOPICS = 64
K = 10
FILTER_SHARE = 0.01


class Mixture:
    def __init__(self, centres: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        topics = _unit(rng.standard_normal((TOPICS, DIMENSION)))
        parent = rng.integers(0, TOPICS, centres)
        offset = rng.standard_normal((centres, DIMENSION)) / np.sqrt(DIMENSION)
        self.centres = _unit(topics[parent] + offset)
        weights = rng.lognormal(0.0, 1.0, centres)
        self.weights = weights / weights.sum()
        # noise norm relative to the unit centre: cosine to centre = 1/sqrt(1 + width^2)
        self.widths = rng.uniform(1.0, 2.0, centres).astype(np.float32)

    def sample(self, count: int, seed: int, chunk: int = 100_000) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((count, DIMENSION), dtype=np.float32)
        for start in range(0, count, chunk):
            rows = min(chunk, count - start)
            labels = rng.choice(len(self.centres), rows, p=self.weights)
            noise = rng.standard_normal((rows, DIMENSION), dtype=np.float32)
            noise *= self.widths[labels, None] / np.sqrt(DIMENSION)
            out[start : start + rows] = _unit(self.centres[labels] + noise)
        return out


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc), so RSS growth while
    building counts the new index rather than reuse of memory the last one freed."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def time_queries(
    index: FaissIndex, queries: np.ndarray, allowed: np.ndarray | None
) -> tuple[list[list[int]], np.ndarray]:
    for query in queries[:5]:  # warm caches and lazy allocations
        index.search(query, K, allowed_ids=allowed)
    results, seconds = [], []
    for query in queries:
        started = time.perf_counter()
        (hits,) = index.search(query, K, allowed_ids=allowed)
        seconds.append(time.perf_counter() - started)
        results.append([item_id for item_id, _ in hits])
    return results, np.array(seconds)


def recall(got: list[list[int]], truth: list[list[int]]) -> float:
    found = sum(len(set(g) & set(t)) for g, t in zip(got, truth, strict=True))
    return found / sum(len(t) for t in truth)


def measure(
    label: str,
    index: FaissIndex,
    ids: np.ndarray,
    vectors: np.ndarray,
    queries: np.ndarray,
    allowed: np.ndarray,
    truth: dict[str, list[list[int]]] | None,
) -> dict[str, list[list[int]]]:
    release_freed_memory()
    rss_before = rss_bytes()
    started = time.perf_counter()
    index.build(ids, vectors)
    build_seconds = time.perf_counter() - started
    release_freed_memory()
    rss_per_vector = (rss_bytes() - rss_before) / ids.size
    with tempfile.TemporaryDirectory() as directory:
        index.save(Path(directory), model="synthetic")
        file_per_vector = index.meta["file_bytes"] / ids.size
    results = {}
    for name, allowed_ids in (("all", None), ("filter 1%", allowed)):
        results[name], seconds = time_queries(index, queries, allowed_ids)
        full = all(len(r) == K for r in results[name])
        score = recall(results[name], truth[name]) if truth else 1.0
        structure = index.kind
        if index.kind == "faiss-ivf":
            structure += f" nlist={index.meta['nlist']} nprobe@10={index.nprobe_for(K)}"
        print(
            f"{ids.size:>9,}  {label:<6} {name:<9}  {1e3 * np.percentile(seconds, 50):7.3f}"
            f"  {1e3 * np.percentile(seconds, 95):7.3f}  {score:9.4f}  {'yes' if full else 'NO':>4}"
            f"  {build_seconds:8.1f}  {rss_per_vector:7.0f}  {file_per_vector:7.0f}  {structure}",
            flush=True,
        )
    print(f"{ids.size:>9,}  {label:<6} updates    {time_updates(index, queries)}", flush=True)
    return results


def time_updates(index: FaissIndex, vectors: np.ndarray, rounds: int = 100) -> str:
    """Single-item upsert, insert and removal latency (ms p50/p95) on the built index."""
    rng = np.random.default_rng(1)
    existing = rng.choice(index.ids(), rounds, replace=False)
    new_ids = np.arange(rounds, dtype=np.int64) + int(index.ids().max()) + 1
    timings: dict[str, list[float]] = {"upsert": [], "insert": [], "remove": []}
    for round_number in range(rounds):
        vector = vectors[round_number % len(vectors)][None, :]
        one_stored = existing[round_number : round_number + 1]
        one_new = new_ids[round_number : round_number + 1]
        steps = {
            "upsert": (index.add, (one_stored, vector)),
            "insert": (index.add, (one_new, vector)),
            "remove": (index.remove, (one_new,)),
        }
        for name, (operation, arguments) in steps.items():
            started = time.perf_counter()
            operation(*arguments)
            timings[name].append(time.perf_counter() - started)
    return "  ".join(
        f"{name} p50 {1e3 * np.median(times):.3f} p95 {1e3 * np.percentile(times, 95):.3f}"
        for name, times in timings.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="single queries per size")
    parser.add_argument("--centres", type=int, default=4_000, help="mixture components")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    sizes = [int(size.replace("_", "")) for size in arguments.sizes.split(",")]

    faiss.omp_set_num_threads(1)
    print(
        f"faiss {faiss.__version__}, numpy {np.__version__}, {platform.processor() or 'cpu'}, "
        f"1 thread; {DIMENSION}-d clustered synthetic vectors ({arguments.centres} centres), "
        f"{arguments.queries} single queries, k={K}"
    )
    print(
        "     size  index  search       p50 ms   p95 ms  recall@10  full   build s"
        "  RSS B/v  file B/v  structure"
    )
    mixture = Mixture(arguments.centres, arguments.seed)
    queries = mixture.sample(arguments.queries, seed=arguments.seed + 1)
    for size in sizes:
        vectors = mixture.sample(size, seed=arguments.seed + 2)
        ids = np.arange(size, dtype=np.int64)
        allowed = np.sort(
            np.random.default_rng(arguments.seed).choice(
                size, int(size * FILTER_SHARE), replace=False
            )
        )
        exact = FaissIndex(DIMENSION, ann_threshold=sys.maxsize, progress=False)
        truth = measure("exact", exact, ids, vectors, queries, allowed, None)
        del exact
        automatic = new_index(DIMENSION)
        measure("auto", automatic, ids, vectors, queries, allowed, truth)
        del automatic, vectors
        release_freed_memory()


if __name__ == "__main__":
    main()
