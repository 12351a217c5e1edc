"""Hybrid retrieval over both sides of the platform: dense (FAISS) + lexical (BM25), fused.

One `Collection` per side (`matcher.collection`) holds the items, their vectors and their
BM25 index. The `Matcher` answers every direction users need: free text → either side,
need → results, result → needs, and similar items on the same side (which also surfaces
duplicates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np

from embeddings.base import Encoder, encode_document_windows
from matcher import hubness
from matcher.collection import Collection, fold_windows, window_id
from matcher.explain import (
    agreed_facets,
    clashed_facets,
    common_on_a_side,
    list_ranks,
    shared_terms,
)
from matcher.filters import Filters
from matcher.fusion import Fusion, default_fusion
from matcher.language import language_of
from matcher.lexical import LexicalIndex
from matcher.lexical_milvus import MilvusFullText
from matcher.strength import default_model, features
from matcher.types import SIDES, Explanation, Item, Match, Side, Strength
from matcher.vector_index import VectorIndex, new_index
from matcher.vector_milvus import facet_document

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")

# Each ranker contributes this many candidates (at least) before fusion; both component
# scores are then computed exactly for the union, so fusion never guesses a missing score.
MIN_CANDIDATES = 100

# Hubs (`matcher.hubness`): ranking a need's results, each candidate's cosine is lowered by
# HUB_WEIGHT × its mean cosine with its HUB_K nearest open needs before fusion (CSLS at half
# its weight), so a generic result near every need stops taking a place in many needs' top 10.
# scripts/measure_hubs.py: need-results nDCG@10 0.747 → 0.763, P@5 0.269 → 0.278, the most
# frequent result in 9 → 5 demo needs' top 10; csl-keywords −0.002, csl-title ±0,
# cross-lingual −0.001 (weight 0.5: csl-keywords −0.005, cross-lingual −0.048). The strength
# still reads the plain cosine it is calibrated on.
HUB_WEIGHT = 0.25
HUB_K = 10


def known_share(lexical: LexicalIndex, text: str) -> float:
    """The share of the query's distinct words that occur in the index (fusion's evidence for
    BM25: a word no document holds is one BM25 cannot see); 0 for a query with no words."""
    return known_share_of(lexical, lexical.tokenize(text))


def known_share_of(lexical: LexicalIndex, words: Sequence[str]) -> float:
    """`known_share` of a query already cut by `lexical`."""
    distinct = set(words)
    if not distinct:
        return 0.0
    return sum(1 for w in distinct if lexical.share(w) > 0) / len(distinct)


class Matcher:
    def __init__(
        self,
        encoder: Encoder | None,
        *,
        fusion: Fusion | None = None,
        index_factory: Callable[[int, Side, str], VectorIndex] | None = None,
        full_text_factory: Callable[[Side], MilvusFullText] | None = None,
    ) -> None:
        # encoder None: a lexical-only matcher (BM25 runs need no model).
        self.encoder = encoder
        self.fusion = fusion or default_fusion()
        dimension = encoder.dimension if encoder is not None else 1
        # (dimension, side, "vectors" | "windows") -> that index; by default FAISS in memory
        # (`matcher.index_backend` makes Milvus collections instead)
        make = index_factory or (lambda d, _side, _role: new_index(d))
        self.collections: dict[Side, Collection] = {
            side: Collection(side, make(dimension, side, "vectors"),
                             make(dimension, side, "windows"),
                             full_text=full_text_factory(side) if full_text_factory else None)
            for side in SIDES
        }
        self.hub_weight = HUB_WEIGHT  # 0: rank without the hub discount

    # -- maintaining the indexes ----------------------------------------------------------
    def index_items(
        self,
        items: Sequence[Item],
        *,
        vectors: np.ndarray | None = None,
        windows: Sequence[np.ndarray] | None = None,
        progress: bool = False,
    ) -> None:
        """Insert or replace items (one side or both); only these items are encoded.

        `windows` (per item, its window vectors) or `vectors` (one per item) skip encoding.
        """
        if not items:
            return
        # The same id twice in one batch: the last version wins, as it would across calls.
        last = {(item.side, item.id): n for n, item in enumerate(items)}
        if len(last) < len(items):
            keep = sorted(last.values())
            items = [items[n] for n in keep]
            if vectors is not None:
                vectors = vectors[keep]
            if windows is not None:
                windows = [windows[n] for n in keep]
        if windows is None and vectors is not None:
            windows = [row[None, :] for row in vectors]
        # A lexical-only matcher (no encoder, no vectors given) keeps BM25 postings only.
        if windows is None and self.encoder is not None:
            windows = encode_document_windows(self.encoder, [i.full_text for i in items],
                                              progress=progress)
        for side in SIDES:
            rows = [n for n, item in enumerate(items) if item.side == side]
            if not rows:
                continue
            coll = self.collections[side]
            if windows is not None:
                ids = [items[n].id for n in rows]
                if coll.centres is not None:
                    replaced = [i for i in ids if i in coll.centres.language]
                    if replaced:
                        coll.centres.remove(replaced, coll.vectors.vectors(
                            np.array(replaced, dtype=np.int64)))
                self._store_windows(coll, ids, [windows[n] for n in rows],
                                    [items[n].facets for n in rows])
                if coll.centres is not None:
                    coll.centres.add(ids, [language_of(items[n].full_text) for n in rows],
                                     np.vstack([windows[n][:1] for n in rows]))
            coll.lexical.add((items[n].id, items[n].full_text) for n in rows)
            coll.write_full_text([items[n] for n in rows])
            coll.items.update((items[n].id, items[n]) for n in rows)

    @staticmethod
    def _store_windows(coll: Collection, ids: list[int], windows: list[np.ndarray],
                       facets: list[dict[str, str]]) -> None:
        coll.drop_windows(ids)  # an edit may leave an item fewer windows than before
        firsts = np.vstack([w[:1] for w in windows]).astype(np.float32)
        filtered = coll.filters_inside()
        documents = [facet_document(f) for f in facets] if filtered else []
        if filtered:
            coll.vectors.add(np.array(ids, dtype=np.int64), firsts,  # type: ignore[call-arg]
                             facets=documents)
        else:
            coll.vectors.add(np.array(ids, dtype=np.int64), firsts)
        extra_ids: list[int] = []
        extra_vectors: list[np.ndarray] = []
        extra_facets: list[dict[str, object]] = []
        for n, (item_id, item_windows) in enumerate(zip(ids, windows, strict=True)):
            item_windows = fold_windows(item_windows)
            if len(item_windows) > 1:
                coll.extra_windows[item_id] = len(item_windows) - 1
                extra_ids.extend(window_id(item_id, w) for w in range(1, len(item_windows)))
                extra_vectors.append(item_windows[1:])
                if filtered:
                    extra_facets.extend([documents[n]] * (len(item_windows) - 1))
        if extra_ids:
            extra = (np.array(extra_ids, dtype=np.int64),
                     np.vstack(extra_vectors).astype(np.float32))
            if filtered:
                coll.windows.add(*extra, facets=extra_facets)  # type: ignore[call-arg]
            else:
                coll.windows.add(*extra)

    def remove_items(self, side: Side, ids: Iterable[int]) -> int:
        coll = self.collections[side]
        ids = np.array([int(i) for i in ids if int(i) in coll.items], dtype=np.int64)
        if not len(ids):
            return 0
        if coll.centres is not None:
            counted = np.array([i for i in ids.tolist() if i in coll.centres.language],
                               dtype=np.int64)
            if len(counted):
                coll.centres.remove(counted.tolist(), coll.vectors.vectors(counted))
        coll.vectors.remove(ids)
        coll.drop_windows(ids.tolist())
        coll.lexical.remove(ids.tolist())
        if coll.full_text is not None:
            coll.full_text.remove(ids.tolist())
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
        query_vectors: np.ndarray | None = None,
        query_side: Side | None = None,
        rate: bool = False,
    ) -> list[list[Match]]:
        """Each text's best `k` on `side`. With `explain=False` the matches carry no
        explanation, unless `rate`: then one with the two scores and the strength only.
        `query_vectors`, when given, are the texts' encodings (callers that encode outside
        a lock); otherwise the texts are encoded here. `query_side` is the side the texts come
        from (by default the other side: free text searching results is a firm's need); BM25
        weighs down the words common on that side (需求 希望 预算 for needs), see
        `LexicalIndex.query_weight`."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if mode != "lexical" and self.encoder is None:
            raise ValueError(f"mode {mode!r} needs an encoder; this matcher is lexical-only")
        coll = self.collections[side]
        source_side = query_side or _other(side)
        source = self.collections[source_side].lexical
        # Strength is fitted on needs searching results (datasets/eval/need-results): the other
        # directions are not calibrated, so they carry none rather than an untested figure.
        rated = source_side == "need" and side == "result"
        allowed = coll.allowed_ids(filters)
        if mode == "lexical":
            query_vectors = None
        elif query_vectors is None:
            query_vectors = self.encoder.encode_queries(list(texts), progress=progress)
        depth = max(MIN_CANDIDATES, 2 * k)
        dense_hits = (
            coll.dense_search(query_vectors, depth + 1, allowed, filters)
            if query_vectors is not None and coll.count() else [[] for _ in texts]
        )
        results = []
        for n, text in enumerate(texts):
            skip = exclude[n] if exclude else None
            # The query cut once, as the index cuts it: BM25, fusion's evidence, the
            # explanation's terms and the strength all read these words.
            words = coll.lexical.tokenize(text) if mode != "dense" or explain else []
            share = known_share_of(coll.lexical, words)
            ranked = self._rank_one(
                coll, text, words, share, None if query_vectors is None else query_vectors[n],
                dense_hits[n], allowed, mode, depth, source, filters,
            )
            ranked = [r for r in ranked if r[0] != skip][:k]
            facets = query_facets[n] if query_facets else {}
            results.append(
                self._to_matches(coll, text, words, share, ranked, facets, explain, rated,
                                 rate, query_side=source_side))
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
        query_vector: np.ndarray | None = None,
    ) -> list[Match]:
        """A need's best results, a result's best needs, or (target == item.side) its
        nearest neighbours on the same side, the item itself left out."""
        exclude = [item.id] if target == item.side else None
        return self.search_many(
            [item.full_text], side=target, k=k, mode=mode, filters=filters, explain=explain,
            query_facets=[item.facets], exclude=exclude,
            query_vectors=None if query_vector is None else query_vector[None, :],
            query_side=item.side,
        )[0]

    # -- internals ------------------------------------------------------------------------
    def _rank_one(
        self,
        coll: Collection,
        text: str,
        words: Sequence[str],
        share: float,
        query_vector: np.ndarray | None,
        dense_hits: list[tuple[int, float]],
        allowed: np.ndarray | None,
        mode: Mode,
        depth: int,
        query_side: LexicalIndex,
        filters: Filters | None = None,
    ) -> list[tuple[int, float, float, float]]:
        """(id, fused score, dense score, lexical score), best first."""
        if mode == "dense":
            return [(i, s, s, float("nan")) for i, s in dense_hits]
        lexical_scores = coll.lexical_scores(text, words, query_side, filters)
        lexical_hits = lexical_scores.top(depth + 1, allowed_ids=allowed)
        if mode == "lexical":
            return [(i, s, float("nan"), s) for i, s in lexical_hits]
        candidate_ids = np.array(
            list(dict.fromkeys([i for i, _ in dense_hits] + [i for i, _ in lexical_hits])),
            dtype=np.int64,
        )
        if not len(candidate_ids):
            return []
        dense = coll.dense_scores(candidate_ids, query_vector)
        lexical = lexical_scores.of(candidate_ids)
        fused = self.fusion.fuse(text, self._hub_discounted(coll, query_side, candidate_ids,
                                                            dense),
                                 lexical, known_share=share)
        order = np.argsort(-fused, kind="stable")
        return [
            (int(candidate_ids[p]), float(fused[p]), float(dense[p]), float(lexical[p]))
            for p in order
        ]

    def _hub_discounted(self, coll: Collection, query_side: LexicalIndex,
                        ids: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """The cosines fusion ranks on: for a need's results, less each result's density
        among the open needs (`HUB_WEIGHT`); measured in that direction only."""
        needs = self.collections["need"]
        if (not self.hub_weight or coll.side != "result" or query_side is not needs.lexical
                or not needs.vectors.count()):
            return dense.astype(np.float32)
        density = hubness.density_of_hits(
            needs.vectors.search(coll.vectors.vectors(ids), HUB_K))
        return hubness.csls_scores(dense, density, self.hub_weight)

    def _to_matches(
        self,
        coll: Collection,
        text: str,
        words: Sequence[str],
        share: float,
        ranked: list[tuple[int, float, float, float]],
        query_facets: dict[str, str],
        explain: bool,
        rated: bool = True,
        rate: bool = False,
        query_side: Side | None = None,
    ) -> list[Match]:
        if not explain:
            if not rate:
                return [Match(i, fused) for i, fused, _, _ in ranked]
            # Scores and strength only, for callers that count matches by strength
            # (the officers' coverage) and show no explanation.
            return [
                Match(i, fused, Explanation(
                    dense_score=dense, lexical_score=lexical,
                    strength=self._strength(rated, dense, lexical, share, n + 1)))
                for n, (i, fused, dense, lexical) in enumerate(ranked)
            ]
        dense_ranks = list_ranks([dense for _, _, dense, _ in ranked])
        lexical_ranks = list_ranks([lexical for _, _, _, lexical in ranked])
        # Words common on a side (处理 控制 涉及, 一家 预算 我司) share nothing worth saying.
        common = common_on_a_side(c.lexical for c in self.collections.values())
        # Strength is calibrated on hybrid rankings: both scores, the query's known share
        # and the place in the list (`matcher.strength`).
        matches = []
        for n, (i, fused, dense, lexical) in enumerate(ranked):
            item = coll.items[i]
            strength = self._strength(rated, dense, lexical, share, n + 1)
            matches.append(Match(i, fused, Explanation(
                dense_score=dense,
                lexical_score=lexical,
                shared_terms=shared_terms(
                    text, item.full_text, coll.lexical.idf,
                    doc_words=coll.lexical.words(i) if i in coll.lexical else None,
                    # the index's own cut keeps domain terms (化学机械抛光) whole
                    query_words=words, common=common),
                facets_agreed=agreed_facets(query_facets, item),
                facets_clashed=clashed_facets(query_facets, item, query_side or _other(coll.side)),
                dense_rank=dense_ranks[n],
                lexical_rank=lexical_ranks[n],
                strength=strength,
            )))
        return matches

    @staticmethod
    def _strength(rated: bool, dense: float, lexical: float, share: float,
                  rank: int) -> Strength | None:
        if not rated or np.isnan(dense) or np.isnan(lexical):
            return None
        return default_model().assess(features(dense, lexical, share, rank))


def _other(side: Side) -> Side:
    return "need" if side == "result" else "result"
