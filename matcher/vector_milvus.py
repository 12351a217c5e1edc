"""The vector index on Milvus: a collection on a Milvus server, or in a Milvus Lite file.

The same code serves both: `uri` is `http://host:19530` for a Milvus standalone or cluster,
or a local path, which pymilvus opens with Milvus Lite (the embedded engine from PyPI; one
process per file, so several workers share one through `milvus-lite server`, as they would a
real server).

The collection holds `id` (the database id, primary key) and `vector`; search is inner
product, so the score is the cosine, as in every backend. Every edit is written to Milvus at
once (`persistent`): saving writes only a small pointer and the sidecar under the side's
folder, and a snapshot needs no copy. The ids are mirrored in memory (8 bytes each) so that
`ids()` and `count()` cost no round trip; every process applies the same change log, so each
mirror follows the edits of the others.

A Milvus that cannot be reached, or that fails a request, raises `IndexUnavailableError`
(the site answers 503); the database stays the source of truth and the next sync catches up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from matcher.filters import FILTERABLE, Filters
from matcher.vector_common import (
    DimensionMismatchError,
    Hits,
    IndexFileError,
    IndexUnavailableError,
    as_ids,
    as_queries,
    as_vectors,
    check_k,
    commit_index_files,
    exact_top_k,
    open_committed,
    sorted_unique,
    utc_now_iso,
)

KIND = "milvus"
# Milvus refuses a larger limit (topk) per search.
MAX_K = 16_384
# Rows per insert/upsert request (a few MB at 384 dimensions: well under gRPC's 64 MB).
WRITE_BATCH = 2_000
# Extra hits asked of a search, for items other processes added that this one does not know
# yet (a search never returns those).
UNSEEN_SLACK = 16
# Ids per get/delete request.
READ_BATCH = 4_000
# An allowed set this small is searched exactly here, from its fetched vectors: one get
# instead of a search whose filter names every id.
FETCH_ALLOWED_BELOW = 2_000
INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX")
# Build parameters a Milvus server applies (milvus-lite 3.2.2 reads none of them from pymilvus
# 3.0.2 and uses its own defaults: HNSW's equal these; IVF gets 128 lists per segment).
BUILD_PARAMS: dict[str, dict[str, int]] = {
    "HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024}}
HNSW_EF = 128
IVF_NPROBE = 256  # of 1,024 lists on a server
_NOT_LOADED = 101  # pymilvus' code for "collection is released"
_CONNECT_FAILED = 2  # ... and for "cannot reach the server"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")

T = TypeVar("T")


def _milvus() -> Any:
    try:
        import pymilvus
    except ImportError as error:  # installed with the requirements; say so if it is not
        raise IndexUnavailableError(
            "INDEX_BACKEND=milvus 需要 pymilvus（pip install -r requirements.txt）") from error
    return pymilvus


def redacted(uri: str) -> str:
    """The URI without a password, for messages and the sidecar."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


