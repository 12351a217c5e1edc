"""Typed values passed between the engine's parts and its callers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

Side = Literal["need", "result"]
SIDES: tuple[Side, Side] = ("need", "result")


@dataclass(frozen=True)
class Item:
    """One matchable text: a firm need or a research result, as the engine sees it.

    `id` is the database id (an int, FAISS keys on it). `facets` holds the filterable
    fields: industry, result_type, maturity, institution, date (ISO yyyy-mm-dd), status...
    """

    id: int
    side: Side
    title: str
    text: str
    facets: dict[str, str] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()

    @property
    def full_text(self) -> str:
        """What gets embedded and indexed: title, body and keywords."""
        parts = [self.title.strip(), self.text.strip()]
        if self.keywords:
            parts.append("关键词:" + ";".join(self.keywords))
        return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class SharedTerm:
    term: str
    weight: float  # idf-style weight: rarer shared terms explain more


@dataclass(frozen=True)
class FacetClash:
    """A term on which a need and a result disagree (`matcher.explain.clashed_facets`):
    `facet` is cooperation_mode (`wanted` the need's modes, `offered` the result's, each
    ";"-joined) or budget (`wanted` the need's ceiling, `offered` the asking price, 万元)."""

    facet: str
    wanted: str
    offered: str


@dataclass(frozen=True)
class Strength:
    """How likely a match is to answer its query, as the judged set calibrates it
    (`matcher.strength`): a probability and the label users read (强 / 较强 / 一般 / 弱)."""

    label: str
    probability: float


@dataclass(frozen=True)
class Explanation:
    """Why a match ranks where it does. `dense_rank` and `lexical_rank` place its dense and
    lexical scores among those of the matches returned with it (1 = highest); None where
    that ranker did not run."""

    dense_score: float
    lexical_score: float
    shared_terms: tuple[SharedTerm, ...] = ()
    facets_agreed: tuple[str, ...] = ()
    dense_rank: int | None = None
    lexical_rank: int | None = None
    # None where the calibration does not apply (dense-only or lexical-only ranking).
    strength: Strength | None = None
    facets_clashed: tuple[FacetClash, ...] = ()


@dataclass(frozen=True)
class Match:
    id: int
    score: float
    explanation: Explanation | None = None


class ItemSource(Protocol):
    """Where index sync reads what is matchable: the open needs and active results, each
    with the hash of exactly what gets embedded (`Item.full_text`). The database implements
    it (`corpora.items.DatabaseItems`); `matcher.sources.MemoryItems` is the in-memory one the
    engine's own tests use. With `ids`, only those (unknown or unmatchable ids are absent)."""

    def content_hashes(self, side: Side, ids: Iterable[int] | None = None) -> dict[int, str]:
        ...

    def load_items(self, side: Side, ids: Iterable[int] | None = None) -> list[Item]:
        ...
