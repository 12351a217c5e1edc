"""BM25 at scale: the in-place index (`matcher.lexical`) beside bm25s, the library it replaced.

The corpus is the development sets' documents (patents and papers) copied up to --docs, each
copy with its own batch word, as `scale_demo.py` scales the demo. Word segmentation is done
once per distinct text (it is the same for both indexes and is not what is measured).
Prints, for each index: time to build, time of one edit and the query after it (bm25s
rebuilds its matrix; the in-place index adds a row), query latency (score every document,
take the top 100), and the growth of the process's memory while building.

    python benchmarks/lexical.py --docs 100000 --edits 200 --queries 50
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matcher import lexical  # noqa: E402
from matcher.tokenize import tokenize  # noqa: E402
from settings import Settings  # noqa: E402

EVAL = Settings.from_env().datasets / "eval"
SETS = ("patent-keywords", "csl-keywords")
BATCH_MARK = " 批次"


@cache
def _base_words(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def cached_tokenize(text: str) -> list[str]:
    """tokenize(), segmenting each distinct base text once; a copy adds its batch word."""
    base, mark, batch = text.partition(BATCH_MARK)
    return list(_base_words(base)) + ([f"批次{batch}"] if mark else [])


def load_texts() -> tuple[list[str], list[str]]:
    documents, queries = [], []
    for name in SETS:
        with open(EVAL / name / "corpus.jsonl", encoding="utf-8") as fh:
            documents += [f"{d.get('title', '')}\n{d.get('text', '')}"
                          for d in map(json.loads, fh)]
        with open(EVAL / name / "queries.jsonl", encoding="utf-8") as fh:
            queries += [q["text"] for q in map(json.loads, fh)]
    return documents, queries


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench_in_place(corpus: list[tuple[int, str]], edits: list[tuple[int, str]],
                   queries: list[str]) -> dict[str, float]:
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    index = lexical.LexicalIndex()
    index.build(corpus)
    build = time.perf_counter() - start
    grown = rss_mib() - before
    edit_times = []
    for doc_id, text in edits:
        start = time.perf_counter()
        index.add([(doc_id, text)])
        index.score(queries[0]).top(100)  # an edit is done when the next query sees it
        edit_times.append(time.perf_counter() - start)
    query_times = []
    for query in queries:
        start = time.perf_counter()
        index.score(query).top(100)
        query_times.append(time.perf_counter() - start)
    return {"build_s": build, "edit_ms": 1000 * statistics.mean(edit_times),
            "query_p50_ms": 1000 * percentile(query_times, 0.5),
            "query_p95_ms": 1000 * percentile(query_times, 0.95), "memory_mib": grown}


def bench_bm25s(corpus: list[tuple[int, str]], edits: list[tuple[int, str]],
                queries: list[str]) -> dict[str, float]:
    import bm25s
    import numpy as np

    gc.collect()
    before = rss_mib()
    words = {doc_id: cached_tokenize(text) for doc_id, text in corpus}

    def rebuild() -> tuple[bm25s.BM25, float]:
        start = time.perf_counter()
        model = bm25s.BM25()
        model.index([w or [""] for w in words.values()], show_progress=False)
        return model, time.perf_counter() - start

    model, build = rebuild()
    grown = rss_mib() - before

    def query(text: str) -> None:
        known = [w for w in cached_tokenize(text) if w in model.vocab_dict]
        scores = model.get_scores(known) if known else np.zeros(len(words))
        np.argpartition(-np.asarray(scores), 100)[:100]

    edit_times = []
    for doc_id, text in edits[:3]:  # each edit is a full rebuild: three are enough
        start = time.perf_counter()
        words[doc_id] = cached_tokenize(text)
        model, _ = rebuild()
        query(queries[0])
        edit_times.append(time.perf_counter() - start)
    query_times = []
    for text in queries:
        start = time.perf_counter()
        query(text)
        query_times.append(time.perf_counter() - start)
    return {"build_s": build, "edit_ms": 1000 * statistics.mean(edit_times),
            "query_p50_ms": 1000 * percentile(query_times, 0.5),
            "query_p95_ms": 1000 * percentile(query_times, 0.95), "memory_mib": grown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--skip-bm25s", action="store_true", help="only the in-place index")
    args = parser.parse_args()

    lexical.tokenize = cached_tokenize  # segmentation is shared and not measured
    documents, queries = load_texts()
    corpus = [(n, documents[n % len(documents)] + f"{BATCH_MARK}{n // len(documents)}")
              for n in range(args.docs)]
    edits = [(n * 7919 % args.docs, documents[(n * 31) % len(documents)] + f"{BATCH_MARK}e{n}")
             for n in range(args.edits)]
    queries = queries[: args.queries]
    start = time.perf_counter()
    for _, text in corpus[: len(documents)]:
        cached_tokenize(text)
    print(f"{args.docs} documents ({len(documents)} distinct texts, segmented once in "
          f"{time.perf_counter() - start:.1f} s), {len(edits)} edits, {len(queries)} queries")
    rows = [("in place (matcher.lexical)", bench_in_place(corpus, edits, queries))]
    if not args.skip_bm25s:
        rows.append(("bm25s rebuild (baseline)", bench_bm25s(corpus, edits, queries)))
    print(f"{'index':28} {'build s':>8} {'edit+query ms':>14} {'query p50 ms':>13} "
          f"{'query p95 ms':>13} {'memory MiB':>11}")
    for name, r in rows:
        print(f"{name:28} {r['build_s']:8.2f} {r['edit_ms']:14.2f} {r['query_p50_ms']:13.2f} "
              f"{r['query_p95_ms']:13.2f} {r['memory_mib']:11.0f}")


if __name__ == "__main__":
    main()
