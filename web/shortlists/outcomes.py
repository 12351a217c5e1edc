"""What the auction made of each lot: recording 成交 / 流拍 (or clearing it), and the
shortlist's tally. The caller commits, so the change and its audit entry are one transaction;
the page and the API call the same `set_outcome`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from corpora.models import ShortlistLot, User, utcnow
from service.audit import record
from web.shortlists.forms import OUTCOMES

FIELDS = ("outcome", "sold_price", "buyer")


def set_outcome(db: Session, user: User, lot: ShortlistLot, clean: Mapping[str, Any]
                ) -> dict[str, list[Any]]:
    """Write `clean` (from `forms.parse_outcome`) to the lot, with who and when, and audit it.
    Returns the changes (empty: the lot already said so, and nothing is written)."""
    changes = {name: [getattr(lot, name), clean[name]] for name in FIELDS
               if getattr(lot, name) != clean[name]}
    if not changes:
        return changes
    for name, (_, value) in changes.items():
        setattr(lot, name, value)
    recorded = clean["outcome"] is not None
    lot.outcome_at = utcnow() if recorded else None
    lot.outcome_by_id = user.id if recorded else None
    record(db, user, "clear_outcome" if not recorded else "record_outcome", "shortlist",
           lot.shortlist_id, {"result_id": lot.result_id, "title": lot.result.title,
                              **{name: clean[name] for name in FIELDS}, "changes": changes})
    lot.shortlist.updated_at = utcnow()
    return changes


def outcome_label(outcome: str | None) -> str:
    return OUTCOMES.get(outcome or "", "未记录")


@dataclass(frozen=True)
class Tally:
    sold: int
    unsold: int
    total: float  # 万元, over the sold lots
    ratio: float | None  # Σ成交价 / Σ保留价 over the sold lots that have a reserve above 0
    with_reserve: int  # how many sold lots that ratio is over

    @property
    def recorded(self) -> int:
        return self.sold + self.unsold


def tally(lots: Iterable[ShortlistLot]) -> Tally:
    lots = list(lots)
    sold = [lot for lot in lots if lot.outcome == "sold"]
    unsold = sum(1 for lot in lots if lot.outcome == "unsold")
    reserved = [lot for lot in sold if lot.reserve_price and lot.sold_price is not None]
    reserve_total = sum(lot.reserve_price or 0.0 for lot in reserved)
    ratio = (sum(lot.sold_price or 0.0 for lot in reserved) / reserve_total
             if reserved else None)
    return Tally(len(sold), unsold, sum(lot.sold_price or 0.0 for lot in sold), ratio,
                 len(reserved))
