"""Brute-force vector index in plain numpy: the exact reference the FAISS backend is held to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matcher.vector_common import (
    Hits,
    IndexFileError,
    as_ids,
    as_queries,
    as_vectors,
    check_k,
    check_loaded,
    commit_index_files,
    exact_top_k,
    open_committed,
    utc_now_iso,
)

KIND = "numpy"


class NumpyIndex:
    """Rows kept in insertion order; a dict maps each id to its row."""

    persistent = False  # in memory; saved as files

    def __init__(self, dimension: int) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self.dimension = int(dimension)
        self.meta: dict[str, Any] = {}
        self._ids = np.empty(0, dtype=np.int64)
        self._vectors = np.empty((0, self.dimension), dtype=np.float32)
        self._row_of: dict[int, int] = {}
        self._built_at = utc_now_iso()

    @property
    def kind(self) -> str:
        return KIND

    def _reindex_rows(self) -> None:
        self._row_of = {int(i): row for row, i in enumerate(self._ids)}

    def build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        self._vectors = as_vectors(vectors, self.dimension, ids.size).copy()
        self._ids = ids
        self._reindex_rows()
        self._built_at = utc_now_iso()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension, ids.size)
        self.remove(ids)
        self._ids = np.concatenate([self._ids, ids])
        self._vectors = np.concatenate([self._vectors, vectors])
        self._reindex_rows()

    def remove(self, ids: np.ndarray) -> int:
        rows = [
            self._row_of[i] for i in set(as_ids(ids, unique=False).tolist()) if i in self._row_of
        ]
        if not rows:
            return 0
        keep = np.ones(self._ids.size, dtype=bool)
        keep[rows] = False
        self._ids = self._ids[keep]
        self._vectors = self._vectors[keep]
        self._reindex_rows()
        return len(rows)

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None) -> Hits:
        queries = as_queries(queries, self.dimension)
        k = check_k(k)
        if allowed_ids is None:
            return exact_top_k(queries, self._ids, self._vectors, k)
        mask = np.isin(self._ids, as_ids(allowed_ids, unique=False))
        return exact_top_k(queries, self._ids[mask], self._vectors[mask], k)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        wanted = as_ids(ids, unique=False).tolist()
        missing = [i for i in wanted if i not in self._row_of]
        if missing:
            raise KeyError(f"ids not in the index: {missing[:10]}")
        return self._vectors[[self._row_of[i] for i in wanted]].copy()

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def count(self) -> int:
        return int(self._ids.size)

    def copy(self) -> NumpyIndex:
        """An independent index with the same contents."""
        clone = NumpyIndex(self.dimension)
        clone._ids, clone._vectors = self._ids.copy(), self._vectors.copy()
        clone._row_of = dict(self._row_of)
        clone._built_at, clone.meta = self._built_at, dict(self.meta)
        return clone

    def save(self, directory: Path, *, model: str) -> None:
        if not model:
            raise ValueError("save needs the name of the model that made the vectors")

        def write(path: Path) -> None:
            with open(path, "wb") as handle:
                np.savez(handle, ids=self._ids, vectors=self._vectors)

        self.meta = commit_index_files(
            Path(directory),
            "npz",
            write,
            {
                "kind": KIND,
                "model": model,
                "dimension": self.dimension,
                "count": self.count(),
                "metric": "inner_product",
                "built_at": self._built_at,
            },
        )

    @classmethod
    def load(cls, directory: Path) -> NumpyIndex:
        sidecar, data_path = open_committed(Path(directory), (KIND,))
        try:
            with np.load(data_path, allow_pickle=False) as data:
                ids, vectors = data["ids"], data["vectors"]
        except (OSError, ValueError, KeyError) as error:
            raise IndexFileError(f"{data_path} is not a readable numpy index: {error}") from error
        if ids.ndim != 1 or vectors.ndim != 2 or vectors.shape[0] != ids.size:
            raise IndexFileError(f"{data_path}: ids {ids.shape} and vectors {vectors.shape} differ")
        check_loaded(sidecar, dimension=vectors.shape[1], count=ids.size, where=data_path)
        index = cls(sidecar["dimension"])
        index._ids = ids.astype(np.int64)
        index._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index._reindex_rows()
        index._built_at = sidecar["built_at"]
        index.meta = sidecar
        return index
