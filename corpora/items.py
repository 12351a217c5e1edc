"""Rows → `matcher.types.Item`: what the engine indexes, and the hash that says when to re-index.

Facets (only non-empty ones are present; multi-valued ones are joined by ";"):

- both sides: `industry`, `institution` (the owning organisation's name: the firm for a need,
  the university or institute for a result), `city` (that organisation's G60 city), `region`,
  `cooperation_mode`, `date` (ISO yyyy-mm-dd), `status`, `sample` ("1" for demo data)
- needs: `region` is the need's own region, `cooperation_mode` the mode the firm wants,
  `date` the deadline, `tier` the firm's tier (高新技术企业 ...), `budget_max` the budget's
  ceiling (万元, a plain number: 50, 12.5)
- results: `region` is the institution's city, `cooperation_mode` the transfer modes offered,
  `date` the publication date, plus `result_type`, `maturity` and `asking_price` (万元)

Facets are not part of `Item.full_text`, so adding one changes no `content_hash` and
re-encodes nothing.

Only open needs and active results are matchable (`corpora.sides.is_matchable`, the one
definition); `load_items` and `content_hashes` return just those unless `matchable_only=False`.
`DatabaseItems` is the database's implementation of the engine's `ItemSource`: index sync reads
through it and never sees SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from corpora.db import in_chunks
from corpora.models import LIST_SEPARATOR, Need, Result
from corpora.sides import is_matchable, model_for
from matcher.types import Item, Side


def _facets(pairs: Iterable[tuple[str, object]]) -> dict[str, str]:
    facets: dict[str, str] = {}
    for name, value in pairs:
        if value is None:
            continue
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        if text.strip():
            facets[name] = text
    return facets


def _amount(value: float | None) -> str | None:
    """万元 as a plain number (50, not 50.0): the explanation shows it as written."""
    if value is None:
        return None
    return f"{value:.6f}".rstrip("0").rstrip(".")


def need_to_item(need: Need) -> Item:
    organisation = need.organisation
    facets = _facets(
        [
            ("industry", need.industry),
            ("institution", organisation.name),
            ("city", organisation.city),
            ("tier", organisation.tier),
            ("region", need.region),
            ("cooperation_mode", need.cooperation_mode),
            ("date", need.deadline),
            ("budget_max", _amount(need.budget_max)),
            ("status", need.status),
            ("sample", "1" if organisation.is_sample else None),
        ]
    )
    return Item(id=need.id, side="need", title=need.title, text=need.description, facets=facets)


def result_to_item(result: Result) -> Item:
    organisation = result.organisation
    facets = _facets(
        [
            ("industry", result.industry),
            ("result_type", result.result_type),
            ("maturity", result.maturity),
            ("institution", organisation.name),
            ("city", organisation.city),
            ("region", organisation.city),
            ("cooperation_mode", LIST_SEPARATOR.join(result.transfer_mode_list) or None),
            ("date", result.published_on),
            ("asking_price", _amount(result.asking_price)),
            ("status", result.status),
            ("sample", "1" if organisation.is_sample else None),
        ]
    )
    return Item(
        id=result.id,
        side="result",
        title=result.title,
        text=result.abstract,
        facets=facets,
        keywords=tuple(result.keyword_list),
    )


def to_item(row: Need | Result) -> Item:
    """The engine's view of a row; its `full_text` hashes to the row's `content_hash`."""
    return need_to_item(row) if isinstance(row, Need) else result_to_item(row)


def load_items(
    session: Session,
    side: Side,
    ids: Iterable[int] | None = None,
    *,
    matchable_only: bool = True,
) -> list[Item]:
    """Items for `side`, ordered by id; only `ids` when given (unknown ids are skipped).

    With `matchable_only` (the default) closed needs and withdrawn results are left out, so an
    id passed in that is no longer matchable is simply absent from the answer.
    """
    model = model_for(side)
    base = select(model).options(selectinload(model.organisation)).order_by(model.id)
    if matchable_only:
        base = base.where(is_matchable(model))
    if ids is None:
        rows = list(session.scalars(base))
    else:
        wanted = sorted(set(ids))
        rows = []
        for chunk in in_chunks(wanted):
            rows.extend(session.scalars(base.where(model.id.in_(chunk))))
        rows.sort(key=lambda row: row.id)
    return [to_item(row) for row in rows]


def content_hashes(
    session: Session,
    side: Side,
    ids: Iterable[int] | None = None,
    *,
    matchable_only: bool = True,
) -> dict[int, str]:
    """id → content_hash for every (matchable) row of `side`, or only for `ids` when given:
    compare with an index's hashes to sync."""
    model = model_for(side)
    statement = select(model.id, model.content_hash)
    if matchable_only:
        statement = statement.where(is_matchable(model))
    if ids is None:
        return {row_id: digest for row_id, digest in session.execute(statement)}
    hashes: dict[int, str] = {}
    for chunk in in_chunks(sorted(set(ids))):
        rows = session.execute(statement.where(model.id.in_(chunk)))
        hashes.update((row_id, digest) for row_id, digest in rows)
    return hashes


class DatabaseItems:
    """The engine's `ItemSource` over one database session: what index sync reads."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def content_hashes(self, side: Side, ids: Iterable[int] | None = None) -> dict[int, str]:
        return content_hashes(self.session, side, ids)

    def load_items(self, side: Side, ids: Iterable[int] | None = None) -> list[Item]:
        return load_items(self.session, side, ids)
