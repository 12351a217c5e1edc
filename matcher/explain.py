"""Why two texts match: the technical terms they share, and where those terms sit in each text."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence

from matcher.filters import facet_values
from matcher.tokenize import content_terms, explanation_terms, normalise
from matcher.types import Item, SharedTerm

# Facets whose agreement is worth telling a user about, in the order they are shown.
EXPLAINED_FACETS = ("industry", "region", "result_type", "maturity", "cooperation_mode")


def shared_terms(
    query_text: str, doc_text: str, idf: Callable[[str], float], limit: int = 12, *,
    doc_words: Iterable[str] | None = None, query_words: Iterable[str] | None = None,
) -> tuple[SharedTerm, ...]:
    """Content words found in both texts, rarest (most telling) first.

    A shared term that is part of a longer shared term (电池 inside 锂离子电池) is dropped so the
    explanation lists each idea once, at its most specific. `doc_words` and `query_words`, the
    texts as the BM25 index cuts them (with its domain vocabulary), save segmenting again and
    keep domain terms whole.
    """
    doc_terms = content_terms(doc_words) if doc_words is not None \
        else explanation_terms(doc_text)
    query_terms = content_terms(query_words) if query_words is not None \
        else explanation_terms(query_text)
    common = query_terms & doc_terms
    specific = [t for t in common if not any(t != other and t in other for other in common)]
    ranked = sorted(specific, key=lambda t: (-idf(t), -len(t), t))
    return tuple(SharedTerm(t, round(idf(t), 3)) for t in ranked[:limit])


def agreed_facets(query_facets: dict[str, str], item: Item) -> tuple[str, ...]:
    """Facets where the two sides agree, as `name=value` (a need's 许可 meets a result that
    offers 技术转让;许可, so multi-valued facets agree on any shared value)."""
    agreed = []
    for name in EXPLAINED_FACETS:
        wanted = {v for v in query_facets.get(name, "").split(";") if v}
        common = wanted & facet_values(item, name)
        if common:
            agreed.append(f"{name}={';'.join(sorted(common))}")
    return tuple(agreed)


def list_ranks(scores: Sequence[float]) -> list[int | None]:
    """Each score's place (1 = highest) among `scores`, ties in list order; None for NaN, the
    score of a ranker that did not run (dense or lexical mode)."""
    order = sorted((i for i, s in enumerate(scores) if not math.isnan(s)),
                   key=lambda i: -scores[i])
    ranks: list[int | None] = [None] * len(scores)
    for place, i in enumerate(order, start=1):
        ranks[i] = place
    return ranks


def highlight_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) character spans of the terms in `text`, longest term first.

    Matching runs on the NFKC/lower-cased text, which keeps positions for the CJK and ASCII
    texts we hold; where normalisation changes the length, spans fall back to none rather
    than pointing at the wrong characters.
    """
    folded = normalise(text)
    if len(folded) != len(text):
        return []
    taken = [False] * len(text)
    spans: list[tuple[int, int]] = []
    for term in sorted(set(terms), key=len, reverse=True):
        if not term:
            continue
        for found in re.finditer(re.escape(term), folded):
            start, end = found.span()
            if not any(taken[start:end]):
                spans.append((start, end))
                for i in range(start, end):
                    taken[i] = True
    return sorted(spans)
