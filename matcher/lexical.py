"""BM25 over jieba words (bm25s), with single-item add/remove.

bm25s builds an immutable sparse matrix, so edits mark the index stale and the matrix is rebuilt
from the kept token lists on the next search: segmentation (the slow part) is never redone for
unchanged items.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from matcher.tokenize import tokenize
from matcher.vector_common import write_atomically

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LexicalScores:
    """One query's BM25 scores over the index, aligned with `ids`."""

    ids: np.ndarray
    scores: np.ndarray
    position: dict[int, int]  # id → row in `ids`

    def of(self, ids: np.ndarray) -> np.ndarray:
        """Scores of these ids; 0 for ids the index does not hold."""
        if not len(self.ids):
            return np.zeros(len(ids), dtype=np.float32)
        rows = np.array([self.position.get(int(i), -1) for i in ids], dtype=np.int64)
        return np.where(rows >= 0, self.scores[np.maximum(rows, 0)], 0.0).astype(np.float32)

    def top(self, k: int, *, allowed_ids: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to k (id, score) with a positive score, best first, among `allowed_ids` if given."""
        if not len(self.ids):
            return []
        scores = self.scores
        if allowed_ids is not None:
            mask = np.isin(self.ids, np.asarray(allowed_ids, dtype=np.int64))
            scores = np.where(mask, scores, -np.inf)
        k = min(k, len(self.ids))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(self.ids[p]), float(scores[p])) for p in best if scores[p] > 0]


class LexicalIndex:
    def __init__(self) -> None:
        self._tokens: dict[int, list[str]] = {}
        self._model: bm25s.BM25 | None = None
        self._id_order: np.ndarray = np.zeros(0, dtype=np.int64)
        self._position: dict[int, int] = {}
        self._doc_freq: Counter[str] | None = None

    # -- contents -----------------------------------------------------------------
    def build(self, docs: Iterable[tuple[int, str]]) -> None:
        self._tokens = {}
        self.add(docs)

    def add(self, docs: Iterable[tuple[int, str]]) -> None:
        """Insert or replace documents given as (id, text)."""
        for doc_id, text in docs:
            self._tokens[int(doc_id)] = tokenize(text)
        self._model = None
        self._doc_freq = None

    def remove(self, ids: Iterable[int]) -> int:
        removed = 0
        for doc_id in ids:
            if self._tokens.pop(int(doc_id), None) is not None:
                removed += 1
        if removed:
            self._model = None
            self._doc_freq = None
        return removed

    def count(self) -> int:
        return len(self._tokens)

    def ids(self) -> np.ndarray:
        return np.fromiter(self._tokens.keys(), dtype=np.int64, count=len(self._tokens))

    def __contains__(self, doc_id: int) -> bool:
        return int(doc_id) in self._tokens

    def idf(self, term: str) -> float:
        """BM25's idf of a term (the one Lucene uses); unseen terms count as found once."""
        if self._doc_freq is None:
            self._doc_freq = Counter(t for tokens in self._tokens.values() for t in set(tokens))
        total = max(len(self._tokens), 1)
        df = self._doc_freq.get(term, 1)
        return math.log(1 + (total - df + 0.5) / (df + 0.5))

    # -- scoring ------------------------------------------------------------------
    def _ensure_model(self) -> bm25s.BM25 | None:
        if self._model is None and self._tokens:
            self._id_order = self.ids()
            self._position = {int(i): p for p, i in enumerate(self._id_order)}
            corpus = [self._tokens[int(i)] or [""] for i in self._id_order]
            model = bm25s.BM25()
            model.index(corpus, show_progress=False)
            self._model = model
        return self._model

    def score(self, query: str) -> LexicalScores:
        """BM25 scores of every indexed item for `query`, computed once and read many ways."""
        model = self._ensure_model()
        if model is None:
            return LexicalScores(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), {})
        known = [t for t in tokenize(query) if t in model.vocab_dict]
        if not known:
            scores = np.zeros(len(self._id_order), dtype=np.float32)
        else:
            scores = np.asarray(model.get_scores(known), dtype=np.float32)
        return LexicalScores(self._id_order, scores, self._position)

    def score_all(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) over the whole index; scores are 0 where no query word occurs."""
        scored = self.score(query)
        return scored.ids, scored.scores

    def scores_for(self, query: str, ids: np.ndarray) -> np.ndarray:
        return self.score(query).of(ids)

    def search(
        self, query: str, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        return self.score(query).top(k, allowed_ids=allowed_ids)

    # -- persistence (plain JSON lines, no pickle) ---------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)

        def write(path: Path) -> None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"schema": SCHEMA_VERSION, "count": self.count()}) + "\n")
                for doc_id, tokens in self._tokens.items():
                    fh.write(json.dumps([doc_id, tokens], ensure_ascii=False) + "\n")

        write_atomically(directory / "tokens.jsonl", write)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        index = cls()
        path = directory / "tokens.jsonl"
        with open(path, encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            if header.get("schema") != SCHEMA_VERSION:
                raise ValueError(f"{path}: unsupported lexical index schema {header.get('schema')}")
            for line in fh:
                doc_id, tokens = json.loads(line)
                index._tokens[int(doc_id)] = list(tokens)
        if len(index._tokens) != header.get("count"):
            raise ValueError(f"{path}: truncated ({len(index._tokens)} of {header['count']} rows)")
        return index
