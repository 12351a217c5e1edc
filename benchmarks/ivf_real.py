"""ANN recall@10 on real e5 vectors of the development corpora, against exact search.

    nice python benchmarks/ivf_real.py [--sets csl-title,patent-title,need-results]
        [--cache var/cache/eval-embeddings.sqlite] [--types HNSW,IVF_FLAT] [--no-pooled]
        [--demo-home var]

The README's 1M figure (`benchmarks/search.py`) is on a synthetic Gaussian mixture, whose
well-formed clusters suit IVF. This is the check on real vectors: each development set's
corpus (`datasets/eval/*/corpus.jsonl`) is encoded as the platform indexes results (the
window vectors of `Item.full_text`, as `matcher.ranking.EvalRanker` does), its queries as
queries (`encode_queries`, the `query: ` prefix), and each index answers the set's own
queries with k = 10 over the window vectors, scored against exact search over the same
vectors. A pooled row puts every set's distinct corpus texts in one index and asks all their
queries (the largest real collection the repository has).

Indexes: FAISS IVF forced at any size (`FaissIndex(ann_threshold=80)`, the smallest the class
admits: lists ~2·sqrt(n), probes calibrated at build time to recall 0.97 on stored vectors
used as queries, which real queries are not), and Milvus Lite HNSW / IVF_FLAT through
`MilvusIndex` (a local file in a temp dir; HNSW M=16 efConstruction=200, ef=64; IVF_FLAT with
128 lists and 10 probes: the engine's defaults, since milvus-lite 3.2.2 drops the nlist=1024
that `MilvusIndex` asks for and the search passes no nprobe). A
synthetic control row per size draws the same number of vectors and queries from the
`benchmarks/search.py` mixture and runs FAISS IVF on them: the gap between the two rows is
the data, not the size.

The model comes from the settings (`Settings.from_env()`: MATCHER_HOME, MATCHER_MODEL...);
vectors are cached in `--cache` (an `EmbeddingCache`), so only the first run encodes (on a
busy 2-core machine patent-title's 3,655 abstracts took ~20 min). `--demo-home var` adds the
demo site's saved result index (real window vectors of the need-results corpus, encoded by
`setup-demo`) asked the need-results needs, which needs no corpus encoding.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import DIMENSION, K, Mixture, recall  # noqa: E402

from embeddings.base import encode_document_windows  # noqa: E402
from embeddings.cache import CachedEncoder, EmbeddingCache  # noqa: E402
from matcher.evaluation import load_corpus, load_queries  # noqa: E402
from matcher.types import Item  # noqa: E402
from matcher.vector_faiss import FaissIndex  # noqa: E402
from matcher.vector_faiss_ivf import TRAIN_POINTS_PER_LIST  # noqa: E402
from matcher.vector_milvus import MilvusIndex, close_client  # noqa: E402

EVAL_DIR = Path(__file__).resolve().parent.parent / "datasets" / "eval"
DEFAULT_SETS = "csl-title,csl-keywords,patent-title,patent-keywords,need-results,cross-lingual"


@dataclass
class Collection:
    name: str
    documents: int
    vectors: np.ndarray  # window vectors, one row each
    queries: np.ndarray


def encode_set(encoder: CachedEncoder, name: str) -> tuple[list[str], list[str]]:
    docs = load_corpus(EVAL_DIR / name / "corpus.jsonl")
    queries = load_queries(EVAL_DIR / name / "queries.jsonl")
    texts = [Item(n, "result", d.title, d.text).full_text for n, d in enumerate(docs)
             if d.title or d.text]
    return texts, [q.text for q in queries]


def collection_of(encoder: CachedEncoder, name: str, texts: list[str], queries: list[str]
                  ) -> Collection:
    started = time.perf_counter()
    windows = encode_document_windows(encoder, texts, progress=True)
    query_vectors = encoder.encode_queries(queries, progress=True)
    print(f"  {name}: {len(texts)} texts, {sum(len(w) for w in windows)} windows, "
          f"{len(queries)} queries ({time.perf_counter() - started:.0f} s incl. cache)",
          flush=True)
    return Collection(name, len(texts), np.vstack(windows).astype(np.float32),
                      np.asarray(query_vectors, dtype=np.float32))


def demo_collection(encoder: CachedEncoder, home: Path) -> Collection:
    """The demo site's own result index (`home`/indexes/result: every window of the 4,654
    demo results, encoded from the database rows as the site does) asked the need-results
    set's needs (the same results as that set's corpus, so nothing is encoded but queries)."""
    from matcher.vector_index import open_index

    folder = home / "indexes" / "result"
    vectors = open_index(folder / "vectors")
    windows = open_index(folder / "windows")
    parts = [index.vectors(index.ids()) for index in (vectors, windows) if index.count()]
    queries = [q.text for q in load_queries(EVAL_DIR / "need-results" / "queries.jsonl")]
    print(f"  demo index {folder}: {vectors.count()} results, "
          f"{sum(len(p) for p in parts)} windows", flush=True)
    return Collection("need-results (demo site's index)", vectors.count(),
                      np.vstack(parts).astype(np.float32),
                      np.asarray(encoder.encode_queries(queries), dtype=np.float32))


def top_ids(index: object, queries: np.ndarray) -> list[list[int]]:
    return [[item_id for item_id, _ in hits] for hits in index.search(queries, K)]  # type: ignore[attr-defined]


def run_collection(collection: Collection, types: list[str], work: Path, seed: int
                   ) -> list[str]:
    vectors, queries = collection.vectors, collection.queries
    ids = np.arange(len(vectors), dtype=np.int64)
    exact = FaissIndex(DIMENSION, ann_threshold=sys.maxsize, progress=False)
    exact.build(ids, vectors)
    truth = top_ids(exact, queries)
    lines = []
    size = f"{collection.documents:,} / {len(vectors):,} / {len(queries):,}"

    ivf = FaissIndex(DIMENSION, ann_threshold=2 * TRAIN_POINTS_PER_LIST, progress=False)
    ivf.build(ids, vectors)
    structure = (f"IVF {ivf._ivf.nlist} lists, {ivf.nprobe_for(K)} probes"  # noqa: SLF001
                 if ivf.kind == "faiss-ivf" else ivf.kind)
    calibrated = ivf._calibrated_recall.get(K)  # noqa: SLF001  (what build-time calibration saw)
    at_calibration = f"{calibrated:.3f}" if calibrated is not None else "-"
    lines.append(f"| {collection.name} | {size} | FAISS {structure} | "
                 f"{recall(top_ids(ivf, queries), truth):.3f} | {at_calibration} | "
                 f"{probes_needed(ivf, queries, truth)} |")

    uri = str(work / f"{collection.name}.db")
    for index_type in types:
        milvus = MilvusIndex(DIMENSION, uri=uri, collection=f"real_{index_type.lower()}",
                             index_type=index_type)
        milvus.build(ids, vectors)
        with tempfile.TemporaryDirectory() as pointer_dir:
            milvus.save(Path(pointer_dir), model="e5")  # flush: the segment gets its index
        wait_background(uri)
        lines.append(f"| {collection.name} | {size} | Milvus Lite {index_type} | "
                     f"{recall(top_ids(milvus, queries), truth):.3f} | - | - |")
        milvus.drop()
    close_client(uri)

    # Control: the same counts drawn from the synthetic mixture, FAISS IVF the same way.
    mixture = Mixture(4_000, seed)
    synthetic = mixture.sample(len(vectors), seed=seed + 2)
    synthetic_queries = mixture.sample(len(queries), seed=seed + 1)
    exact.build(ids, synthetic)
    control_truth = top_ids(exact, synthetic_queries)
    ivf.build(ids, synthetic)
    lines.append(f"| (synthetic, same counts) | {size} | FAISS IVF {ivf._ivf.nlist} lists, "  # noqa: SLF001
                 f"{ivf.nprobe_for(K)} probes | "
                 f"{recall(top_ids(ivf, synthetic_queries), control_truth):.3f} | "
                 f"{ivf._calibrated_recall.get(K, float('nan')):.3f} | "  # noqa: SLF001
                 f"{probes_needed(ivf, synthetic_queries, control_truth)} |")
    for line in lines:
        print(line, flush=True)
    return lines


def probes_needed(ivf: FaissIndex, queries: np.ndarray, truth: list[list[int]]) -> str:
    """The fewest probes whose recall@10 on these queries reaches 0.95 and 0.97 (raw FAISS
    search on the trained index, ids as stored)."""
    index = ivf._ivf  # noqa: SLF001
    if index is None:
        return "-"
    saved, found = index.nprobe, {}
    try:
        for nprobe in range(1, index.nlist + 1):
            index.nprobe = nprobe
            _, rows = index.search(queries, K)
            got = recall([[int(i) for i in row if i >= 0] for row in rows], truth)
            for target in (0.95, 0.97):
                if target not in found and got >= target:
                    found[target] = nprobe
            if len(found) == 2:
                break
    finally:
        index.nprobe = saved
    return " / ".join(f"{found.get(t, '>' + str(index.nlist))}" for t in (0.95, 0.97)) + \
        f" of {index.nlist}"


def wait_background(uri: str) -> None:
    """Milvus Lite (a local file) indexes flushed segments in a background thread of this
    process, searching by brute force until then: wait for 2 s in a row of < 2% CPU."""
    quiet = 0
    while quiet < 2:
        before = time.process_time()
        time.sleep(1.0)
        quiet = quiet + 1 if time.process_time() - before < 0.02 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=DEFAULT_SETS, help="comma-separated")
    parser.add_argument("--cache", default="var/cache/eval-embeddings.sqlite",
                        help="the cache `python -m matcher evaluate --cache` uses too")
    parser.add_argument("--types", default="HNSW,IVF_FLAT", help="Milvus Lite index types")
    parser.add_argument("--demo-home", default=None,
                        help="also the demo site's saved result index under this home (var)")
    parser.add_argument("--no-pooled", action="store_true", help="skip the pooled row")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    sets = [s for s in arguments.sets.split(",") if s]
    types = [t for t in arguments.types.upper().split(",") if t]

    from service.composition import encoder_for  # the model as the site loads it
    from settings import Settings

    faiss.omp_set_num_threads(1)
    # The encoder may use both cores; only the searches are limited to one thread.
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    encoder = CachedEncoder(encoder_for(Settings.from_env()), EmbeddingCache(arguments.cache))
    print(f"model {encoder.name}; cache {arguments.cache}; faiss {faiss.__version__}; k={K}")
    collections = []
    pooled_texts: dict[str, None] = {}
    pooled_queries: list[str] = []
    for name in sets:
        texts, queries = encode_set(encoder, name)
        collections.append(collection_of(encoder, name, texts, queries))
        pooled_texts.update(dict.fromkeys(texts))
        pooled_queries.extend(queries)
    if not arguments.no_pooled and len(sets) > 1:
        collections.append(collection_of(encoder, "all sets pooled", list(pooled_texts),
                                         pooled_queries))
    if arguments.demo_home:
        collections.append(demo_collection(encoder, Path(arguments.demo_home)))
    work = Path(tempfile.mkdtemp(prefix="ivf-real-"))
    lines = ["| set | documents / windows / queries | index | recall@10 vs exact "
             "(real queries) | recall@10 at calibration (stored vectors as queries) | "
             "probes for recall 0.95 / 0.97 on these queries |",
             "|---|---|---|---|---|---|"]
    try:
        for collection in collections:
            lines.extend(run_collection(collection, types, work, arguments.seed))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
