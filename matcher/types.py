"""Typed values passed between the engine's parts and its callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
class Explanation:
    dense_score: float
    lexical_score: float
    shared_terms: tuple[SharedTerm, ...] = ()
    facets_agreed: tuple[str, ...] = ()
    dense_rank: int | None = None
    lexical_rank: int | None = None


@dataclass(frozen=True)
class Match:
    id: int
    score: float
    explanation: Explanation | None = None
