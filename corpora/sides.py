"""The two sides (needs, results): which model holds each, and what of it is matchable."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from corpora.models import Need, Result
from matcher.types import Side

# The one definition of "matchable": open needs and active results. Everything else (a closed
# need, a withdrawn result) is left out of indexes, match lists, coverage and proposals.
MATCHABLE_STATUS: dict[Side, str] = {"need": "open", "result": "active"}


def model_for(side: Side) -> type[Need] | type[Result]:
    if side == "need":
        return Need
    if side == "result":
        return Result
    raise ValueError(f"unknown side {side!r}: expected 'need' or 'result'")


def side_of(row: Need | Result) -> Side:
    return "need" if isinstance(row, Need) else "result"


def is_matchable(model: type[Need] | type[Result]) -> ColumnElement[bool]:
    """The SQL condition for a matchable row of `model`."""
    return model.status == MATCHABLE_STATUS["need" if model is Need else "result"]