class _NoClientTimestampNotes(logging.Filter):
    """pymilvus notes at each paged read that Milvus Lite has no timestamp service and that it
    uses the client's clock instead: true, harmless (every collection here is read with
    Strong consistency), and hundreds of lines in a worker's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_NoClientTimestampNotes())

_CLIENTS: dict[str, Any] = {}


def client_for(uri: str) -> Any:
    """One `MilvusClient` per URI per process (a Milvus Lite file admits one opener)."""
    client = _CLIENTS.get(uri)
    if client is None:
        pymilvus = _milvus()
        if "://" not in uri:  # a Milvus Lite file: its folder is ours to make
            Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            client = pymilvus.MilvusClient(uri=uri, timeout=10)
        except Exception as error:  # pymilvus raises several kinds for "cannot connect"
            hint = "" if "://" in uri else (
                "（Milvus Lite 文件同时只允许一个进程打开：几个进程共用索引时请用 Milvus 服务器）")
            raise IndexUnavailableError(
                f"无法连接 Milvus {redacted(uri)}{hint}: {error}") from error
        _CLIENTS[uri] = client
    return client


def every_row(client: Any, collection: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    """Every row of `collection` with these fields, read in pages (a query's limit is 16,384)."""
    iterator = client.query_iterator(collection, batch_size=10_000, filter="",
                                     output_fields=fields)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


def _forget_client(uri: str, client: Any) -> None:
    if _CLIENTS.get(uri) is client:
        del _CLIENTS[uri]
        with contextlib.suppress(Exception):
            client.close()


def close_client(uri: str) -> None:
    """Close this process's client of `uri` (Milvus Lite then releases its file)."""
    client = _CLIENTS.pop(uri, None)
    if client is not None:
        client.close()


class MilvusIndex:
    """One Milvus collection behind the `VectorIndex` contract."""

    persistent = True
    FIELDS = frozenset({"id", "vector", "facets"})

    def __init__(self, dimension: int, *, uri: str, collection: str,
                 index_type: str = "FLAT") -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if not _NAME.match(collection):
            raise ValueError(f"collection name {collection!r}: letters, digits and _ only")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        self.dimension = int(dimension)
        self.uri = uri
        self.collection = collection
        self.index_type = index_type
        self.meta: dict[str, Any] = {}
        self._built_at = utc_now_iso()
        self._ids = np.empty(0, dtype=np.int64)  # sorted
        self._open()

    @property
    def kind(self) -> str:
        return KIND

    @property
    def location(self) -> str:
        """Where the vectors live: a store compares it with where its settings point."""
        return f"{redacted(self.uri)}#{self.collection}"

    # -- the connection ------------------------------------------------------------------
    def _call(self, what: str, request: Callable[[Any], T]) -> T:
        for attempt in (1, 2):
            client = client_for(self.uri)
            try:
                try:
                    return request(client)
                except Exception as error:
                    if not _not_loaded(error):
                        raise
                    # A restarted Milvus Lite server comes back with its collections released.
                    client.load_collection(self.collection)
                    return request(client)
            except (ValueError, KeyError, TypeError):
                raise
            except Exception as error:
                # A fresh client next time: a channel the server closed (a restart, or gRPC's
                # GOAWAY after idle keep-alive pings) does not recover by itself.
                _forget_client(self.uri, client)
                if attempt == 1 and _connection_lost(error):
                    continue
                raise IndexUnavailableError(
                    f"Milvus {redacted(self.uri)} {what} 失败（集合 {self.collection}）: {error}"
                ) from error
        raise AssertionError("unreachable")

    def _open(self) -> None:
        """Attach to the collection (created if absent) and mirror its ids."""
        def existing_dimension(client: Any) -> int | None:
            if not client.has_collection(self.collection):
                return None
            fields = {f["name"]: f for f in client.describe_collection(self.collection)["fields"]}
            if not fields.keys() >= self.FIELDS:
                return -1  # an older layout
            return int(fields["vector"]["params"]["dim"])

        dimension = self._call("读取集合", existing_dimension)
        if dimension is not None and dimension != self.dimension:
            # Vectors of another width come from another model, and an older layout lacks a
            # field: useless to this code either way, and derived data: the store's sync
            # fills the new collection from the database (and the embedding cache).
            self._call("删除集合", lambda c: c.drop_collection(self.collection))
            dimension = None
        if dimension is None:
            self._create()
        self._call("加载集合", lambda c: c.load_collection(self.collection))
        self._ids = self._read_ids()

    def _create(self) -> None:
        pymilvus = _milvus()

        def create(client: Any) -> None:
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
            schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=self.dimension)
            # The item's filterable facets ({name: [values]}, "date"): filters run inside
            # the search (`milvus_filter`).
            schema.add_field("facets", pymilvus.DataType.JSON)
            params = client.prepare_index_params()
            options = BUILD_PARAMS.get(self.index_type, {})
            params.add_index("vector", index_type=self.index_type, metric_type="IP",
                             params=options)
            client.create_collection(self.collection, schema=schema, index_params=params,
                                     consistency_level="Strong")

        self._create_once(create)

    def _create_once(self, create: Callable[[Any], None]) -> None:
        """Create the collection; two workers starting at once both try, and the one that
        loses finds it made."""
        try:
            self._call("创建集合", create)
        except IndexUnavailableError:
            if not self._call("读取集合", lambda c: c.has_collection(self.collection)):
                raise

    def _read_ids(self) -> np.ndarray:
        def read(client: Any) -> np.ndarray:
            found = [int(row["id"]) for row in every_row(client, self.collection, ["id"])]
            return np.sort(np.array(found, dtype=np.int64))

        return self._call("读取 id", read)

    # -- the contract --------------------------------------------------------------------
    def build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension, ids.size)
        self._call("清空集合", lambda c: c.drop_collection(self.collection))
        self._ids = np.empty(0, dtype=np.int64)
        self._create()
        self._call("加载集合", lambda c: c.load_collection(self.collection))
        self._write(ids, vectors, "insert")
        self._built_at = utc_now_iso()

    def add(self, ids: np.ndarray, vectors: np.ndarray, *,
            facets: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Upsert; `facets` (per row, `facet_document`'s form) are what filters see."""
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension, ids.size)
        if facets is not None and len(facets) != ids.size:
            raise ValueError(f"{ids.size} ids but {len(facets)} facet rows")
        self._write(ids, vectors, "upsert", facets)

    def set_facets(self, ids: np.ndarray, facets: Sequence[Mapping[str, Any]]) -> None:
        """New facets for stored ids (a facet-only edit): the rows are written again with
        their own vectors."""
        ids = as_ids(ids)
        if len(facets) != ids.size:
            raise ValueError(f"{ids.size} ids but {len(facets)} facet rows")
        known = self._known(ids)
        ids, facets = ids[known], [f for f, k in zip(facets, known.tolist(), strict=True) if k]
        if ids.size:
            self._write(ids, self.vectors(ids), "upsert", facets)

    def stored_facets(self) -> dict[int, dict[str, Any]]:
        """Every stored id's facets, as Milvus holds them (a sync compares them)."""
        def read(client: Any) -> dict[int, dict[str, Any]]:
            return {int(row["id"]): dict(row["facets"] or {})
                    for row in every_row(client, self.collection, ["id", "facets"])}

        return self._call("读取筛选字段", read)

    def _write(self, ids: np.ndarray, vectors: np.ndarray, how: str,
               facets: Sequence[Mapping[str, Any]] | None = None) -> None:
        for start in range(0, ids.size, WRITE_BATCH):
            end = start + WRITE_BATCH
            chunk_facets = facets[start:end] if facets is not None else [{}] * len(ids[start:end])
            rows = [{"id": int(i), "vector": v, "facets": dict(f)} for i, v, f in
                    zip(ids[start:end], vectors[start:end], chunk_facets, strict=True)]
            self._call("写入向量", lambda c, rows=rows: getattr(c, how)(self.collection, rows))
            # Mirrored batch by batch: a failure half-way leaves the mirror naming exactly
            # what Milvus holds.
            self._ids = sorted_unique(np.concatenate([self._ids, ids[start:start + WRITE_BATCH]]))

    def remove(self, ids: np.ndarray) -> int:
        wanted = sorted_unique(as_ids(ids, unique=False))
        present = wanted[np.isin(wanted, self._ids)]
        for chunk in _chunks(present, READ_BATCH):
            self._call("删除向量",
                       lambda c, chunk=chunk: c.delete(self.collection, ids=chunk.tolist()))
            self._ids = self._ids[~np.isin(self._ids, chunk)]
        return int(present.size)

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None,
               filters: Filters | None = None) -> Hits:
        """As the contract says; `filters` instead of `allowed_ids` runs them inside Milvus on
        the stored facets (`milvus_filter`), with no list of ids to send."""
        queries = as_queries(queries, self.dimension)
        k = check_k(k)
        filter_text = ""
        if filters and allowed_ids is None:
            if len(queries) == 0 or not self.count():
                return [[] for _ in range(len(queries))]
            return self._search_known(queries, min(k, self.count()), milvus_filter(filters))
        if allowed_ids is not None:
            allowed = sorted_unique(as_ids(allowed_ids, unique=False))
            allowed = allowed[np.isin(allowed, self._ids)]
            if allowed.size < FETCH_ALLOWED_BELOW:
                return exact_top_k(queries, allowed, self.vectors(allowed), k)
            filter_text = f"id in {allowed.tolist()}"
            stored = int(allowed.size)
        else:
            stored = self.count()
        if stored == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        return self._search_known(queries, min(k, stored), filter_text)

    def _search_known(self, queries: np.ndarray, k: int, filter_text: str) -> Hits:
        """The best k ids this process knows of. The collection is shared: it may already
        hold items another process added and this one has not read from the change log yet
        (they are not in its lists either), so ask for a few more and, while some query
        comes back short, for more again."""
        limit = min(k + UNSEEN_SLACK, MAX_K)
        while True:
            answer = self._call("搜索", lambda c, limit=limit: c.search(
                self.collection, data=[q for q in queries], limit=limit, filter=filter_text,
                output_fields=["id"], search_params=self._search_params(limit),
                consistency_level="Strong"))
            hits: Hits = []
            exhausted = True
            for row in answer:
                ids = np.array([int(hit["id"]) for hit in row], dtype=np.int64)
                scores = [float(hit["distance"]) for hit in row]
                known = self._known(ids)
                pairs = sorted(((int(i), scores[n]) for n, i in enumerate(ids.tolist())
                                if known[n]), key=lambda pair: (-pair[1], pair[0]))
                hits.append(pairs[:k])
                if len(pairs) < k and len(row) == limit:
                    exhausted = False
            if exhausted or limit >= MAX_K:
                return hits
            limit = min(limit * 4, MAX_K)

    def _search_params(self, limit: int) -> dict[str, Any]:
        """How widely an ANN index searches: HNSW's candidate list at least twice the hits
        asked for, and IVF a quarter of its lists, since real e5 queries need 20-40% of the
        lists for recall 0.97 where clustered synthetic vectors need 2-3%
        (`benchmarks/ivf_real.py`)."""
        params: dict[str, Any] = {}
        if self.index_type == "HNSW":
            params = {"ef": max(HNSW_EF, 2 * limit)}
        elif self.index_type == "IVF_FLAT":
            params = {"nprobe": IVF_NPROBE}
        return {"metric_type": "IP", "params": params}

    def _known(self, ids: np.ndarray) -> np.ndarray:
        """Which of `ids` are in this process's view (the mirror)."""
        if not self._ids.size:
            return np.zeros(ids.size, dtype=bool)
        at = np.minimum(np.searchsorted(self._ids, ids), self._ids.size - 1)
        return self._ids[at] == ids

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        wanted = as_ids(ids, unique=False)
        out = np.empty((wanted.size, self.dimension), dtype=np.float32)
        if not wanted.size:
            return out
        distinct = sorted_unique(wanted)
        missing = distinct[~np.isin(distinct, self._ids)]
        if missing.size:
            raise KeyError(f"ids not in the index: {missing[:10].tolist()}")
        found: dict[int, np.ndarray] = {}
        for chunk in _chunks(distinct, READ_BATCH):
            rows = self._call("读取向量", lambda c, chunk=chunk: c.get(
                self.collection, ids=chunk.tolist(), output_fields=["vector"]))
            for row in rows:
                found[int(row["id"])] = np.asarray(row["vector"], dtype=np.float32)
        # An id another process removed since this one last read the change log has no
        # vector any more: it scores 0 here until this process applies that change too.
        zero = np.zeros(self.dimension, dtype=np.float32)
        for row, i in enumerate(wanted.tolist()):
            out[row] = found.get(i, zero)
        return out

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def count(self) -> int:
        return int(self._ids.size)

    def copy(self) -> MilvusIndex:
        """A new collection with the same rows (a store never copies a persistent index: its
        snapshot is the collection itself)."""
        name = f"{self.collection[:200]}_copy_{np.random.default_rng().integers(1 << 40):x}"
        clone = MilvusIndex(self.dimension, uri=self.uri, collection=name,
                            index_type=self.index_type)
        facets = self.stored_facets()
        for ids, vectors in self._rows():
            clone._write(ids, vectors, "insert", [facets.get(int(i), {}) for i in ids])
        clone._built_at, clone.meta = self._built_at, dict(self.meta)
        return clone

    def _rows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for chunk in _chunks(self._ids, READ_BATCH):
            yield chunk, self.vectors(chunk)

    def drop(self) -> None:
        """Delete the collection itself (tests, and copies no longer wanted)."""
        self._call("删除集合", lambda c: c.drop_collection(self.collection))
        self._ids = np.empty(0, dtype=np.int64)

    def save(self, directory: Path, *, model: str) -> None:
        """Flush, then record where the vectors are: a pointer file and the sidecar."""
        if not model:
            raise ValueError("save needs the name of the model that made the vectors")
        self._call("保存", lambda c: c.flush(self.collection))
        pointer = {"uri": redacted(self.uri), "collection": self.collection,
                   "index_type": self.index_type, "count": self.count(),
                   "saved_at": utc_now_iso()}

        def write(path: Path) -> None:
            path.write_text(json.dumps(pointer, ensure_ascii=False), encoding="utf-8")

        self.meta = commit_index_files(
            Path(directory), "json", write,
            {"kind": KIND, "model": model, "dimension": self.dimension, "count": self.count(),
             "metric": "inner_product", "built_at": self._built_at,
             "collection": self.collection, "index_type": self.index_type,
             "location": self.location})

    @classmethod
    def load(cls, directory: Path, *, uri: str | None = None) -> MilvusIndex:
        """Reattach to the collection a save recorded. `uri` (with its password) is the
        settings' one; without it the sidecar's is used, which carries none."""
        sidecar, data_path = open_committed(Path(directory), (KIND,))
        try:
            pointer = json.loads(data_path.read_text(encoding="utf-8"))
            collection, index_type = str(pointer["collection"]), str(pointer["index_type"])
            recorded_uri = str(pointer["uri"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise IndexFileError(
                f"{data_path} is not a readable Milvus pointer: {error}") from error
        if collection != sidecar.get("collection"):
            raise IndexFileError(f"{data_path}: collection differs from the sidecar's")
        index = cls(sidecar["dimension"], uri=uri or recorded_uri, collection=collection,
                    index_type=index_type)
        if index.dimension != sidecar["dimension"]:
            raise DimensionMismatchError(f"{collection}: not {sidecar['dimension']}-d")
        # The count is not checked against the sidecar's: the collection is shared, and other
        # processes' edits since this save are expected (the change log and sync reconcile).
        index._built_at = sidecar["built_at"]
        index.meta = sidecar
        return index


def facet_document(facets: Mapping[str, str]) -> dict[str, Any]:
    """An item's facets as stored for filtering: each filterable facet's values as a list (a
    multi-valued facet is ';'-joined in `Item.facets`), and the date's first ten characters."""
    document: dict[str, Any] = {
        name: sorted(v for v in (facets.get(name) or "").split(";") if v)
        for name in sorted(FILTERABLE)}
    document["date"] = (facets.get("date") or "")[:10]
    return document


def milvus_filter(filters: Filters) -> str:
    """`filters` as a Milvus boolean expression over `facet_document`'s fields: OR within a
    facet, AND across, as `Filters.allows`. Values are written as JSON string literals, so a
    quote or backslash in one cannot change the expression."""
    terms = []
    for name in sorted(filters.facets):
        values = ", ".join(json.dumps(v, ensure_ascii=False) for v in sorted(filters.facets[name]))
        terms.append(f'json_contains_any(facets[{json.dumps(name)}], [{values}])')
    if filters.date_from or filters.date_to:
        terms.append('facets["date"] != ""')
    if filters.date_from:
        terms.append(f'facets["date"] >= "{filters.date_from.isoformat()}"')
    if filters.date_to:
        terms.append(f'facets["date"] <= "{filters.date_to.isoformat()}"')
    return " and ".join(terms)


def _connection_lost(error: Exception) -> bool:
    """An error of the connection, not of the request: worth one try on a new client."""
    return getattr(error, "code", None) == _CONNECT_FAILED or "UNAVAILABLE" in str(error)


def _not_loaded(error: Exception) -> bool:
    return getattr(error, "code", None) == _NOT_LOADED or "call load()" in str(error)


def _chunks(ids: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, ids.size, size):
        yield ids[start:start + size]
