"""BM25 on Milvus Lite's full-text search (`matcher.lexical_milvus`) beside the in-process index.

    nice python benchmarks/lexical_milvus.py [--sizes 10000 100000] [--queries 30] [--k 100]
        [--uri PATH]

The corpus is `benchmarks/lexical.py`'s: the development sets' documents copied up to each
size, each copy with its own batch word (imported from it, with its cached segmentation, so
each distinct text is cut once and the cut is not what is measured). For each size this run
builds the in-process `LexicalIndex` over the items (the result side) and fills a
`MilvusFullText` collection `bench_<size>_text` with `upsert(items, lexical)`, the same index
and so the same cut. Queries are real query texts from the development sets (need-results
and patent-keywords, alternately), cut once; each is timed on one thread as the engine runs
it: `lexical.score(text, words=words).top(k)` in process, and
`full_text.scores(words, None, None, served).top(k)` on Milvus (no query-side weights: plain
BM25 on both; Milvus's `top` fetches the unfiltered ranking, up to 16,384 hits, once).

Agreement, over the in-process top 10 of each query: the share of its ids in Milvus's top 10
(plain, and counting an id that ties with the in-process 10th score: copies of a document
score alike, and the two break ties differently), and the largest relative difference of
their scores (Milvus's read with `of`). Milvus Lite computes BM25's statistics (document
count, average length, document frequencies) per segment and per memtable, not over the
collection, so once it holds several the scores differ: the segment count is printed.

Milvus Lite is a pure-Python engine in this process (its local-file client): its figures
measure this project's path through pymilvus and the Lite engine, not a Milvus server's.
"""

from __future__ import annotations

import argparse
import os
import sys

# One thread, set before numpy loads its BLAS (as `milvus_search.py` does).
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import gc  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lexical import (  # noqa: E402  (benchmarks/lexical.py: the same corpus and measures)
    BATCH_MARK,
    EVAL,
    cached_tokenize,
    load_texts,
    percentile,
    rss_mib,
)

from matcher import vector_milvus  # noqa: E402
from matcher.lexical import LexicalIndex  # noqa: E402
from matcher.lexical_milvus import MilvusFullText  # noqa: E402
from matcher.types import Item  # noqa: E402

QUERY_SETS = ("need-results", "patent-keywords")
TOP = 10  # the depth the agreement reads
TIE = 1e-5  # relative: an id within this of the in-process 10th score ties with it


def load_queries(count: int) -> list[str]:
    """`count` query texts, taken from each of QUERY_SETS in turn."""
    sets = []
    for name in QUERY_SETS:
        with open(EVAL / name / "queries.jsonl", encoding="utf-8") as fh:
            sets.append([json.loads(line)["text"] for line in fh if line.strip()])
    mixed = [texts[n] for n in range(max(map(len, sets))) for texts in sets if n < len(texts)]
    return mixed[:count]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def segments(uri: str, collection: str) -> list[int]:
    """Rows of each flushed segment of a Milvus Lite collection (its manifest's data files);
    rows not among them are in the memtable, which is scored as one more source."""
    import pyarrow.parquet as pq

    folder = Path(uri) / "collections" / collection
    manifest = json.loads((folder / "manifest.json").read_text())
    return [pq.ParquetFile(folder / "partitions" / name / path).metadata.num_rows
            for name, partition in manifest["partitions"].items()
            for path in partition["data_files"]]


def bench_size(size: int, documents: list[str], queries: list[str], uri: str,
               k: int) -> list[dict]:
    items = [Item(n, "result", "", documents[n % len(documents)]
                  + f"{BATCH_MARK}{n // len(documents)}") for n in range(size)]
    served = {item.id for item in items}

    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    index = LexicalIndex()
    index.tokenize = cached_tokenize  # type: ignore[method-assign]  # the same cut, once a text
    index.add([(item.id, item.full_text) for item in items])
    lexical_build = time.perf_counter() - start
    lexical_mib = rss_mib() - before

    start = time.perf_counter()
    full_text = MilvusFullText(uri=uri, collection=f"bench_{size}_text")
    full_text.upsert(items, index)
    milvus_fill = time.perf_counter() - start
    rows = segments(uri, full_text.collection)
    print(f"size {size}: in process built in {lexical_build:.1f} s, Milvus Lite filled in "
          f"{milvus_fill:.1f} s ({segment_note(rows, size)} segments)", flush=True)

    cut = [index.tokenize(text) for text in queries]
    start = time.perf_counter()  # the first query apart, as on Milvus
    index.score(queries[0], words=cut[0]).top(k)
    lexical_first = time.perf_counter() - start
    lexical_times = []
    for text, words in zip(queries, cut, strict=True):
        start = time.perf_counter()
        index.score(text, words=words).top(k)
        lexical_times.append(time.perf_counter() - start)
    out = [{"size": size, "index": "in process (LexicalIndex)", "build_s": lexical_build,
            "memory_mib": lexical_mib, "first_ms": 1000 * lexical_first,
            "p50_ms": 1000 * percentile(lexical_times, 0.5),
            "p95_ms": 1000 * percentile(lexical_times, 0.95), "segments": "",
            "overlap": 1.0, "tied": 1.0, "difference": 0.0}]

    filled = {"size": size, "index": "Milvus Lite, as filled", "build_s": milvus_fill,
              "memory_mib": float("nan"), "segments": segment_note(rows, size),
              **bench_milvus(index, full_text, queries, cut, served, k)}
    out.append(filled)
    # Then flushed: the memtable's rows written as segments, whose sparse indexes Milvus
    # Lite builds once and keeps (the memtable's is rebuilt at every search).
    start = time.perf_counter()
    vector_milvus.client_for(uri).flush(full_text.collection)
    flush = time.perf_counter() - start
    rows = segments(uri, full_text.collection)
    out.append({"size": size, "index": "Milvus Lite, after flush", "build_s": flush,
                "memory_mib": float("nan"), "segments": segment_note(rows, size),
                **bench_milvus(index, full_text, queries, cut, served, k)})
    full_text.drop()
    del index
    gc.collect()
    return out


