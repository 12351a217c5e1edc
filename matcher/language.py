"""Which script a text is written in, and the correction that lets a need find results
written in another language.

A multilingual encoder (e5) places texts of one language closer to each other than to texts
of another, whatever they say: a Chinese need's cosine with every Chinese result carries a
share that is only "both are Chinese". Across a collection that share is the query's cosine
with the language's mean vector, so subtracting each language's mean (centring by language,
as in Libovický et al. 2020, "On the language neutrality of pre-trained multilingual
representations") leaves what the texts say. Measured on datasets/eval/cross-lingual (dense,
R@10): English needs → Chinese results 0.467 → 1.000, Chinese needs → English results
0.000 → 1.000; with the 30 English results added to need-results as distractors, its Chinese
needs' nDCG@10 stays 0.620 → 0.618 while its English needs' rises 0.052 → 0.326.

The correction is relative to the collection's largest language: its documents keep their
cosine exactly (so a one-language collection ranks, fuses and rates as without it), and a
document of another language `l` moves by q·(μ_major − μ_l). Each document's own vector is
left out of its language's mean (leave-one-out), or a small group's mean would be mostly the
document itself and cancel its own match; a language with fewer than `MIN_GROUP` documents
is not corrected at all, as so few do not estimate a language's direction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")
# A Chinese abstract with English terms (PID, CO2, MOSFET) is still Chinese: a Han character
# carries about as much as a short Latin word, so Latin letters count a quarter each.
LATIN_LETTER_WEIGHT = 0.25
MIN_GROUP = 10


def language_of(text: str) -> str:
    """'han' (Chinese), 'latin' (English and other Latin-script text) or 'other'."""
    han = len(HAN.findall(text))
    latin = len(LATIN.findall(text)) * LATIN_LETTER_WEIGHT
    if not han and not latin:
        return "other"
    return "han" if han >= latin else "latin"


class LanguageCentres:
    """Per language, the sum and count of the collection's item vectors (first windows),
    kept up to date as items are added and removed."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.language: dict[int, str] = {}

    def add(self, ids: Sequence[int], languages: Sequence[str], vectors: np.ndarray) -> None:
        for item_id, language, vector in zip(ids, languages, vectors, strict=True):
            if item_id in self.language:
                raise ValueError(f"item {item_id} is counted already; remove it first")
            self.language[item_id] = language
            total = self.sums.setdefault(language, np.zeros(self.dimension, dtype=np.float64))
            total += vector
            self.counts[language] = self.counts.get(language, 0) + 1

    def remove(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        for item_id, vector in zip(ids, vectors, strict=True):
            language = self.language.pop(item_id, None)
            if language is None:
                continue
            self.sums[language] -= vector
            self.counts[language] -= 1
            if not self.counts[language]:
                del self.sums[language], self.counts[language]

    def major(self) -> str | None:
        if not self.counts:
            return None
        return max(self.counts, key=lambda lang: (self.counts[lang], lang))

    def corrected(self) -> list[str]:
        """The languages whose documents move: every one but the largest, if big enough."""
        major = self.major()
        return sorted(lang for lang, n in self.counts.items()
                      if lang != major and n >= MIN_GROUP)

    def ids_of(self, language: str) -> np.ndarray:
        return np.fromiter((i for i, lang in self.language.items() if lang == language),
                           dtype=np.int64)

    def shifts(self, ids: Iterable[int], own_scores: np.ndarray, query: np.ndarray
               ) -> np.ndarray:
        """What to add to each id's cosine: q·(μ_major − μ_l), μ_l without the item itself
        (`own_scores` are the items' own first-window cosines with the query); 0 for the
        largest language and for groups too small to correct."""
        ids = list(ids)
        shift = np.zeros(len(ids), dtype=np.float32)
        corrected = self.corrected()
        if not corrected:
            return shift
        major = self.major()
        assert major is not None
        query = query.astype(np.float64)
        major_mean = float(self.sums[major] @ query) / self.counts[major]
        for language in corrected:
            total, n = float(self.sums[language] @ query), self.counts[language]
            for position, item_id in enumerate(ids):
                if self.language.get(item_id) == language:
                    own_mean = (total - float(own_scores[position])) / (n - 1)
                    shift[position] = major_mean - own_mean
        return shift
