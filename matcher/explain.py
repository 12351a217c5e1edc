"""Why two texts match: the technical terms they share, and where those terms sit in each text."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from matcher.filters import facet_values
from matcher.tokenize import content_terms, explanation_terms, normalise
from matcher.types import FacetClash, Item, SharedTerm, Side

# Facets whose agreement is worth telling a user about, in the order they are shown.
EXPLAINED_FACETS = ("industry", "region", "result_type", "maturity", "cooperation_mode")

# A shared word says what kind of text it is (a result's 涉及 处理 制备, a need's 一家 预算 我司),
# not what the two texts are about, when it is held by more than COMMON_SHARE of either side's
# documents, or by more than COMMON_BOTH_SHARE of both sides' (方式 获得 满足 温度: common
# everywhere). A topic the demo needs dwell on (电池: 7.6% of needs, 3.5% of results) is
# common on one side only and stays. Chosen on need-results (4,654 results, 158 needs) with
# scripts/explain_terms.py; one share of 5-8% on either side dropped 电池 颗粒 纤维 精度.
COMMON_SHARE = 0.10
COMMON_BOTH_SHARE = 0.04
# A side with fewer documents cannot tell a common word from a rare one, so it is not asked
# (with 3 needs indexed, every word of one need is in a third of them).
MIN_SIDE_DOCS = 30


class DocumentShares(Protocol):
    """What `common_on_a_side` reads of a side's BM25 index (`matcher.lexical.LexicalIndex`)."""

    def count(self) -> int: ...

    def share(self, term: str) -> float: ...


def common_on_a_side(sides: Iterable[DocumentShares], share: float | None = None,
                     both_share: float | None = None) -> Callable[[str], bool]:
    """A test for words too common to explain a match: held by more than `share` of one
    side's documents or more than `both_share` of every side's (by default COMMON_SHARE and
    COMMON_BOTH_SHARE). Sides too small to tell (MIN_SIDE_DOCS) are not asked; with none
    left, no word is common, and with one left only `share` applies."""
    share = COMMON_SHARE if share is None else share
    both_share = COMMON_BOTH_SHARE if both_share is None else both_share
    judged = [side for side in sides if side.count() >= MIN_SIDE_DOCS]

    def common(term: str) -> bool:
        shares = [side.share(term) for side in judged]
        return bool(shares) and (max(shares) > share
                                 or len(shares) > 1 and min(shares) > both_share)

    return common


def shared_terms(
    query_text: str, doc_text: str, idf: Callable[[str], float], limit: int = 12, *,
    doc_words: Iterable[str] | None = None, query_words: Iterable[str] | None = None,
    common: Callable[[str], bool] | None = None,
) -> tuple[SharedTerm, ...]:
    """Content words found in both texts, rarest (most telling) first; words for which
    `common` is true (see `common_on_a_side`) are left out.

    A shared term that is part of a longer shared term (电池 inside 锂离子电池) is dropped so the
    explanation lists each idea once, at its most specific. `doc_words` and `query_words`, the
    texts as the BM25 index cuts them (with its domain vocabulary), save segmenting again and
    keep domain terms whole.
    """
    doc_terms = content_terms(doc_words) if doc_words is not None \
        else explanation_terms(doc_text)
    query_terms = content_terms(query_words) if query_words is not None \
        else explanation_terms(query_text)
    both = query_terms & doc_terms
    if common is not None:
        both = {t for t in both if not common(t)}
    specific = [t for t in both if not any(t != other and t in other for other in both)]
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


def clashed_facets(query_facets: dict[str, str], item: Item,
                   query_side: Side) -> tuple[FacetClash, ...]:
    """Where a need and a result disagree on terms: the need's cooperation mode is none of
    the modes the result offers, or the need's budget ceiling (`budget_max`, 万元) is below
    the result's asking price (`asking_price`). Only between a need and a result; a facet
    missing on either side is no clash. (Needs state no wanted maturity, so maturity cannot
    clash.)"""
    if query_side == item.side:
        return ()
    need, result = (query_facets, item.facets) if query_side == "need" \
        else (item.facets, query_facets)
    clashes = []
    wanted = {v for v in need.get("cooperation_mode", "").split(";") if v}
    offered = {v for v in result.get("cooperation_mode", "").split(";") if v}
    if wanted and offered and not wanted & offered:
        clashes.append(FacetClash("cooperation_mode", ";".join(sorted(wanted)),
                                  ";".join(sorted(offered))))
    ceiling, price = _amount(need.get("budget_max")), _amount(result.get("asking_price"))
    if ceiling is not None and price is not None and ceiling < price:
        clashes.append(FacetClash("budget", need["budget_max"], result["asking_price"]))
    return tuple(clashes)


def _amount(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


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
