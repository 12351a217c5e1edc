"""Hybrid retrieval over both sides of the platform: dense (FAISS) + lexical (BM25), fused.

One `Collection` per side holds the items, their vectors and their BM25 postings. The
`Matcher` answers every direction users need: free text → either side, need → results,
result → needs, and similar items on the same side (which also surfaces duplicates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from embeddings.base import Encoder
from matcher.explain import agreed_facets, shared_terms
from matcher.filters import Filters
from matcher.fusion import Fusion, default_fusion
from matcher.lexical import LexicalIndex
from matcher.types import SIDES, Explanation, Item, Match, Side
from matcher.vector_index import VectorIndex, new_index

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")

# Each ranker contributes this many candidates (at least) before fusion; both component
# scores are then computed exactly for the union, so fusion never guesses a missing score.
MIN_CANDIDATES = 100


@dataclass
class Collection:
    side: Side
    vectors: VectorIndex
    lexical: LexicalIndex = field(default_factory=LexicalIndex)
    items: dict[int, Item] = field(default_factory=dict)

    def count(self) -> int:
        return len(self.items)

    def allowed_ids(self, filters: Filters | None) -> np.ndarray | None:
        if not filters:
            return None
        return np.fromiter(
            (i for i, item in self.items.items() if filters.allows(item)), dtype=np.int64
        )


class Matcher:
    def __init__(
        self,
        encoder: Encoder | None,
        *,
        fusion: Fusion | None = None,
        index_factory: Callable[[int], VectorIndex] = new_index,
    ) -> None:
        # encoder None: a lexical-only matcher (BM25 runs need no model).
        self.encoder = encoder
        self.fusion = fusion or default_fusion()
        dimension = encoder.dimension if encoder is not None else 1
        self.collections: dict[Side, Collection] = {
            side: Collection(side, index_factory(dimension)) for side in SIDES
        }

    # -- maintaining the indexes ----------------------------------------------------------
    def index_items(
        self, items: Sequence[Item], *, vectors: np.ndarray | None = None, progress: bool = False
    ) -> None:
        """Insert or replace items (one side or both); only these items are encoded."""
        if not items:
            return
        # The same id twice in one batch: the last version wins, as it would across calls.
        last = {(item.side, item.id): n for n, item in enumerate(items)}
        if len(last) < len(items):
            keep = sorted(last.values())
            items = [items[n] for n in keep]
            if vectors is not None:
                vectors = vectors[keep]
        # A lexical-only matcher (no encoder, no vectors given) keeps BM25 postings only.
        if vectors is None and self.encoder is not None:
            vectors = self.encoder.encode_documents([i.full_text for i in items], progress=progress)
        for side in SIDES:
            rows = [n for n, item in enumerate(items) if item.side == side]
            if not rows:
                continue
            coll = self.collections[side]
            if vectors is not None:
                ids = np.array([items[n].id for n in rows], dtype=np.int64)
                coll.vectors.add(ids, vectors[rows])
            coll.lexical.add((items[n].id, items[n].full_text) for n in rows)
            coll.items.update((items[n].id, items[n]) for n in rows)

    def remove_items(self, side: Side, ids: Iterable[int]) -> int:
        coll = self.collections[side]
        ids = np.array([int(i) for i in ids if int(i) in coll.items], dtype=np.int64)
        if not len(ids):
            return 0
        coll.vectors.remove(ids)
        coll.lexical.remove(ids.tolist())
        for i in ids.tolist():
            del coll.items[i]
        return len(ids)

    # -- searching ------------------------------------------------------------------------
    def search(
        self,
        text: str,
        *,
        side: Side,
        k: int = 10,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        explain: bool = True,
    ) -> list[Match]:
        """Free text (a need, a title, a few keywords) against one side."""
        return self.search_many([text], side=side, k=k, mode=mode, filters=filters,
                                explain=explain)[0]

    def search_many(
        self,
        texts: Sequence[str],
        *,
        side: Side,
        k: int = 10,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        explain: bool = True,
        query_facets: Sequence[dict[str, str]] | None = None,
        exclude: Sequence[int | None] | None = None,
        progress: bool = False,
    ) -> list[list[Match]]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if mode != "lexical" and self.encoder is None:
            raise ValueError(f"mode {mode!r} needs an encoder; this matcher is lexical-only")
        coll = self.collections[side]
        allowed = coll.allowed_ids(filters)
        query_vectors = (
            self.encoder.encode_queries(list(texts), progress=progress)
            if mode != "lexical" else None
        )
        depth = max(MIN_CANDIDATES, 2 * k)
        dense_hits = (
            coll.vectors.search(query_vectors, depth + 1, allowed_ids=allowed)
            if query_vectors is not None and coll.count() else [[] for _ in texts]
        )
        results = []
        for n, text in enumerate(texts):
            skip = exclude[n] if exclude else None
            ranked = self._rank_one(
                coll, text, None if query_vectors is None else query_vectors[n],
                dense_hits[n], allowed, mode, depth,
            )
            ranked = [r for r in ranked if r[0] != skip][:k]
            facets = query_facets[n] if query_facets else {}
            results.append(self._to_matches(coll, text, ranked, facets, explain))
        return results

    def match_item(
        self,
        item: Item,
        *,
        target: Side,
        k: int = 10,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        explain: bool = True,
    ) -> list[Match]:
        """A need's best results, a result's best needs, or (target == item.side) its
        nearest neighbours on the same side, the item itself left out."""
        exclude = [item.id] if target == item.side else None
        return self.search_many(
            [item.full_text], side=target, k=k, mode=mode, filters=filters, explain=explain,
            query_facets=[item.facets], exclude=exclude,
        )[0]

    # -- internals ------------------------------------------------------------------------
    def _rank_one(
        self,
        coll: Collection,
        text: str,
        query_vector: np.ndarray | None,
        dense_hits: list[tuple[int, float]],
        allowed: np.ndarray | None,
        mode: Mode,
        depth: int,
    ) -> list[tuple[int, float, float, float]]:
        """(id, fused score, dense score, lexical score), best first."""
        if mode == "dense":
            return [(i, s, s, float("nan")) for i, s in dense_hits]
        lexical_scores = coll.lexical.score(text)
        lexical_hits = lexical_scores.top(depth + 1, allowed_ids=allowed)
        if mode == "lexical":
            return [(i, s, float("nan"), s) for i, s in lexical_hits]
        candidate_ids = np.array(
            list(dict.fromkeys([i for i, _ in dense_hits] + [i for i, _ in lexical_hits])),
            dtype=np.int64,
        )
        if not len(candidate_ids):
            return []
        dense = coll.vectors.vectors(candidate_ids) @ query_vector
        lexical = lexical_scores.of(candidate_ids)
        fused = self.fusion.fuse(text, dense.astype(np.float32), lexical)
        order = np.argsort(-fused, kind="stable")
        return [
            (int(candidate_ids[p]), float(fused[p]), float(dense[p]), float(lexical[p]))
            for p in order
        ]

    def _to_matches(
        self,
        coll: Collection,
        text: str,
        ranked: list[tuple[int, float, float, float]],
        query_facets: dict[str, str],
        explain: bool,
    ) -> list[Match]:
        if not explain:
            return [Match(i, fused) for i, fused, _, _ in ranked]
        matches = []
        for i, fused, dense, lexical in ranked:
            item = coll.items[i]
            matches.append(Match(i, fused, Explanation(
                dense_score=dense,
                lexical_score=lexical,
                shared_terms=shared_terms(text, item.full_text, coll.lexical.idf),
                facets_agreed=agreed_facets(query_facets, item),
            )))
        return matches
