"""Measure hubs (results in many needs' top 10) and what each discount costs in ranking.

    python scripts/measure_hubs.py [--cache var/cache/eval-embeddings.sqlite] [--sets ...]

On need-results (its corpus is the demo's 4,654 results; its 158 queries include the 82 demo
needs) with the real engine, built as `python -m matcher evaluate` builds it, it prints:

* for the need page's ranking (lists), today's and each CSLS variant (`matcher.hubness`): the
  most frequent result's count of demo needs' top 10s (and of all 158), the top 5 such results,
  nDCG@10 and P@5 (grade ≥ 2); nDCG@10 on the other sets named;
* for the officers' coverage (the demo needs' top 10 from today's ranking): the same count when
  every top-10 pair counts (the old coverage), only pairs rated 较强 or better (the coverage
  now), mutual nearest neighbours (`mutual_pairs`), and both.

A CSLS variant subtracts weight × r_k(result) from the dense cosine before fusion, r_k being
the result's mean cosine with its k nearest queries of the set ("queries") or with its k
nearest results of the corpus ("corpus", which needs no query set).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matcher.cli import _encoder  # noqa: E402 - the evaluation's encoder, cache and settings
from matcher.evaluation import load_corpus, load_qrels, load_queries, score_run  # noqa: E402
from matcher.hubness import csls_scores, mutual_pairs, neighbourhood_density  # noqa: E402
from matcher.ranking import SIDE, EvalRanker  # noqa: E402
from matcher.retriever import HUB_K, HUB_WEIGHT  # noqa: E402
from service.matching import COVERAGE_MIN_LABEL, labels_from  # noqa: E402

K = 10
DEMO_PREFIX = "DEMO-NEED-"
# (name, density source, weight): weight 0.5 is CSLS proper (see `csls_scores`). "queries":
# the engine's own discount (`Matcher.hub_weight`: r_k among the indexed needs, here the set's
# queries; the strength reads the plain cosine); "corpus": r_k among the results, applied here
# by wrapping the dense scores (the strength then reads the discounted cosine).
VARIANTS: tuple[tuple[str, str, float], ...] = (
    (f"csls-queries w{HUB_WEIGHT:g} (engine)", "queries", HUB_WEIGHT),
    ("csls-queries w0.5", "queries", 0.5),
    ("csls-corpus w0.25", "corpus", 0.25),
    ("csls-corpus w0.5", "corpus", 0.5),
)


def first_vectors(ranker: EvalRanker) -> np.ndarray:
    coll = ranker.matcher.collections[SIDE]
    ids = np.array(sorted(coll.items), dtype=np.int64)
    vectors = np.zeros((len(ranker.docs), coll.vectors.vectors(ids[:1]).shape[1]),
                       dtype=np.float32)
    vectors[ids] = coll.vectors.vectors(ids)
    return vectors


def with_penalty(ranker: EvalRanker, penalty: np.ndarray | None) -> Callable[[], None]:
    """Make the collection's dense scores `csls_scores` with this per-document penalty
    (already weighted); returns the undo."""
    coll = ranker.matcher.collections[SIDE]
    original = coll.dense_scores
    if penalty is not None:
        def penalised(ids: np.ndarray, query: np.ndarray) -> np.ndarray:
            return csls_scores(original(ids, query), penalty[ids], 1.0)
        coll.dense_scores = penalised  # type: ignore[method-assign]

    def undo() -> None:
        coll.dense_scores = original  # type: ignore[method-assign]
    return undo


def rank(ranker: EvalRanker, queries: Sequence, weight: float, penalty: np.ndarray | None
         ) -> tuple[dict[str, list[tuple[str, float]]], dict[str, list[str]]]:
    """Hybrid top 100 at the engine's hub weight `weight`, the dense scores less `penalty`
    (per document) if any."""
    undo = with_penalty(ranker, penalty)
    ranker.matcher.hub_weight = weight
    try:
        return ranker.rank_rated(queries, k=100, mode="hybrid")
    finally:
        undo()


def hub_counts(run: dict[str, list[tuple[str, float]]], query_ids: Sequence[str]) -> Counter:
    return Counter(doc for q in query_ids for doc, _ in run.get(q, [])[:K])


def pair_counts(pairs: dict[str, dict[str, int]]) -> Counter:
    return Counter({doc: len(needs) for doc, needs in pairs.items()})


def describe(counts: Counter, titles: dict[str, str], top: int = 5) -> str:
    return "; ".join(f"{doc} ×{n} {titles[doc][:24]}" for doc, n in counts.most_common(top))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="var/cache/eval-embeddings.sqlite")
    parser.add_argument("--sets", nargs="*", default=["csl-keywords"],
                        help="other sets under datasets/eval for nDCG@10 (need-results always)")
    parser.add_argument("--eval-dir", default="datasets/eval")
    args = parser.parse_args(argv)
    encoder = _encoder(None, args.cache)
    print(f"model {encoder.name}; top {K}; CSLS k={HUB_K}")
    lists: dict[str, dict[str, str]] = {}
    for set_name in ["need-results", *args.sets]:
        started = time.perf_counter()
        set_dir = Path(args.eval_dir) / set_name
        docs = load_corpus(set_dir / "corpus.jsonl")
        queries = load_queries(set_dir / "queries.jsonl")
        qrels = load_qrels(set_dir / "qrels.tsv")
        ranker = EvalRanker(encoder, docs)
        titles = {d.id: d.title or d.text[:24] for d in docs}
        doc_vectors = first_vectors(ranker)
        # The queries play the open needs: `EvalRanker` indexes them as the platform indexes
        # needs (documents, first window), and the engine's discount reads that index.
        query_vectors = encoder.encode_queries([q.text for q in queries])
        corpus_density = neighbourhood_density(doc_vectors, doc_vectors, HUB_K, same=True)
        demo = [q.id for q in queries if q.id.startswith(DEMO_PREFIX)]
        every = [q.id for q in queries]
        print(f"\n== {set_name}: {len(docs)} documents, {len(queries)} queries"
              f" ({len(demo)} demo needs)")
        base_run, base_labels = rank(ranker, queries, 0.0, None)
        rows = [("no discount", base_run)]
        runs = {"no discount": (base_run, base_labels)}
        for name, source, weight in VARIANTS:
            runs[name] = (rank(ranker, queries, weight, None) if source == "queries"
                          else rank(ranker, queries, 0.0, weight * corpus_density))
            rows.append((name, runs[name][0]))
        base = score_run(base_run, qrels)
        for name, run in rows:
            scores = score_run(run, qrels)
            shown = f"nDCG@10 {scores['nDCG@10']:.4f} ({scores['nDCG@10'] - base['nDCG@10']:+.4f})"
            if "P@5" in scores:
                shown += f"  P@5 {scores['P@5']:.4f} ({scores['P@5'] - base['P@5']:+.4f})"
            counts = hub_counts(run, demo or every)
            top = counts.most_common(1)[0] if counts else ("-", 0)
            print(f"{name:<24} {shown}  most frequent in {top[1]} "
                  f"{'demo needs' if demo else 'queries'}' top {K}"
                  + (f" ({hub_counts(run, every).most_common(1)[0][1]} of all {len(every)})"
                     if demo else ""))
            lists.setdefault(set_name, {})[name] = describe(counts, titles)
        for name, _ in rows:
            print(f"  top 5 {name}: {lists[set_name][name]}")
        if demo:
            coverage_report({name: runs[name] for name in ("no discount", VARIANTS[0][0])},
                            demo, doc_vectors, query_vectors,
                            {q.id: n for n, q in enumerate(queries)},
                            {d.id: n for n, d in enumerate(docs)}, titles)
        print(f"({time.perf_counter() - started:.0f} s)")
    return 0


def coverage_report(runs: dict[str, tuple[dict[str, list[tuple[str, float]]],
                                           dict[str, list[str]]]],
                    demo: Sequence[str], doc_vectors: np.ndarray, query_vectors: np.ndarray,
                    query_row: dict[str, int], doc_row: dict[str, int],
                    titles: dict[str, str]) -> None:
    """The officers' coverage over the demo needs: who claims the most needs, by method."""
    good = labels_from(COVERAGE_MIN_LABEL)
    need_vectors = {need: query_vectors[query_row[need]] for need in demo}
    methods: dict[str, dict[str, dict[str, int]]] = {}
    for ranking, (run, labels) in runs.items():
        every: dict[str, dict[str, int]] = {}
        strong: dict[str, dict[str, int]] = {}
        for need in demo:
            for rank, ((doc, _), label) in enumerate(zip(run[need][:K], labels[need][:K],
                                                         strict=False), start=1):
                every.setdefault(doc, {})[need] = rank
                if label in good:
                    strong.setdefault(doc, {})[need] = rank
        result_vectors = {doc: doc_vectors[doc_row[doc]] for doc in every}
        methods[f"{ranking}: every top-10 pair"] = every
        methods[f"{ranking}: mutual NN k{K}"] = mutual_pairs(every, result_vectors,
                                                              need_vectors, K)
        methods[f"{ranking}: {COVERAGE_MIN_LABEL} or better"] = strong
        methods[f"{ranking}: {COVERAGE_MIN_LABEL} or better + mutual NN k{K}"] = mutual_pairs(
            strong, result_vectors, need_vectors, K)
    print(f"coverage over the {len(demo)} demo needs:")
    for name, pairs in methods.items():
        counts = pair_counts(pairs)
        answered = len({need for needs in pairs.values() for need in needs})
        top = counts.most_common(1)[0][1] if counts else 0
        print(f"  {name:<42} most needs claimed by one result {top:>2}; "
              f"needs answered {answered}/{len(demo)}; pairs {sum(counts.values())}")
        print(f"    top 5: {describe(counts, titles)}")


if __name__ == "__main__":
    raise SystemExit(main())
