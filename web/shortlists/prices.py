"""Price checks: a lot's reserve price against its result's asking price and against the
budgets of the open needs it answers, so an officer sees a price that will not sell (or sells
the result short) before the auction, with the figures side by side.

"Far" is a plain factor of the needs' budgets, named below: a reserve more than twice the
highest budget ceiling of the needs it answers is one no firm asking for it has planned for;
one under half the lowest budget floor leaves money on the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corpora.models import Need
from web.templating import budget, money

FAR_ABOVE = 2.0  # price > FAR_ABOVE × the highest budget ceiling: far above
FAR_BELOW = 0.5  # price < FAR_BELOW × the lowest budget floor: far below


@dataclass(frozen=True)
class PriceCheck:
    """The warnings for one price (empty: nothing to say) and the figures they compare."""

    warnings: list[str]
    comparison: str


def _budgets(needs: Sequence[Need]) -> tuple[float | None, float | None]:
    """The lowest floor and the highest ceiling among the needs that state them."""
    floors = [need.budget_min for need in needs if need.budget_min is not None]
    ceilings = [need.budget_max for need in needs if need.budget_max is not None]
    return (min(floors) if floors else None), (max(ceilings) if ceilings else None)


def _against_budgets(price: float, label: str, needs: Sequence[Need]) -> list[str]:
    floor, ceiling = _budgets(needs)
    warnings = []
    if ceiling is not None and price > FAR_ABOVE * ceiling:
        warnings.append(f"{label}远高于对应需求的预算（超过最高预算上限的 {FAR_ABOVE:g} 倍）")
    if floor is not None and price < FAR_BELOW * floor:
        warnings.append(f"{label}远低于对应需求的预算（不到最低预算下限的 {FAR_BELOW:g}）")
    return warnings


def _comparison(parts: list[str], needs: Sequence[Need]) -> str:
    floor, ceiling = _budgets(needs)
    if floor is not None or ceiling is not None:
        parts.append(f"对应需求预算 {budget(floor, ceiling)}")
    return " · ".join(parts)


def check_lot(reserve: float | None, asking: float | None, needs: Sequence[Need]
              ) -> PriceCheck:
    """A lot's reserve against its result's asking price and its answered needs' budgets."""
    if reserve is None:
        return PriceCheck([], "")
    warnings = []
    if asking is not None and reserve > asking:
        warnings.append("保留价高于成果报价")
    warnings += _against_budgets(reserve, "保留价", needs)
    parts = [f"保留价 {money(reserve)}"]
    if asking is not None:
        parts.append(f"成果报价 {money(asking)}")
    return PriceCheck(warnings, _comparison(parts, needs))


def check_proposed(asking: float | None, needs: Sequence[Need]) -> PriceCheck:
    """A proposed result has no reserve yet: its asking price, which the reserve is usually
    set from, against the budgets of the needs it would answer."""
    if asking is None:
        return PriceCheck([], "")
    return PriceCheck(_against_budgets(asking, "成果报价", needs),
                      _comparison([f"成果报价 {money(asking)}"], needs))
