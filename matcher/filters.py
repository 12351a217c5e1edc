"""Facet filters, applied inside retrieval so top-k stays full after filtering."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from matcher.types import Item

# Facets that a filter may name; anything else is a caller error, not an empty result.
FILTERABLE = frozenset(
    {
        "industry", "result_type", "maturity", "institution", "region",
        "cooperation_mode", "status", "city", "tier", "sample",
    }
)


@dataclass(frozen=True)
class Filters:
    """Each facet maps to the values allowed (OR within a facet, AND across facets)."""

    facets: Mapping[str, frozenset[str]] = field(default_factory=dict)
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def of(cls, date_from: date | str | None = None, date_to: date | str | None = None,
           **facets: str | Iterable[str] | None) -> Filters:
        clean: dict[str, frozenset[str]] = {}
        for name, value in facets.items():
            if name not in FILTERABLE:
                raise ValueError(f"unknown filter {name!r}; known: {', '.join(sorted(FILTERABLE))}")
            if value is None or value == "" or value == []:
                continue
            values = frozenset([value] if isinstance(value, str) else value)
            clean[name] = frozenset(v for v in values if v)
        return cls(clean, _as_date(date_from, "date_from"), _as_date(date_to, "date_to"))

    def __bool__(self) -> bool:
        return bool(self.facets) or self.date_from is not None or self.date_to is not None

    def allows(self, item: Item) -> bool:
        for name, values in self.facets.items():
            if values.isdisjoint(facet_values(item, name)):
                return False
        if self.date_from or self.date_to:
            raw = item.facets.get("date")
            if not raw:
                return False
            when = date.fromisoformat(raw[:10])
            if self.date_from and when < self.date_from:
                return False
            if self.date_to and when > self.date_to:
                return False
        return True


def facet_values(item: Item, name: str) -> set[str]:
    """A facet's values; multi-valued facets (a result's transfer modes) are joined by ';'."""
    raw = item.facets.get(name)
    return {v for v in raw.split(";") if v} if raw else set()


def _as_date(value: date | str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2025-01-31, got {value!r}") from None
