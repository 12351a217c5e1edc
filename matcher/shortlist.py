"""Proposing auction lots (成果拍卖会): which N results together answer the most open needs.

An officer wants a short list of results that, taken together, speak to as many firms' open
needs as possible, without filling the list with one industry. Picking the N results that
individually answer the most needs does poorly: the top results tend to answer the *same*
needs. This is a coverage problem, solved with the greedy method that is provably near-optimal
for it.

The method (best-answer coverage, greedy, with an industry balance):

- Coverage comes from the matching engine: result → {need: rank of the result among that
  need's top K matches}, for the pairs the engine rates 较强 or better only
  (`service.matching.COVERAGE_MIN_LABEL`): a weak match in a need's top K does not answer it,
  and counting it let one generic result claim many unrelated needs. A need answered at
  rank r is worth w(r) = 1 / log2(1 + r): 1 for the best match, 0.63 for the second, 0.29
  for the 10th (the DCG discount of ranking metrics).
- The value of a set S of lots is f(S) = Σ over needs of the best w(r) any lot in S reaches
  for it. A need counts once, at its best answer; a second lot answering a need already
  answered only adds the improvement, if it answers that need better.
- Lots already on the shortlist are in S from the start: the needs they answer are already
  covered, and they count towards their industry below.
- Each step adds the candidate with the largest score = (f(S + r) − f(S)) / (1 + balance × the
  number of lots in S of r's industry). Results without an industry form one group of their
  own. Ties go to the smaller result id, so the same input always gives the same proposal.
- It stops after n lots, or earlier when no candidate adds anything.

f is monotone and submodular (a weighted "facility location" function), so with balance 0
the greedy choice reaches at least (1 − 1/e) ≈ 63% of the best possible value (Nemhauser,
Wolsey & Fisher, 1978); with all ranks equal it is plain maximum coverage of needs. The
balance term trades some of that value for spread across industries. Scores only go down as
S grows, so candidates are re-scored lazily (Minoux's accelerated greedy): same answer, far
fewer evaluations.

Pure Python, no Flask: the web layer gathers coverage and industries from the database.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# A result's coverage: need id → rank of the result among that need's matches (1 = best).
NeedRanks = Mapping[int, int]

# Scores are rounded before comparing so that equal gains summed in a different order tie,
# and the tie goes to the smaller id as documented.
_SCORE_DIGITS = 9


def rank_weight(rank: int) -> float:
    """What answering a need at `rank` is worth: 1 at rank 1, decaying like DCG."""
    if rank < 1:
        raise ValueError(f"rank must be ≥ 1, got {rank}")
    return 1.0 / math.log2(1 + rank)


@dataclass(frozen=True)
class ProposedLot:
    """One proposed lot, in the order it was chosen."""

    result_id: int
    new_needs: tuple[int, ...]  # open needs no earlier lot answered, best-answered first
    improved_needs: tuple[int, ...]  # needs already answered, now answered better
    gain: float  # f(S + lot) − f(S): what this lot adds before the balance term
    score: float  # gain after the balance term: what the choice was made on
    industry: str | None


@dataclass(frozen=True)
class Proposal:
    lots: tuple[ProposedLot, ...]
    needs_already_covered: int  # needs answered by the lots already on the list
    needs_covered: int  # needs answered by the list once the proposal is accepted
    needs_available: int  # needs answered by any candidate or existing lot
    industries: tuple[tuple[str | None, int], ...]  # proposed lots per industry, most first
    value: float  # f of the whole list (existing lots and proposed ones)

    @property
    def needs_newly_covered(self) -> int:
        return self.needs_covered - self.needs_already_covered


def coverage_value(needs_of: Mapping[int, NeedRanks], chosen: Iterable[int]) -> float:
    """f(S): each need counted once, at the best rank any chosen result reaches for it."""
    best: dict[int, float] = {}
    for result_id in chosen:
        for need_id, rank in needs_of.get(result_id, {}).items():
            weight = rank_weight(rank)
            if weight > best.get(need_id, 0.0):
                best[need_id] = weight
    return sum(best.values())


def _gain(ranks: NeedRanks, best: Mapping[int, float]) -> float:
    total = 0.0
    for need_id, rank in ranks.items():
        improvement = rank_weight(rank) - best.get(need_id, 0.0)
        if improvement > 0:
            total += improvement
    return total


def propose(
    needs_of: Mapping[int, NeedRanks],
    industry_of: Mapping[int, str | None],
    n: int,
    *,
    exclude: Iterable[int] = (),
    balance: float = 0.5,
) -> Proposal:
    """Up to `n` results, not in `exclude`, that add the most coverage; see the module doc.

    `needs_of` holds every candidate result's coverage (and that of the excluded lots, if
    they answer anything); `industry_of` their industries (missing ids count as None).
    """
    if n < 0:
        raise ValueError(f"n must be ≥ 0, got {n}")
    if balance < 0 or not math.isfinite(balance):
        raise ValueError(f"balance must be a finite number ≥ 0, got {balance}")
    existing = set(exclude)
    best: dict[int, float] = {}
    per_industry: Counter[str | None] = Counter()
    for result_id in sorted(existing):
        per_industry[industry_of.get(result_id)] += 1
        for need_id, rank in needs_of.get(result_id, {}).items():
            best[need_id] = max(best.get(need_id, 0.0), rank_weight(rank))
    already = len(best)
    available = {need for ranks in needs_of.values() for need in ranks}

    def score(result_id: int) -> tuple[float, float]:
        gain = _gain(needs_of[result_id], best)
        penalty = 1 + balance * per_industry[industry_of.get(result_id)]
        return gain, gain / penalty

    # Lazy greedy: the heap holds (−score, id, step the score was computed at). A stale score
    # is an upper bound (gains shrink as coverage grows, penalties grow), so when the top of
    # the heap is fresh it is the true best, ties broken by the smaller id.
    heap: list[tuple[float, int, int]] = []
    for result_id in sorted(needs_of):
        if result_id in existing:
            continue
        _, first = score(result_id)
        heap.append((-round(first, _SCORE_DIGITS), result_id, 0))
    heapq.heapify(heap)

    lots: list[ProposedLot] = []
    step = 0
    while heap and len(lots) < n:
        negative, result_id, computed_at = heapq.heappop(heap)
        if computed_at != step:
            _, fresh = score(result_id)
            heapq.heappush(heap, (-round(fresh, _SCORE_DIGITS), result_id, step))
            continue
        if -negative <= 0:
            break  # the best candidate adds nothing, so none does
        gain, chosen_score = score(result_id)
        ranks = needs_of[result_id]
        ordered = sorted(ranks, key=lambda need: (ranks[need], need))
        new = tuple(need for need in ordered if need not in best)
        improved = tuple(need for need in ordered
                         if need in best and rank_weight(ranks[need]) > best[need])
        industry = industry_of.get(result_id)
        lots.append(ProposedLot(result_id, new, improved, gain, chosen_score, industry))
        for need_id, rank in ranks.items():
            best[need_id] = max(best.get(need_id, 0.0), rank_weight(rank))
        per_industry[industry] += 1
        step += 1

    proposed = Counter(lot.industry for lot in lots)
    industries = tuple(sorted(proposed.items(), key=lambda kv: (-kv[1], kv[0] or "")))
    return Proposal(
        lots=tuple(lots), needs_already_covered=already, needs_covered=len(best),
        needs_available=len(available), industries=industries, value=sum(best.values()),
    )
