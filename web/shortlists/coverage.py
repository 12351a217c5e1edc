"""Which open needs a result answers, from the matching engine's coverage (a result in a
need's top K, rated 较强 or better: `service.matching.COVERAGE_MIN_LABEL`): for the lots of a
shortlist, its exports and the proposal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from corpora.db import in_chunks
from corpora.models import Need, Shortlist, ShortlistLot
from corpora.sides import is_matchable
from matcher.types import Strength
from web.matching import service
from web.shortlists.lots import ordered_lots


def chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    """Distinct ids in order, a database IN clause's worth at a time (`corpora.db.in_chunks`)."""
    return (list(chunk) for chunk in in_chunks(sorted(set(ids))))


def open_needs(db: Session, ids: Iterable[int]) -> dict[int, Need]:
    needs: dict[int, Need] = {}
    for chunk in chunks(ids):
        needs.update((n.id, n) for n in db.scalars(
            select(Need).where(Need.id.in_(chunk), is_matchable(Need))))
    return needs


class Answer(NamedTuple):
    """An open need a result answers well: its place among the need's matches and the
    pair's strength."""

    need: Need
    rank: int
    strength: Strength | None


def needs_answered(db: Session, result_ids: Iterable[int]) -> dict[int, list[Answer]]:
    """For each result, the open needs it answers well (in their top K, 较强 or better),
    best rank first."""
    ids = list(result_ids)
    coverage = service().coverage()
    needs_of = coverage.needs_of
    needs = open_needs(db, (need for rid in ids for need in needs_of.get(rid, {})))
    answered = {}
    for rid in ids:
        ranks = needs_of.get(rid, {})
        answered[rid] = sorted(
            (Answer(needs[nid], rank, coverage.strength(rid, nid))
             for nid, rank in ranks.items() if nid in needs),
            key=lambda answer: (answer.rank, answer.need.id))
    return answered


@dataclass(frozen=True)
class LotRow:
    lot: ShortlistLot
    needs: list[Answer]


def lot_rows(db: Session, shortlist: Shortlist) -> list[LotRow]:
    lots = ordered_lots(shortlist)
    answered = needs_answered(db, [lot.result_id for lot in lots])
    return [LotRow(lot, answered.get(lot.result_id, [])) for lot in lots]
