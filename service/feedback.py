"""A need's matches with its firm's marks applied.

A 不相关 mark takes that result out of the need's list (the page shows it collapsed, with an
undo); 相关 marks move the need's query vector toward the marked results' vectors before the
search (Rocchio: q' = normalise(q + β · mean of the marked vectors)), so results like the
ones the firm found relevant rise. Results marked 相关 stay in the list: they are still
answers. The lexical half of the ranking is untouched; only the dense query moves.

The marked results' vectors are read from the index (each result's first window, the one
holding its title), so feedback encodes nothing. β was chosen on the judged need-results set
by simulating marks on today's top 5 (`scripts/measure_feedback.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from corpora.models import MatchFeedback, Need
from matcher.filters import Filters
from matcher.retriever import Matcher
from matcher.types import Match, Side
from service.matching import MatchService

# How far 相关 marks pull the query. On need-results with simulated marks (the module
# docstring) the residual nDCG@10 went 0.643 → 0.722 at 0.2, the best of 0–2 (0.3–1.0: 0.70–
# 0.72; 2.0: 0.68), and P@5 0.236 → 0.273.
BETA = 0.2

Adjust = Callable[[Matcher, np.ndarray], np.ndarray]


def rocchio(query: np.ndarray, marked: np.ndarray, beta: float) -> np.ndarray:
    """normalise(q + β · mean(marked)); the query as it is with no marked vector or β = 0."""
    if beta == 0 or len(marked) == 0:
        return query
    moved = np.asarray(query, dtype=np.float32) + beta * np.asarray(marked).mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return (moved / norm if norm > 0 else query).astype(np.float32)


def toward(result_ids: Iterable[int], beta: float = BETA, side: Side = "result") -> Adjust:
    """An `adjust` for `MatchService.match_row`: moves the query toward these items' vectors
    as the engine holds them (ids no longer indexed, a withdrawn result, are skipped)."""
    wanted = sorted(set(result_ids))

    def adjust(matcher: Matcher, query: np.ndarray) -> np.ndarray:
        collection = matcher.collections[side]
        ids = [i for i in wanted if i in collection.items]
        if not ids or matcher.encoder is None:
            return query
        return rocchio(query, collection.vectors.vectors(np.array(ids, dtype=np.int64)), beta)

    return adjust


@dataclass(frozen=True)
class MarkedMatches:
    """A need's matches with its marks applied."""

    matches: list[Match]  # best first; no result marked 不相关
    hidden: list[MatchFeedback]  # the 不相关 marks, newest first (each with its result)
    marks: dict[int, MatchFeedback]  # result id → mark, every mark on the need


def marks_of(session: Session, need: Need) -> dict[int, MatchFeedback]:
    marks = session.scalars(
        select(MatchFeedback).options(selectinload(MatchFeedback.result))
        .where(MatchFeedback.need_id == need.id)
        .order_by(MatchFeedback.updated_at.desc(), MatchFeedback.id.desc()))
    return {mark.result_id: mark for mark in marks}


def apply_marks(matches: Sequence[Match], hidden_ids: set[int], k: int) -> list[Match]:
    return [m for m in matches if m.id not in hidden_ids][:k]


def marked_matches(svc: MatchService, session: Session, need: Need, *, k: int = 20,
                   filters: Filters | None = None, beta: float = BETA) -> MarkedMatches:
    marks = marks_of(session, need)
    hidden = [mark for mark in marks.values() if not mark.relevant]
    hidden_ids = {mark.result_id for mark in hidden}
    liked = [mark.result_id for mark in marks.values() if mark.relevant]
    # Asking for as many more as are hidden keeps the list k long once they are left out.
    matches = svc.match_row(need, "result", k=k + len(hidden_ids), filters=filters,
                            adjust=toward(liked, beta) if liked else None)
    return MarkedMatches(apply_marks(matches, hidden_ids, k), hidden, marks)
