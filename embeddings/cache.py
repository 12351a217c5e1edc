"""An on-disk embedding cache keyed by (model, role, sha256(text)).

Re-indexing unchanged texts then encodes nothing: only cache misses reach the model. The cache
is a single SQLite file so several worker processes can share it safely.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.base import Encoder, check_texts, encode_document_windows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embedding (
    model TEXT NOT NULL,
    role TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, role, text_sha256)
) WITHOUT ROWID
"""

_SETUP_WAIT_S = 30.0

# SQLite caps the number of bound parameters per statement; look up in slices below it.
_LOOKUP_SLICE = 500


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._set_up()

    def _set_up(self) -> None:
        # Switching to WAL needs a moment alone with the file, and SQLite reports a clash as
        # "database is locked" at once, without waiting: two workers starting together on a
        # new cache meet here, so retry for a while.
        deadline = time.monotonic() + _SETUP_WAIT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(_SCHEMA)
                self._conn.commit()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                self._conn.rollback()
                time.sleep(0.05)

    def get_many(self, model: str, role: str, keys: Sequence[bytes], dimension: int, *,
                 rows: bool = False) -> dict[bytes, np.ndarray]:
        """Stored vectors by key; with `rows`, each value is a (n, dimension) matrix."""
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _LOOKUP_SLICE):
                chunk = unique[start:start + _LOOKUP_SLICE]
                marks = ",".join("?" * len(chunk))
                found_rows = self._conn.execute(
                    f"SELECT text_sha256, vector FROM embedding WHERE model=? AND role=? "
                    f"AND text_sha256 IN ({marks})",
                    (model, role, *chunk),
                ).fetchall()
                for key, blob in found_rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if rows and vector.size and vector.size % dimension == 0:
                        found[bytes(key)] = vector.reshape(-1, dimension)
                    elif not rows and vector.shape[0] == dimension:
                        found[bytes(key)] = vector
        return found

    def put_many(self, model: str, role: str, keys: Sequence[bytes],
                 vectors: np.ndarray | Sequence[np.ndarray]) -> None:
        rows = [
            (model, role, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes())
            for key, vec in zip(keys, vectors, strict=True)
        ]
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO embedding VALUES (?, ?, ?, ?)", rows)
            self._conn.commit()

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return self._conn.execute("SELECT COUNT(*) FROM embedding").fetchone()[0]
            return self._conn.execute(
                "SELECT COUNT(*) FROM embedding WHERE model=?", (model,)
            ).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachedEncoder:
    """Wraps any Encoder; the wrapped encoder only ever sees cache misses."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self.inner = encoder
        self.cache = cache
        self.name = encoder.name
        self.dimension = encoder.dimension

    def _encode(self, role: str, texts: Sequence[str], progress: bool) -> np.ndarray:
        texts = check_texts(texts)
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(self.name, role, keys, self.dimension)
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        if missing:
            encode = (
                self.inner.encode_queries if role == "query" else self.inner.encode_documents
            )
            fresh = encode(list(missing.values()), progress=progress)
            self.cache.put_many(self.name, role, list(missing), fresh)
            found.update(zip(missing, fresh, strict=True))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode("query", texts, progress)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode("document", texts, progress)

    def encode_document_windows(self, texts: Sequence[str], *, progress: bool = False
                                ) -> list[np.ndarray]:
        texts = check_texts(texts)
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(self.name, "document-windows", keys, self.dimension,
                                    rows=True)
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        if missing:
            fresh = encode_document_windows(self.inner, list(missing.values()),
                                            progress=progress)
            self.cache.put_many(self.name, "document-windows", list(missing), fresh)
            found.update(zip(missing, fresh, strict=True))
        return [np.array(found[key], dtype=np.float32) for key in keys]