def segment_note(rows: list[int], size: int) -> str:
    memtable = size - sum(rows)
    return f"{len(rows)}" + (f"+mem {memtable}" if memtable else "")


def bench_milvus(index: LexicalIndex, full_text: MilvusFullText, queries: list[str],
                 cut: list[list[str]], served: set[int], k: int) -> dict[str, float]:
    """Milvus's latency for each query (the first apart: it builds the segments' sparse
    indexes), and its agreement with the in-process index."""
    start = time.perf_counter()
    full_text.scores(cut[0], None, None, served).top(k)
    first = time.perf_counter() - start
    times, overlaps, tied, differences = [], [], [], []
    for text, words in zip(queries, cut, strict=True):
        start = time.perf_counter()
        theirs = full_text.scores(words, None, None, served)
        found = theirs.top(k)
        times.append(time.perf_counter() - start)

        ours = index.score(text, words=words)
        expected = ours.top(TOP)
        if not expected:
            continue
        expected_ids = [i for i, _ in expected]
        found_ids = [i for i, _ in found[:TOP]]
        overlaps.append(len(set(expected_ids) & set(found_ids)) / len(expected_ids))
        tenth = expected[-1][1]
        local = ours.of(np.array(found_ids, dtype=np.int64)).tolist()
        tied.append(min(1.0, sum(s >= tenth * (1 - TIE) for s in local) / len(expected_ids)))
        milvus = theirs.of(np.array(expected_ids, dtype=np.int64)).tolist()
        differences.append(max(abs(m - s) / s for m, (_, s) in zip(milvus, expected,
                                                                    strict=True)))
    return {"first_ms": 1000 * first, "p50_ms": 1000 * percentile(times, 0.5),
            "p95_ms": 1000 * percentile(times, 0.95),
            "overlap": sum(overlaps) / len(overlaps) if overlaps else float("nan"),
            "tied": sum(tied) / len(tied) if tied else float("nan"),
            "difference": max(differences) if differences else float("nan"),
            "scored": len(overlaps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--uri", help="a Milvus Lite file or a server URI (default: a "
                        "Milvus Lite file in a temporary folder, removed after)")
    args = parser.parse_args()

    print(f"load average at start: {load_average()} ({os.cpu_count()} cores)")
    print(f"milvus-lite {importlib.metadata.version('milvus-lite')}, "
          f"pymilvus {importlib.metadata.version('pymilvus')}, one thread, k={args.k}")
    folder = None if args.uri else tempfile.mkdtemp(prefix="lexical-milvus-")
    uri = args.uri or str(Path(folder) / "milvus.db")
    documents = [text.strip() for text in load_texts()[0]]  # as `Item.full_text` has them
    queries = load_queries(args.queries)
    start = time.perf_counter()
    for text in documents:
        cached_tokenize(text)
    print(f"{len(documents)} distinct documents (segmented once in "
          f"{time.perf_counter() - start:.1f} s), {len(queries)} queries from "
          f"{' and '.join(QUERY_SETS)}")

    vector_milvus.client_for(uri)  # pymilvus and the Lite engine loaded before measuring
    rows = []
    try:
        for size in args.sizes:
            start = time.perf_counter()
            rows += bench_size(size, documents, queries, uri, args.k)
            print(f"size {size}: {time.perf_counter() - start:.0f} s, "
                  f"load average {load_average()}", flush=True)
    finally:
        vector_milvus.close_client(uri)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"\n{'docs':>7} {'index':26} {'build s':>7} {'MiB':>5} {'first ms':>9} "
          f"{'p50 ms':>8} {'p95 ms':>8} {'top10 ∩':>8} {'∩ ties':>7} {'max rel diff':>12} "
          f"{'segments':>10}")
    for r in rows:
        memory = "-" if r["memory_mib"] != r["memory_mib"] else f"{r['memory_mib']:.0f}"
        print(f"{r['size']:7} {r['index']:26} {r['build_s']:7.2f} {memory:>5} "
              f"{r['first_ms']:9.1f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} "
              f"{r['overlap']:8.3f} {r['tied']:7.3f} {r['difference']:12.2e} "
              f"{r['segments']:>10}")
    print(f"\ntop10 ∩: mean share of the in-process top {TOP} ids in Milvus's top {TOP} "
          f"({rows[-1]['scored'] if rows else 0} queries with a hit); ∩ ties: the same, "
          f"counting an id that ties with the in-process {TOP}th score; max rel diff: of "
          f"Milvus's scores of the in-process top {TOP}. build s: the index's build, "
          "Milvus's fill (upsert), or the flush; MiB: this process's RSS growth while the "
          "in-process index builds (Milvus Lite's engine shares the process and keeps what "
          "earlier sizes freed: its growth is not measured). segments: Milvus Lite's "
          "flushed segments (+mem: rows in its memtable), each with its own BM25 statistics.")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
