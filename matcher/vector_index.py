"""The vector index contract, and the two ways to get one: new, or opened from disk.

ids are int64 database ids; vectors are L2-normalised float32, so the score (inner
product) is cosine similarity. Backends: `NumpyIndex` (brute force, the reference),
`FaissIndex` (exact at small sizes, IVF above a measured threshold), both in the process and
saved as files, and `matcher.vector_milvus.MilvusIndex` (a collection on Milvus).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from matcher.vector_common import (
    SIDECAR_NAME,
    DimensionMismatchError,
    Hits,
    IndexFileError,
    IndexUnavailableError,
    read_sidecar,
)
from matcher.vector_faiss import ANN_THRESHOLD, FaissIndex
from matcher.vector_faiss_files import KIND_FLAT, KIND_IVF
from matcher.vector_milvus import KIND as KIND_MILVUS
from matcher.vector_milvus import MilvusIndex
from matcher.vector_numpy import KIND as KIND_NUMPY
from matcher.vector_numpy import NumpyIndex

__all__ = [
    "ANN_THRESHOLD",
    "SIDECAR_NAME",
    "DimensionMismatchError",
    "FaissIndex",
    "Hits",
    "IndexFileError",
    "IndexUnavailableError",
    "MilvusIndex",
    "NumpyIndex",
    "VectorIndex",
    "new_index",
    "open_index",
]


@runtime_checkable
class VectorIndex(Protocol):
    dimension: int
    #: True when every edit is durable in the backend itself (Milvus): a snapshot then needs
    #: no copy, and saving records only where the vectors are.
    persistent: bool
    #: The sidecar as last loaded or saved (model, count, built_at...); empty before either.
    meta: dict[str, Any]

    def build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole contents."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Upsert: ids already stored get the new vectors."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Drop these ids (absent ones are ignored); returns how many were removed."""
        ...

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None) -> Hits:
        """Per query, up to k (id, score) best first; with `allowed_ids` only those ids,
        and still k of them whenever k of them are stored."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, in order (KeyError if one is missing)."""
        ...

    def ids(self) -> np.ndarray:
        """Every stored id, int64."""
        ...

    def count(self) -> int: ...

    def copy(self) -> VectorIndex:
        """An independent index with the same contents (later edits of either leave the
        other alone): what a background save writes while searches and edits go on."""
        ...

    def save(self, directory: Path, *, model: str) -> None:
        """Write atomically into `directory`, with `model` recorded in the sidecar."""
        ...

    @classmethod
    def load(cls, directory: Path) -> VectorIndex: ...


_BACKEND_OF_KIND: dict[str, type[NumpyIndex] | type[FaissIndex]] = {
    KIND_NUMPY: NumpyIndex,
    KIND_FLAT: FaissIndex,
    KIND_IVF: FaissIndex,
}


def new_index(dimension: int, **options: Any) -> FaissIndex:
    """An empty index that switches between exact and ANN search by size by itself."""
    return FaissIndex(dimension, **options)


def open_index(directory: Path | str) -> VectorIndex:
    """Load the index saved in `directory`, whichever backend wrote it (a Milvus one through
    the URI its sidecar records; `matcher.index_backend` passes the settings' own)."""
    kind = read_sidecar(Path(directory))["kind"]
    if kind == KIND_MILVUS:
        return MilvusIndex.load(Path(directory))
    backend = _BACKEND_OF_KIND.get(kind)
    if backend is None:
        raise IndexFileError(f"{directory}: unknown index kind {kind!r}")
    return backend.load(Path(directory))
