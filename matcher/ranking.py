"""Rank an evaluation set (shared/eval layout) with a throw-away in-memory index."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.base import Encoder, encode_document_windows
from matcher.evaluation import EvalDoc, EvalQuery, Run, load_corpus, load_queries
from matcher.lexical import LexicalIndex
from matcher.lexical_milvus import MilvusFullText
from matcher.retriever import Matcher, Mode
from matcher.types import Item, Side
from matcher.vector_index import VectorIndex
from matcher.vocabulary import domain_terms

# Eval documents live on the "result" side: queries play the part of needs.
SIDE = "result"
QUERY_SIDE = "need"


@dataclass
class RankTimings:
    encode_documents_s: float = 0.0
    index_s: float = 0.0
    queries_s: dict[str, float] | None = None


class EvalRanker:
    """Indexes one corpus once, then ranks query sets in any mode."""

    def __init__(self, encoder: Encoder | None, docs: Sequence[EvalDoc], *, dense: bool = True,
                 progress: bool = False,
                 index_factory: Callable[[int, Side, str], VectorIndex] | None = None,
                 full_text_factory: Callable[[Side], MilvusFullText] | None = None) -> None:
        if dense and encoder is None:
            raise ValueError("dense ranking needs an encoder")
        self.docs = list(docs)
        self.timings = RankTimings(queries_s={})
        # `index_factory`: where the vectors go (FAISS in memory by default; `evaluate
        # --index milvus` passes Milvus collections, and Milvus's full-text search for BM25).
        self.matcher = Matcher(encoder if dense else None, index_factory=index_factory,
                               full_text_factory=full_text_factory)
        # BM25 cuts the set's text with the domain vocabulary of its keyword fields, as the
        # platform's index does (the keywords are in `d.text` already, so not in Item's).
        self.matcher.collections[SIDE].lexical = LexicalIndex(
            domain_terms(d.keywords for d in self.docs))
        items = [Item(n, SIDE, d.title, d.text) for n, d in enumerate(self.docs)
                 if d.title or d.text]
        started = time.perf_counter()
        # Lexical-only runs skip the model: the matcher then keeps BM25 postings only.
        windows = (
            encode_document_windows(encoder, [i.full_text for i in items], progress=progress)
            if encoder is not None and dense else None
        )
        self.timings.encode_documents_s = time.perf_counter() - started
        started = time.perf_counter()
        self.matcher.index_items(items, windows=windows)
        self.timings.index_s = time.perf_counter() - started

    def index_queries_as_needs(self, queries: Sequence[EvalQuery], *, vectors: bool = True
                               ) -> None:
        """The queries play the platform's open needs: their BM25 index is the query side
        whose common words (希望 预算 我司 ...) the result side weighs down
        (`LexicalIndex.query_weight`), and their vectors are the needs among which a result's
        density is measured, so a result near every need is discounted as on the platform
        (`matcher.hubness`). Encoded as the platform indexes needs: documents, first window."""
        needs = self.matcher.collections[QUERY_SIDE]
        needs.lexical.build((n, q.text) for n, q in enumerate(queries))
        encoder = self.matcher.encoder
        if encoder is not None and vectors:
            windows = encode_document_windows(encoder, [q.text for q in queries])
            needs.vectors.build(np.arange(len(queries), dtype=np.int64),
                                np.vstack([w[:1] for w in windows]).astype(np.float32))
        else:
            needs.vectors.build(np.zeros(0, dtype=np.int64),
                                np.zeros((0, needs.vectors.dimension), dtype=np.float32))

    def rank(self, queries: Sequence[EvalQuery], *, k: int, mode: Mode,
             progress: bool = False) -> Run:
        return self.rank_rated(queries, k=k, mode=mode, progress=progress)[0]

    def rank_rated(self, queries: Sequence[EvalQuery], *, k: int, mode: Mode,
                   progress: bool = False) -> tuple[Run, dict[str, list[str]]]:
        """The run, and each query's strength labels in rank order (empty where the mode
        carries no strength: only hybrid ranking is calibrated)."""
        started = time.perf_counter()
        self.index_queries_as_needs(queries, vectors=mode != "lexical")
        results = self.matcher.search_many(
            [q.text for q in queries], side=SIDE, k=k, mode=mode, explain=False,
            progress=progress, rate=True,
        )
        run: Run = {}
        labels: dict[str, list[str]] = {}
        for query, matches in zip(queries, results, strict=True):
            run[query.id] = [
                (self.docs[m.id].id, float(np.nan_to_num(m.score))) for m in matches
            ]
            labels[query.id] = [m.explanation.strength.label for m in matches
                                if m.explanation and m.explanation.strength]
        assert self.timings.queries_s is not None
        self.timings.queries_s[mode] = time.perf_counter() - started
        return run, labels


def load_set(corpus: Path, queries: Path) -> tuple[list[EvalDoc], list[EvalQuery]]:
    return load_corpus(corpus), load_queries(queries)
