"""Measure what a firm's marks do to its need's ranking, to choose feedback's β.

On a set judged 0–3 (datasets/eval/need-results), for each answerable need: take today's
hybrid top 5, mark the judged grade ≥ 2 ones 相关 and the grade 0 ones 不相关 (grade 1 and
unjudged ones are left unmarked, as a firm might), re-rank with the marks applied as the site
applies them (`service.feedback`: 不相关 left out, the query moved toward the 相关 ones by β),
and score what the firm has not yet seen: nDCG@10 and P@5 (grade ≥ 2) of the ranking with the
marked results taken out of it and out of the judgements. β = 0 is today's ranking.

    python scripts/measure_feedback.py [SETDIR] --cache var/cache/eval-embeddings.sqlite \
        [--betas 0 0.25 0.5 1]

The engine is built as `python -m matcher evaluate` builds it (`matcher.ranking.EvalRanker`,
the settings' model behind the embedding cache), so with a warm cache nothing is encoded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings.cache import CachedEncoder, EmbeddingCache  # noqa: E402
from embeddings.loader import load_encoder  # noqa: E402
from matcher.evaluation import (  # noqa: E402
    ANSWERS_GRADE,
    answerable,
    load_corpus,
    load_qrels,
    load_queries,
    ndcg_at,
    precision_at,
)
from matcher.ranking import QUERY_SIDE, SIDE, EvalRanker  # noqa: E402
from service.feedback import apply_marks, toward  # noqa: E402
from settings import Settings  # noqa: E402

SEEN = 5  # the firm reads and marks today's top 5
DEPTH = 100


def _mean(figures: dict[str, tuple[float, float]], ids: list[str], metric: int) -> float:
    return sum(figures[i][metric] for i in ids) / len(ids) if ids else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("setdir", nargs="?", default="datasets/eval/need-results")
    parser.add_argument("--cache", default=None, metavar="FILE")
    parser.add_argument("--model", default=None, help="model folder, or 'fake'")
    parser.add_argument("--betas", nargs="+", type=float,
                        default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0])
    args = parser.parse_args(argv)
    set_dir = Path(args.setdir)
    docs = load_corpus(set_dir / "corpus.jsonl")
    queries = load_queries(set_dir / "queries.jsonl")
    qrels = load_qrels(set_dir / "qrels.tsv")
    settings = Settings.from_env()
    encoder = load_encoder(args.model or settings.model, backend=settings.backend,
                           models_dir=settings.models_dir)
    if args.cache:
        encoder = CachedEncoder(encoder, EmbeddingCache(args.cache))
    ranker = EvalRanker(encoder, docs, progress=True)
    engine = ranker.matcher
    today = ranker.rank(queries, k=DEPTH, mode="hybrid")  # also builds the query side's BM25
    assert engine.collections[QUERY_SIDE].lexical is not None
    number = {d.id: n for n, d in enumerate(docs)}
    asked = set(answerable(qrels))
    needs = [q for q in queries if q.id in asked]
    vectors = encoder.encode_queries([q.text for q in needs])

    marks: dict[str, tuple[list[str], list[str]]] = {}
    for need in needs:
        top = [doc_id for doc_id, _ in today[need.id][:SEEN]]
        judged = qrels[need.id]
        liked = [d for d in top if judged.get(d, -1) >= ANSWERS_GRADE]
        disliked = [d for d in top if judged.get(d, -1) == 0]
        marks[need.id] = (liked, disliked)
    # Only needs with something relevant left to find can score (nDCG@10: grade ≥ 1, P@5:
    # grade ≥ 2, as `evaluate` counts them); only those with a 相关 mark can move.
    def left(need_id: str, grade: int) -> bool:
        seen = {*marks[need_id][0], *marks[need_id][1]}
        return any(g >= grade for d, g in qrels[need_id].items() if d not in seen)

    for_ndcg = [n.id for n in needs if left(n.id, 1)]
    for_p5 = [n.id for n in needs if left(n.id, ANSWERS_GRADE)]
    moved = {n.id for n in needs if marks[n.id][0]}
    print(f"{set_dir.name}: {len(docs)} documents, {len(needs)} answerable needs, model "
          f"{encoder.name}; marks on the top {SEEN}: "
          f"{sum(len(m[0]) for m in marks.values())} 相关, "
          f"{sum(len(m[1]) for m in marks.values())} 不相关 over {len(moved)} needs with a 相关 "
          f"mark. Scored: nDCG@10 over the {len(for_ndcg)} needs with a grade ≥ 1 result left "
          f"({len(moved.intersection(for_ndcg))} with a 相关 mark), P@5 over the "
          f"{len(for_p5)} with a grade ≥ 2 one left ({len(moved.intersection(for_p5))}).")
    header = (f"{'beta':>6}{'nDCG@10':>10}{'P@5':>8}   {'(needs with a 相关 mark:':<25}"
              f"{'nDCG@10':>8}{'P@5':>8})")
    print(header)
    for beta in args.betas:
        query_vectors = vectors.copy()
        for row, need in enumerate(needs):
            liked = [number[d] for d in marks[need.id][0]]
            if liked:
                query_vectors[row] = toward(liked, beta, SIDE)(engine, vectors[row])
        ranked_all = engine.search_many(
            [n.text for n in needs], side=SIDE, k=DEPTH, mode="hybrid", explain=False,
            query_vectors=query_vectors)
        if beta == 0:
            same = all([docs[m.id].id for m in matches] == [d for d, _ in today[need.id]]
                       for need, matches in zip(needs, ranked_all, strict=True))
            print(f"{'':>6}(β = 0 reproduces today's ranking: {'yes' if same else 'NO'})")
        figures: dict[str, tuple[float, float]] = {}
        for need, matches in zip(needs, ranked_all, strict=True):
            liked, disliked = marks[need.id]
            seen = {*liked, *disliked}
            hidden = {number[d] for d in disliked}
            ranked = [docs[m.id].id for m in apply_marks(matches, hidden, DEPTH)]
            residual = [d for d in ranked if d not in seen]
            judged = {d: g for d, g in qrels[need.id].items() if d not in seen}
            figures[need.id] = (ndcg_at(residual, judged, 10),
                                precision_at(residual, judged, SEEN, ANSWERS_GRADE))
        marked_ndcg = [i for i in for_ndcg if i in moved]
        marked_p5 = [i for i in for_p5 if i in moved]
        print(f"{beta:>6.2f}{_mean(figures, for_ndcg, 0):>10.4f}"
              f"{_mean(figures, for_p5, 1):>8.4f}   {'':<25}"
              f"{_mean(figures, marked_ndcg, 0):>8.4f}{_mean(figures, marked_p5, 1):>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
