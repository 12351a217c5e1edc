"""Print the shared terms a match explanation shows, before and after leaving out filler.

Before: every shared word of two characters or more that is not a stopword (the rule until
the filler filter). After: what the engine now shows, without function words (jieba's tags,
`matcher.tokenize.function_word`) and without words held by more than a share of either
side's documents (`matcher.explain.common_on_a_side`). The queries play the needs, indexed on
the need side as `python -m matcher evaluate` indexes them, so both sides are asked.

    python scripts/explain_terms.py [SETDIR] --cache var/cache/eval-embeddings.sqlite \
        [--queries 10] [--k 3] [--share 0.08] [--mode hybrid|lexical]

`--mode lexical` needs no model. The engine is built as `python -m matcher evaluate` builds
it (`matcher.ranking.EvalRanker`, the settings' model behind the embedding cache), so with a
warm cache nothing is encoded. Last, the words dropped most often, with why.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matcher import explain  # noqa: E402
from matcher.evaluation import load_corpus, load_queries  # noqa: E402
from matcher.ranking import QUERY_SIDE, SIDE, EvalRanker  # noqa: E402
from matcher.tokenize import EXPLANATION_STOPWORDS, function_word  # noqa: E402


def before(query_words: list[str], doc_words: list[str]) -> list[str]:
    """The shared terms as the engine chose them before the filler filter."""
    both = {w for w in set(query_words) & set(doc_words)
            if len(w) >= 2 and w not in EXPLANATION_STOPWORDS and not w.isdigit()}
    return sorted((t for t in both if not any(t != o and t in o for o in both)),
                  key=lambda t: (-len(t), t))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setdir", nargs="?", default=str(ROOT / "datasets/eval/need-results"))
    parser.add_argument("--cache", default=None)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--share", type=float, default=explain.COMMON_SHARE)
    parser.add_argument("--mode", default="hybrid", choices=("hybrid", "lexical"))
    args = parser.parse_args()
    explain.COMMON_SHARE = args.share
    set_dir = Path(args.setdir)
    docs = load_corpus(set_dir / "corpus.jsonl")
    queries = load_queries(set_dir / "queries.jsonl")
    encoder = None
    if args.mode == "hybrid":
        from matcher.cli import _encoder

        encoder = _encoder(None, args.cache)
    ranker = EvalRanker(encoder, docs, dense=encoder is not None)
    matcher = ranker.matcher
    needs, results = matcher.collections[QUERY_SIDE].lexical, matcher.collections[SIDE].lexical
    needs.build((n, q.text) for n, q in enumerate(queries))
    print(f"{set_dir.name}: {results.count()} results, {needs.count()} needs indexed; "
          f"common = in more than {args.share:.0%} of either side's documents "
          f"or {explain.COMMON_BOTH_SHARE:.0%} of both")
    common = explain.common_on_a_side([needs, results])
    dropped: Counter[tuple[str, str]] = Counter()
    shown = queries[: args.queries]
    answers = matcher.search_many([q.text for q in shown], side=SIDE, k=args.k,
                                  mode=args.mode, query_side=QUERY_SIDE)
    for query, matches in zip(shown, answers, strict=True):
        print(f"\n== {query.id} {query.text.splitlines()[0][:40]}")
        words = results.tokenize(query.text)
        for match in matches:
            old = before(words, results.words(match.id))
            new = [t.term for t in match.explanation.shared_terms]
            for term in old:
                if function_word(term):
                    dropped[(term, "function word")] += 1
                elif common(term):
                    dropped[(term, f"needs {needs.share(term):.1%}, "
                                   f"results {results.share(term):.1%}")] += 1
            print(f"  {docs[match.id].title[:36]}")
            print(f"    before: {'、'.join(old[:12]) or '—'}")
            print(f"    after:  {'、'.join(new[:12]) or '—'}")
    print("\nDropped most often (word, why, matches):")
    for (term, why), times in dropped.most_common(40):
        print(f"  {term}\t{why}\t{times}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
