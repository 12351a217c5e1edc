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


def is_keyword_list(query: str) -> bool:
    """Two or more whitespace-separated terms with nothing that makes them a sentence."""
    parts = query.split()
    if len(parts) < 2 or _SENTENCE_PUNCTUATION.search(query):
        return False
    return all(len(p) <= _MAX_TERM_CHARS and p.lower() not in _FUNCTION_WORDS for p in parts)


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

    def fuse(self, query: str, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """Fused scores in [0, 1] for candidates whose two component scores are given."""
        if dense.shape != lexical.shape:
            raise ValueError(f"score arrays differ in shape: {dense.shape} vs {lexical.shape}")
        if not len(dense):
            return np.zeros(0, dtype=np.float32)
        weight = self.dense_weight(query)
        return weight * minmax(dense) + (1.0 - weight) * minmax(lexical)


def default_fusion() -> Fusion:
    return Fusion()
