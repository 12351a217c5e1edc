"""Matches as pages and the API show them: the rows, the scores, and why each ranks there."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from corpora.models import Need, Result
from corpora.sides import is_matchable, model_for
from matcher.filters import Filters
from matcher.strength import STRONG_LABELS
from matcher.types import Match, Side, Strength
from web.explanations import clash_text, engineer_detail, sentence

# Request parameters that become engine filters, per target side.
FILTER_PARAMS: dict[Side, tuple[str, ...]] = {
    "result": ("industry", "result_type", "maturity", "institution", "cooperation_mode"),
    "need": ("industry", "cooperation_mode", "city", "institution"),
}


# Each label's CSS class (strength-strong ...): ASCII names for the stylesheet.
STRENGTH_CLASSES = {"强": "strong", "较强": "good", "一般": "fair", "弱": "weak"}


class BadFilter(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def filters_from(args: Mapping[str, Any], target: Side) -> Filters:
    facets: dict[str, list[str]] = {}
    for name in FILTER_PARAMS[target]:
        raw = args.getlist(name) if hasattr(args, "getlist") else args.get(name)
        values = [raw] if isinstance(raw, str) else list(raw or [])
        cleaned = [v.strip() for v in values if isinstance(v, str) and v.strip()]
        if any(len(v) > 200 for v in cleaned):
            raise BadFilter(name, "筛选值过长")
        if cleaned:
            facets[name] = cleaned
    for name in ("date_from", "date_to"):
        value = args.get(name)
        if value is not None and not isinstance(value, str):
            raise BadFilter(name, "日期须为 YYYY-MM-DD")
    try:
        filters = Filters.of(date_from=args.get("date_from") or None,
                             date_to=args.get("date_to") or None, **facets)
    except ValueError as error:
        field = "date_from" if "date_from" in str(error) else "date_to"
        raise BadFilter(field, "日期须为 YYYY-MM-DD，例如 2025-01-31") from None
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise BadFilter("date_from", "起始日期晚于结束日期")
    return filters


@dataclass(frozen=True)
class MatchRow:
    rank: int
    match: Match
    row: Need | Result
    terms: tuple[str, ...]

    @property
    def why(self) -> str:
        """The one plain sentence a firm reads (`web.explanations.sentence`): strength,
        shared terms, the terms that agree and those that clash."""
        exp = self.match.explanation
        return "" if exp is None else sentence(exp, self.terms)

    @property
    def detail(self) -> list[str]:
        """The engineer's figures behind the rank, shown behind 技术细节."""
        exp = self.match.explanation
        return [] if exp is None else engineer_detail(exp, self.rank, self.match.score)

    @property
    def strength(self) -> Strength | None:
        """How likely this match answers the query (`matcher.strength`); None outside hybrid
        ranking or without an explanation."""
        exp = self.match.explanation
        return None if exp is None else exp.strength

    @property
    def strength_class(self) -> str:
        strength = self.strength
        return "" if strength is None else STRENGTH_CLASSES[strength.label]

    def as_json(self) -> dict[str, Any]:
        exp = self.match.explanation
        strength = self.strength

        def number(value: float) -> float | None:
            return None if value is None or math.isnan(value) else round(float(value), 4)

        return {
            "id": self.row.id, "rank": self.rank, "score": round(self.match.score, 4),
            "title": self.row.title, "organisation": self.row.organisation.name,
            "strength": None if strength is None else {
                "label": strength.label, "probability": strength.probability},
            "explanation": None if exp is None else {
                "dense_score": number(exp.dense_score),
                "lexical_score": number(exp.lexical_score),
                "dense_rank": exp.dense_rank, "lexical_rank": exp.lexical_rank,
                "shared_terms": list(self.terms),
                "facets_agreed": list(exp.facets_agreed),
                "why": self.why,
                "facets_clashed": [
                    {"facet": c.facet, "wanted": c.wanted, "offered": c.offered,
                     "text": clash_text(c)} for c in exp.facets_clashed],
                "detail": self.detail,
            },
        }


def load_rows(session: Session, side: Side, ids: Sequence[int], *,
              matchable_only: bool = False) -> dict[int, Need | Result]:
    """These rows with their organisations; with `matchable_only`, only open needs and
    active results."""
    model = model_for(side)
    if not ids:
        return {}
    statement = (select(model).options(selectinload(model.organisation))
                 .where(model.id.in_(list(ids))))
    if matchable_only:
        statement = statement.where(is_matchable(model))
    rows = session.scalars(statement)
    return {row.id: row for row in rows}


def match_rows(session: Session, side: Side, matches: Sequence[Match]) -> list[MatchRow]:
    """Join matches with their rows, dropping any deleted, closed or withdrawn since it was
    indexed: the database has the last word, even before this worker's indexes catch up."""
    rows = load_rows(session, side, [m.id for m in matches], matchable_only=True)
    kept = [m for m in matches if m.id in rows]
    return [
        MatchRow(rank, m, rows[m.id],
                 tuple(t.term for t in m.explanation.shared_terms) if m.explanation else ())
        for rank, m in enumerate(kept, start=1)
    ]


def fold_weak(rows: Sequence[MatchRow]) -> tuple[list[MatchRow], list[MatchRow]]:
    """The matches a list shows and the ones it folds away by default: those rated 弱, which
    the judged set says rarely answer the query. Unrated matches (a ranking the calibration
    does not cover) are shown, as they claim nothing either way. Ranks stay as ranked."""
    shown = [r for r in rows if r.strength is None or r.strength.label != "弱"]
    folded = [r for r in rows if r.strength is not None and r.strength.label == "弱"]
    return shown, folded


def none_strong(rows: Sequence[MatchRow]) -> bool:
    """Whether these matches are rated and none is 强 or 较强: then the page says so plainly
    rather than let the best of weak matches pass for an answer. (Unrated matches, from a
    ranking the calibration does not cover, claim nothing either way.)"""
    rated = [r.strength for r in rows if r.strength is not None]
    return bool(rated) and not any(s.label in STRONG_LABELS for s in rated)
