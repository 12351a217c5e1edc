"""One side's indexes: its items, their vectors (first windows and later windows) and BM25.

A document longer than the model's window is stored as one vector per window: its first window
in `vectors` (keyed by the item id) and the rest in `windows` (keyed by `window_id`), and it
scores by its best window. (A mean of many windows sits near the centre of the corpus and
would match every query.) With Milvus, the facets are stored beside the vectors so filters run
inside the search, and BM25 may be Milvus's full-text search (`full_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from matcher.filters import Filters
from matcher.language import LanguageCentres, language_of
from matcher.lexical import LexicalIndex, LexicalScores
from matcher.lexical_milvus import FullTextScores, MilvusFullText
from matcher.types import Item, Side
from matcher.vector_index import VectorIndex
from matcher.vector_milvus import MilvusIndex, facet_document

# Window w (1, 2, ...) of item i is stored under id i * WINDOW_SLOTS + w. Database ids stay
# below 2**31, so these ids fit int64 with room to spare.
WINDOW_SLOTS = 1 << 12

# A long document's later windows score this much below their cosine. Passages deep in a
# patent's description are often generic (所述…实施例…), their best one sits near every query,
# and taking the best of many windows lifted such documents into most firms' top 10.
LATER_WINDOW_DISCOUNT = 0.02



def window_id(item_id: int, window: int) -> int:
    return item_id * WINDOW_SLOTS + window


def window_owner(ids: np.ndarray) -> np.ndarray:
    return ids // WINDOW_SLOTS


def fold_windows(windows: np.ndarray) -> np.ndarray:
    """At most WINDOW_SLOTS windows: any beyond are averaged into the last slot."""
    if len(windows) <= WINDOW_SLOTS:
        return windows
    tail = windows[WINDOW_SLOTS - 1:].mean(axis=0)
    tail /= max(float(np.linalg.norm(tail)), 1e-12)
    return np.vstack([windows[:WINDOW_SLOTS - 1], tail[None, :]]).astype(np.float32)


@dataclass
class Collection:
    side: Side
    vectors: VectorIndex
    windows: VectorIndex
    lexical: LexicalIndex = field(default_factory=LexicalIndex)
    # With Milvus: the texts searched by Milvus's BM25 (`matcher.lexical_milvus`); `lexical`
    # still cuts them and holds the side's word statistics.
    full_text: MilvusFullText | None = None
    items: dict[int, Item] = field(default_factory=dict)
    # item id -> how many windows it has beyond the first (only items with any)
    extra_windows: dict[int, int] = field(default_factory=dict)
    # Per-language mean vectors (`matcher.language`), built on first use and then kept up to
    # date by `index_items`/`remove_items`; None until a search needs them.
    centres: LanguageCentres | None = None

    def count(self) -> int:
        return len(self.items)

    def filters_inside(self) -> bool:
        """Do both vector indexes keep the facets, so that filters run inside their search
        (Milvus)? Otherwise filters reach them as a list of allowed ids."""
        return all(isinstance(index, MilvusIndex) for index in (self.vectors, self.windows))

    def set_facets(self, items: Sequence[Item]) -> None:
        """Facet-only edits: write the new facets beside the stored vectors (and windows)."""
        self.write_full_text(items)
        if not items or not self.filters_inside():
            return
        ids = np.array([i.id for i in items], dtype=np.int64)
        self.vectors.set_facets(ids, [facet_document(i.facets) for i in items])  # type: ignore[attr-defined]
        window_ids: list[int] = []
        window_facets: list[dict[str, object]] = []
        for item in items:
            for w in range(1, self.extra_windows.get(item.id, 0) + 1):
                window_ids.append(window_id(item.id, w))
                window_facets.append(facet_document(item.facets))
        if window_ids:
            self.windows.set_facets(  # type: ignore[attr-defined]
                np.array(window_ids, dtype=np.int64), window_facets)

    def write_full_text(self, items: Sequence[Item]) -> None:
        if items and self.full_text is not None:
            self.full_text.upsert(items, self.lexical)

    def lexical_scores(self, text: str, words: Sequence[str], query_side: LexicalIndex,
                       filters: Filters | None) -> LexicalScores | FullTextScores:
        """One query's BM25 scores: from Milvus's full-text search where the side has one,
        else from the in-process index. Both weigh the words by the query's side."""
        if self.full_text is None:
            return self.lexical.score(text, query_side=query_side, words=words)
        return self.full_text.scores(words, [query_side.query_weight(w) for w in words],
                                     filters, self.items)

    def reload_window_counts(self) -> None:
        """Rebuild `extra_windows` from the windows index (after loading it from disk)."""
        owners = window_owner(self.windows.ids())
        unique, counts = np.unique(owners, return_counts=True)
        self.extra_windows = {int(i): int(c) for i, c in zip(unique, counts, strict=True)}

    def _window_ids(self, item_ids: Iterable[int]) -> np.ndarray:
        return np.array([window_id(i, w) for i in item_ids
                         for w in range(1, self.extra_windows.get(i, 0) + 1)], dtype=np.int64)

    def drop_windows(self, item_ids: Iterable[int]) -> None:
        item_ids = [i for i in item_ids if i in self.extra_windows]
        if item_ids:
            self.windows.remove(self._window_ids(item_ids))
            for i in item_ids:
                del self.extra_windows[i]

    def language_centres(self) -> LanguageCentres:
        if self.centres is None:
            centres = LanguageCentres(self.vectors.dimension)
            ids = np.fromiter(self.items, dtype=np.int64)
            if len(ids) and self.vectors.count():
                centres.add(ids.tolist(), [language_of(self.items[i].full_text) for i in ids],
                            self.vectors.vectors(ids))
            self.centres = centres
        return self.centres

    def dense_scores(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Each item's best window's cosine with the query; an item in a language other than
        the collection's main one has it corrected for the language (`matcher.language`)."""
        scores = self.vectors.vectors(ids) @ query
        shift = self.language_centres().shifts(ids.tolist(), scores, query)
        long_items = [n for n, i in enumerate(ids.tolist()) if i in self.extra_windows]
        if long_items:
            extra = self._window_ids(int(ids[n]) for n in long_items)
            extra_scores = self.windows.vectors(extra) @ query - LATER_WINDOW_DISCOUNT
            owners = window_owner(extra)
            best: dict[int, float] = {}
            for owner, score in zip(owners.tolist(), extra_scores.tolist(), strict=True):
                best[owner] = max(best.get(owner, -np.inf), score)
            for n in long_items:
                scores[n] = max(float(scores[n]), best[int(ids[n])])
        return scores + shift

    def dense_search(self, query_vectors: np.ndarray, depth: int,
                     allowed: np.ndarray | None, filters: Filters | None = None
                     ) -> list[list[tuple[int, float]]]:
        """Per query, the `depth` items whose best window is closest, best first. Items in a
        language other than the collection's main one are searched apart and corrected for
        their language (`matcher.language`), or the raw search would never reach them.
        `allowed`: the ids `filters` allow (what indexes without facets are searched with)."""
        hits = self._dense_search_raw(query_vectors, depth, allowed, filters)
        languages = self.language_centres().corrected()
        if not languages:
            return hits
        # Each language's ids once per call, not once per query (a scan of every item).
        members = {}
        for language in languages:
            own = self.language_centres().ids_of(language)
            members[language] = own if allowed is None else np.intersect1d(own, allowed)
        merged = []
        for n, main in enumerate(hits):
            ids = dict(main)
            for language in languages:
                own = members[language]
                if len(own):
                    ids.update(self._dense_search_raw(query_vectors[n:n + 1], depth, own)[0])
            candidates = np.fromiter(ids, dtype=np.int64)
            scores = self.dense_scores(candidates, query_vectors[n])
            order = sorted(range(len(candidates)),
                           key=lambda p: (-float(scores[p]), int(candidates[p])))[:depth]
            merged.append([(int(candidates[p]), float(scores[p])) for p in order])
        return merged

    def _dense_search_raw(self, query_vectors: np.ndarray, depth: int,
                          allowed: np.ndarray | None, filters: Filters | None = None
                          ) -> list[list[tuple[int, float]]]:
        inside = bool(filters) and allowed is not None and self.filters_inside()
        if inside:
            # The facets Milvus holds decide inside the search; the ids the filters allow
            # here have the last word (a facet edit another process has not written yet).
            hits = self._allowed_only(self.vectors.search(  # type: ignore[call-arg]
                query_vectors, depth, filters=filters), allowed, owners=False)
        else:
            hits = self.vectors.search(query_vectors, depth, allowed_ids=allowed)
        if not self.extra_windows:
            return [list(h) for h in hits]
        if inside:
            window_hits = self._allowed_only(self.windows.search(  # type: ignore[call-arg]
                query_vectors, depth, filters=filters), allowed, owners=True)
        else:
            allowed_windows = None
            if allowed is not None:
                allowed_windows = self._window_ids(i for i in allowed.tolist()
                                                   if i in self.extra_windows)
            window_hits = self.windows.search(query_vectors, depth,
                                              allowed_ids=allowed_windows)
        merged = []
        for main, extra in zip(hits, window_hits, strict=True):
            best = dict(main)
            for wid, raw_score in extra:
                owner = int(wid) // WINDOW_SLOTS
                score = raw_score - LATER_WINDOW_DISCOUNT
                if score > best.get(owner, -np.inf):
                    best[owner] = score
            merged.append(sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[:depth])
        return merged

    @staticmethod
    def _allowed_only(hits: list[list[tuple[int, float]]], allowed: np.ndarray | None,
                      *, owners: bool) -> list[list[tuple[int, float]]]:
        if allowed is None:
            return hits
        keep = set(allowed.tolist())
        return [[(i, s) for i, s in row if (i // WINDOW_SLOTS if owners else i) in keep]
                for row in hits]

    def allowed_ids(self, filters: Filters | None) -> np.ndarray | None:
        if not filters:
            return None
        return np.fromiter(
            (i for i, item in self.items.items() if filters.allows(item)), dtype=np.int64
        )
