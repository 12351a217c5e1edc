"""Hubs: results that rank for many unrelated needs, and the measured ways to discount them.

In a dense embedding space a few points sit near the centre of many others (hubness): a
generic abstract (a coating "with good stability", a method "for many fields") lands in many
needs' top 10 without answering any of them. Two standard remedies, both pure numpy here:

* `neighbourhood_density` + `csls_scores`: CSLS (cross-domain similarity local scaling,
  Conneau et al. 2018), close to the inverted softmax of Smith et al. 2017: a result's cosine
  with a need is lowered by `weight` × its mean cosine with its k nearest needs (`r_k`). A hub
  is close to every need, so its `r_k` is high and it loses most; a specific result keeps its
  score for the needs it is about.
* `mutual_pairs`: mutual nearest neighbours: a (need, result) pair counts only if the need is
  also among the result's own k nearest needs (by cosine). A hub in 20 needs' top 10 keeps
  only the 10 needs it is nearest to at most, and fewer where it is nearest to needs that do
  not rank it.

What each does to the demo (how many needs' top 10 the most frequent result reaches, beside
nDCG@10 and P@5) is measured by `scripts/measure_hubs.py`. The engine ranks a need's results
with CSLS among the open needs at weight 0.25 (`retriever.HUB_WEIGHT`): need-results nDCG@10
+0.015, P@5 +0.009, the older sets within 0.002. The officers' coverage also keeps a pair only
for mutual nearest neighbours (`service.matching.COVERAGE_MUTUAL_K`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

R = TypeVar("R", bound=Hashable)  # a result's id
N = TypeVar("N", bound=Hashable)  # a need's id

# Rows of the cosine matrix computed at a time: 2,048 × 100,000 float32 is 800 MB at most.
_BLOCK = 2048


def neighbourhood_density(points: np.ndarray, others: np.ndarray, k: int = 10, *,
                          same: bool = False) -> np.ndarray:
    """r_k of each row of `points`: its mean cosine with its `k` nearest rows of `others`
    (unit vectors, so cosine is the dot product). With `same` the two are one set and a
    point's own row is left out. Fewer than `k` others: the mean over all of them."""
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    points = np.asarray(points, dtype=np.float32)
    others = np.asarray(others, dtype=np.float32)
    available = len(others) - (1 if same else 0)
    if not len(points) or available < 1:
        return np.zeros(len(points), dtype=np.float32)
    k = min(k, available)
    density = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), _BLOCK):
        cosines = points[start:start + _BLOCK] @ others.T
        if same:
            rows = np.arange(len(cosines))
            cosines[rows, start + rows] = -np.inf
        nearest = np.partition(cosines, -k, axis=1)[:, -k:]
        density[start:start + len(cosines)] = nearest.mean(axis=1)
    return density


def density_of_hits(hits: Sequence[Sequence[tuple[int, float]]]) -> np.ndarray:
    """r_k from a vector index's k-nearest search (one list of (id, cosine) per point): the
    mean cosine of each list, 0 for an empty one. The engine searches the needs' index with
    its candidates' vectors, so r_k costs one k-NN search however many needs there are."""
    return np.array([float(np.mean([score for _, score in row])) if row else 0.0
                     for row in hits], dtype=np.float32)


def csls_scores(cosines: np.ndarray, density: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """Cosines lowered by `weight` × each result's density (`neighbourhood_density`).

    Full CSLS is 2·cos − r(need) − r(result); a need's own density is the same for all its
    candidates, so within one need's ranking it is cos − r(result)/2: `weight` 0.5."""
    if weight < 0 or not np.isfinite(weight):
        raise ValueError(f"weight must be a finite number ≥ 0, got {weight}")
    return np.asarray(cosines, dtype=np.float32) - np.float32(weight) * np.asarray(
        density, dtype=np.float32)


def reverse_ranks(result_vectors: np.ndarray, need_vectors: np.ndarray) -> np.ndarray:
    """(results × needs): the place of each need among each result's nearest needs
    (1 = nearest; ties to the smaller need index)."""
    cosines = np.asarray(result_vectors, dtype=np.float32) @ np.asarray(
        need_vectors, dtype=np.float32).T
    order = np.argsort(-cosines, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(len(order))[:, None]
    ranks[rows, order] = np.arange(1, order.shape[1] + 1)[None, :]
    return ranks


def mutual_pairs(needs_of: Mapping[R, Mapping[N, int]], result_vectors: Mapping[R, np.ndarray],
                 need_vectors: Mapping[N, np.ndarray], k: int = 10) -> dict[R, dict[N, int]]:
    """The pairs of `needs_of` (result → {need: the result's rank for it}) whose need is also
    among the result's `k` nearest needs of `need_vectors` (all the needs competing, not only
    those the result ranks for). Results or needs without a vector are kept as they are:
    nothing says they are hubs."""
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    need_ids = list(need_vectors)
    scored = [r for r in needs_of if r in result_vectors and needs_of[r]]
    if not need_ids or not scored:
        return {r: dict(needs) for r, needs in needs_of.items() if needs}
    column = {need: n for n, need in enumerate(need_ids)}
    ranks = reverse_ranks(np.vstack([result_vectors[r] for r in scored]),
                          np.vstack([need_vectors[n] for n in need_ids]))
    row = {r: n for n, r in enumerate(scored)}
    kept: dict[R, dict[N, int]] = {}
    for result_id, needs in needs_of.items():
        pairs = {need: rank for need, rank in needs.items()
                 if result_id not in row or need not in column
                 or ranks[row[result_id], column[need]] <= k}
        if pairs:
            kept[result_id] = pairs
    return kept
