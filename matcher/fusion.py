"""Fusing dense and lexical scores into one ranking.

Measured on the four development sets (`python -m matcher evaluate`, README): reciprocal-rank
fusion throws the score margins away and loses to BM25 on keyword lists; a convex combination
of min-max-normalised scores keeps them and beats both components on every set. How much to
trust each side depends on the form of the query:

* prose (a title, a sentence, a firm's need) is what the dense model was trained on, and it
  reads meaning BM25 cannot: dense weight 0.7;
* a bare keyword list (`染整 废水处理 降解 光催化剂`) gives BM25 exact, rare terms while the
  embedding of a bag of words is diffuse: dense weight 0.45.

Grids over 0.3–0.85 put the optimum for prose at 0.7–0.75 on both title sets and for keyword
lists at 0.3–0.5 on both keyword sets; the values are the middle of those plateaus, not their
edges, so they carry over to unseen sets rather than fitting these.

Both component scores are computed exactly for every candidate (the union of each ranker's
top candidates), so normalisation never guesses a missing score.

Min-max gives the best BM25 hit full weight even when BM25 had nothing to go on. An English
need over Chinese results shares a handful of words (a model number, "AI", an English word in
one abstract) with a few documents; min-max lifts those stray hits to 1 and their 0.3 weight
put them in the top 10 (need-results, 20 English needs: lexical alone nDCG@10 0.006, dense
alone 0.447, fused 0.359). So the lexical weight is scaled by its evidence: the share of the
query's distinct words that occur in the index at all (BM25 is blind to the rest; the dense
side reads them all), full from two thirds on and squared below. Chinese queries (median share
0.89 on firm needs, 0.96–1.0 on titles and keyword lists) keep today's weights; an English
need (median 0.32) keeps about a quarter of its lexical weight. Measured (`evaluate`, hybrid,
candidate pools of 200 as `evaluate` ranks 100, and of 100 as the site ranks ≤ 50): English
needs nDCG@10 0.359 → 0.430 at both depths, need-results 0.7365 → 0.7432 (pool 100: 0.7420 →
0.7487), the four other sets unchanged or up by < 0.001. Unsquared, the gain held at pool 100
only (0.404 → 0.377 on the English needs at 200); full from a half of the words known kept half
of it. Tried and dropped: a linear scale over the whole range (costs the Chinese needs at pool
100), a hard cut at two thirds (costs the keyword sets), an idf-weighted share, the top hit's
share of the query's terms, z-scores against the candidate pool (a stray hit among zeros gets a
*larger* z), and a dense evidence from the top cosine's margin over the pool's median
(patent-title 0.887 → 0.879).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# Sentence punctuation, or an English function word standing alone, marks prose; commas
# and brackets inside a term (船舶、舰船工程, 粉末活性炭(PAC)) do not.
_SENTENCE_PUNCTUATION = re.compile(r"[，。；！？;!?]|[,.:](?:\s|$)")
_FUNCTION_WORDS = frozenset(
    "the a an of for to in on with and by is are from using that this which".split()
)
# Longer than this, a whitespace-separated part is a phrase or a sentence, not a term.
_MAX_TERM_CHARS = 12
# BM25's evidence is full once this share of the query's distinct words is in the index.
FULL_EVIDENCE_SHARE = 2 / 3


def is_keyword_list(query: str) -> bool:
    """Two or more whitespace-separated terms with nothing that makes them a sentence."""
    parts = query.split()
    if len(parts) < 2 or _SENTENCE_PUNCTUATION.search(query):
        return False
    return all(len(p) <= _MAX_TERM_CHARS and p.lower() not in _FUNCTION_WORDS for p in parts)


def lexical_evidence(known_share: float) -> float:
    """How far to trust BM25 for a query of which `known_share` of the distinct words occur in
    the index: in [0, 1], full from FULL_EVIDENCE_SHARE on, falling with the square below (a
    linear fall let an English need's stray hits back in with deeper candidate pools)."""
    if not 0.0 <= known_share <= 1.0:
        raise ValueError(f"a share must lie in [0, 1], got {known_share}")
    return min(1.0, known_share / FULL_EVIDENCE_SHARE) ** 2


def minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(scores.min()), float(scores.max())
    if hi <= lo:
        return np.zeros_like(scores, dtype=np.float32)
    return ((scores - lo) / (hi - lo)).astype(np.float32)


@dataclass(frozen=True)
class Fusion:
    prose_dense_weight: float = 0.7
    keyword_dense_weight: float = 0.45

    def __post_init__(self) -> None:
        for weight in (self.prose_dense_weight, self.keyword_dense_weight):
            if not 0.0 <= weight <= 1.0:
                raise ValueError(f"fusion weights must lie in [0, 1], got {weight}")

    def dense_weight(self, query: str) -> float:
        return self.keyword_dense_weight if is_keyword_list(query) else self.prose_dense_weight

    def fuse(self, query: str, dense: np.ndarray, lexical: np.ndarray, *,
             known_share: float = 1.0) -> np.ndarray:
        """Fused scores in [0, 1] for candidates whose two component scores are given.

        `known_share`: the share of the query's distinct words the lexical index holds; below
        FULL_EVIDENCE_SHARE the lexical weight shrinks with it (the two weights still sum to 1).
        """
        if dense.shape != lexical.shape:
            raise ValueError(f"score arrays differ in shape: {dense.shape} vs {lexical.shape}")
        evidence = lexical_evidence(known_share)
        if not len(dense):
            return np.zeros(0, dtype=np.float32)
        dense_weight = self.dense_weight(query)
        lexical_weight = (1.0 - dense_weight) * evidence
        total = dense_weight + lexical_weight
        if total <= 0.0:  # all weight on a side without evidence: only the dense order is left
            return minmax(dense)
        return ((dense_weight * minmax(dense) + lexical_weight * minmax(lexical))
                / total).astype(np.float32)


def default_fusion() -> Fusion:
    return Fusion()
