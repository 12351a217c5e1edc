"""The content hash of every item whose vectors a Milvus side holds, kept beside them.

On files, `hashes.json` says what the vectors are of. With Milvus the vectors are shared by
every host, so the hashes are too: a new host (an empty `indexes/` folder) reads them here and
re-embeds only the items whose hash differs from the database's, instead of all of them.

Written at each save, after the vectors (which are written at each edit): a hash here is never
newer than the vectors it describes, only older, and an older hash costs a re-embed, never a
wrong vector. One small collection per side, `<prefix>_<side>_hashes` (Milvus wants a vector
field in every collection: a constant 2-d one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from matcher.vector_milvus import WRITE_BATCH, MilvusIndex, _milvus, every_row

HASH_LENGTH = 128
_UNIT = [1.0, 0.0]


class MilvusHashes:
    def __init__(self, uri: str, collection: str) -> None:
        # A MilvusIndex of dimension 2 gives the connection, the errors and the id mirror.
        self._index = _HashCollection(2, uri=uri, collection=collection)
        self._written: dict[int, str] | None = None

    def read(self) -> dict[int, str]:
        """Every id's hash as last written (by any host)."""
        found: dict[int, str] = {}

        def read(client: Any) -> None:
            found.update((int(row["id"]), str(row["hash"]))
                         for row in every_row(client, self._index.collection, ["id", "hash"]))

        self._index._call("读取内容哈希", read)
        self._written = dict(found)
        return found

    def write(self, hashes: dict[int, str]) -> None:
        """Make the collection hold exactly `hashes`, writing only what changed since the
        last read or write by this process."""
        before = self._written if self._written is not None else self.read()
        changed = [(i, h) for i, h in hashes.items() if before.get(i) != h]
        gone = np.array([i for i in before if i not in hashes], dtype=np.int64)
        for start in range(0, len(changed), WRITE_BATCH):
            rows = [{"id": i, "hash": h, "vector": _UNIT}
                    for i, h in changed[start:start + WRITE_BATCH]]
            self._index._call("写入内容哈希", lambda c, rows=rows: c.upsert(
                self._index.collection, rows))
        if gone.size:
            self._index._call("删除内容哈希", lambda c: c.delete(
                self._index.collection, ids=gone.tolist()))
        self._written = dict(hashes)


class _HashCollection(MilvusIndex):
    """A MilvusIndex whose collection also has the `hash` field."""

    FIELDS = frozenset({"id", "hash", "vector"})

    def _create(self) -> None:
        pymilvus = _milvus()

        def create(client: Any) -> None:
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
            schema.add_field("hash", pymilvus.DataType.VARCHAR, max_length=HASH_LENGTH)
            schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=self.dimension)
            params = client.prepare_index_params()
            params.add_index("vector", index_type="FLAT", metric_type="IP")
            client.create_collection(self.collection, schema=schema, index_params=params,
                                     consistency_level="Strong")

        self._create_once(create)

    def _read_ids(self) -> np.ndarray:
        return np.empty(0, dtype=np.int64)  # not needed: `read` gives ids with their hashes
