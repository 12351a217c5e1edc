"""The lexical side on Milvus: its own full-text search (a BM25 function), shared by every worker.

Each side's texts are a collection `<prefix>_<side>_text`: `id`, `words` (the text cut by the
side's own segmenter, jieba plus the domain vocabulary, as `matcher.lexical` cuts it),
`version` (what the row was written from: `row_version`), `facets` (as the vector collections
hold them, so filters run inside the search) and `sparse`, which Milvus derives from `words`
with a BM25 function and scores with k1 = 1.5, b = 0.75, the in-process index's parameters.

Why our cut and not Milvus's jieba analyzer: documents and queries must be cut by one
segmenter with one vocabulary, and the explanations, the query-side weights and the strength
all read the words our segmenter makes. So each word is made safe for a whitespace cut
(`safe_word`) and Milvus's analyzer only splits at the spaces (`standard` on Milvus Lite,
which has no `whitespace`; `whitespace` on a server). With that, Milvus Lite's scores are the
in-process BM25's times (k1 + 1), which `FullTextScores` divides out (`tests/engine/
test_lexical_milvus.py` checks they agree).

A query's words are weighted by the side it comes from (`LexicalIndex.query_weight`); Milvus
counts a repeated query word again, so a word of weight w is sent round(w * QUANTUM) times and
the scores divided by QUANTUM: the weights to 1/QUANTUM.

The workers still cut texts and keep each side's word statistics in process (explanations,
weights, the hub discount read them); Milvus holds what is searched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher.filters import Filters
from matcher.lexical import K1, B, LexicalIndex
from matcher.types import Item
from matcher.vector_milvus import (
    MAX_K,
    READ_BATCH,
    UNSEEN_SLACK,
    WRITE_BATCH,
    MilvusIndex,
    _milvus,
    every_row,
    facet_document,
    milvus_filter,
)

QUANTUM = 100
VERSION = 20  # characters of a row's version
# The longest `words` a row may hold (Milvus's VARCHAR limit, in bytes); a longer cut keeps
# its start (some 20,000 Chinese words; the in-process index counts every word).
MAX_WORDS_BYTES = 65_535
_UNSAFE = re.compile(r"\W")


def safe_word(word: str) -> str:
    """`word` as one `\\w+` token (a character outside \\w becomes _<hex>_), so that any
    whitespace or word-character analyzer keeps it whole and two words stay two."""
    return _UNSAFE.sub(lambda m: f"_{ord(m.group()):x}_", word)


def vocabulary_mark(vocabulary: Sequence[str]) -> str:
    """A short fingerprint of a segmenter's vocabulary: rows cut with another are stale."""
    return hashlib.sha1("\n".join(vocabulary).encode()).hexdigest()[:16]


def row_version(item: Item, mark: str) -> str:
    """What a row was written from: the item's text and facets, cut with vocabulary `mark`.
    A row whose version differs (an edit or a vocabulary change whose write was lost) is
    written again by the next full sync."""
    facets = json.dumps(facet_document(item.facets), sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(f"{mark}\n{facets}\n{item.full_text}".encode()).hexdigest()[:VERSION]


def words_field(words: Iterable[str]) -> str:
    text = " ".join(safe_word(w) for w in words)
    encoded = text.encode()
    if len(encoded) <= MAX_WORDS_BYTES:
        return text
    return encoded[:MAX_WORDS_BYTES].decode(errors="ignore").rsplit(" ", 1)[0]


@dataclass
class FullTextScores:
    """One query's BM25 scores from Milvus, read as `LexicalScores` are: `top` and `of`.

    Both read the unfiltered ranking, fetched once (`_ranking`): an id beyond its `MAX_K`
    hits has a score below every one returned, and counts as 0. With filters, `top` runs
    a search filtered inside Milvus instead, and `of` still reads the unfiltered ranking,
    not a search restricted to the ids: Milvus Lite computes BM25's statistics over the
    rows a filter lets through, which would score an item differently from unfiltered."""

    index: MilvusFullText
    query: str
    scale: float
    filters: Filters | None
    # The ids this process has applied: another may have added rows it does not know yet.
    served: Container[int]
    known: dict[int, float] = field(default_factory=dict)
    _fetched: bool = False  # has `known` the unfiltered ranking?

    def _ranking(self) -> None:
        """The unfiltered ranking, as deep as Milvus goes (every positive score up to
        `MAX_K`), in one search: `top` and `of` both read it, and Milvus scores every
        posting whatever the limit, so a deeper limit costs only the transfer."""
        if self._fetched:
            return
        depth = min(max(self.index.count(), 1), MAX_K)
        hits = self.index.search(self.query, depth, "")
        self.known.update((i, s / self.scale) for i, s in hits)
        self._fetched = True

    def top(self, k: int, *, allowed_ids: np.ndarray | None = None) -> list[tuple[int, float]]:
        if not self.query:
            return []
        asked = k + UNSEEN_SLACK
        if self.filters:
            hits = self.index.search(self.query, min(asked, MAX_K),
                                     milvus_filter(self.filters))
            scored = [(i, s / self.scale) for i, s in hits]
        else:
            self._ranking()
            scored = sorted(self.known.items(), key=lambda pair: (-pair[1], pair[0]))
        keep = None if allowed_ids is None else set(
            np.asarray(allowed_ids, dtype=np.int64).tolist())
        return [(i, s) for i, s in scored
                if s > 0 and i in self.served and (keep is None or i in keep)][:k]

    def of(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if self.query:
            self._ranking()
        return np.array([self.known.get(i, 0.0) for i in ids.tolist()], dtype=np.float32)


class MilvusFullText:
    """One side's texts on Milvus, searched with its BM25 full-text search."""

    def __init__(self, *, uri: str, collection: str) -> None:
        self._collection = _TextCollection(uri=uri, collection=collection)
        # id -> version of each row this process knows the collection holds
        self._held: dict[int, str] | None = None

    @property
    def collection(self) -> str:
        return self._collection.collection

    @property
    def location(self) -> str:
        return self._collection.location

    def _call(self, what: str, request: Callable[[Any], Any]) -> Any:
        return self._collection._call(what, request)

    # -- writing ----------------------------------------------------------------------------
    def held(self) -> dict[int, str]:
        """Each id the collection holds, with its row's version (read once, then kept up to
        date by this process's own writes)."""
        if self._held is None:
            found: dict[int, str] = {}

            def read(client: Any) -> None:
                found.update((int(row["id"]), str(row["version"])) for row in every_row(
                    client, self.collection, ["id", "version"]))

            self._call("读取全文 id", read)
            self._held = found
        return self._held

    def upsert(self, items: Sequence[Item], lexical: LexicalIndex) -> None:
        """Write these items as `lexical` cuts them (a facet-only edit too: Milvus upserts
        whole rows)."""
        mark = vocabulary_mark(lexical.vocabulary)
        held = self.held()
        for start in range(0, len(items), WRITE_BATCH):
            batch = [{"id": item.id, "words": words_field(lexical.tokenize(item.full_text)),
                      "version": row_version(item, mark), "facets": facet_document(item.facets)}
                     for item in items[start:start + WRITE_BATCH]]
            self._call("写入全文", lambda c, batch=batch: c.upsert(self.collection, batch))
            held.update((row["id"], row["version"]) for row in batch)

    def remove(self, ids: Iterable[int]) -> None:
        ids = [int(i) for i in ids]
        held = self.held()
        for start in range(0, len(ids), READ_BATCH):
            chunk = ids[start:start + READ_BATCH]
            self._call("删除全文", lambda c, chunk=chunk: c.delete(self.collection, ids=chunk))
            for i in chunk:
                held.pop(i, None)

    def reconcile(self, items: dict[int, Item], lexical: LexicalIndex) -> int:
        """Make the collection hold exactly `items` as `lexical` cuts them: rows missing or
        written from another version are written, rows of items gone are deleted. Returns
        how many rows were written or deleted."""
        mark = vocabulary_mark(lexical.vocabulary)
        held = self.held()
        stale = [item for i, item in items.items() if held.get(i) != row_version(item, mark)]
        gone = [i for i in held if i not in items]
        self.upsert(stale, lexical)
        self.remove(gone)
        return len(stale) + len(gone)

    # -- searching ---------------------------------------------------------------------------
    def scores(self, words: Sequence[str], weights: Sequence[float] | None,
               filters: Filters | None, served: Container[int]) -> FullTextScores:
        """A query's scores; `weights` (one per word, ≤ 1) as `LexicalIndex.score`'s
        `query_side` would weigh the words."""
        if weights is None:
            query, scale = words_field(words), K1 + 1
        else:
            repeated = []
            for word, weight in zip(words, weights, strict=True):
                repeated.extend([word] * max(1, round(weight * QUANTUM)))
            query, scale = words_field(repeated), (K1 + 1) * QUANTUM
        return FullTextScores(self, query, scale, filters, served)

    def search(self, query: str, limit: int, expression: str) -> list[tuple[int, float]]:
        """(id, Milvus's BM25 score) best first. Milvus Lite reports the score negated (as a
        distance); a server reports it as it is."""
        def search(client: Any) -> list[tuple[int, float]]:
            found = client.search(self.collection, data=[query], anns_field="sparse",
                                  limit=max(1, limit), filter=expression, output_fields=["id"],
                                  search_params={"metric_type": "BM25"})
            return [(int(hit["id"]), abs(float(hit["distance"]))) for hit in found[0]]

        return self._call("全文检索", search)

    def count(self) -> int:
        return len(self.held())

    def drop(self) -> None:
        self._call("删除集合", lambda c: c.drop_collection(self.collection))
        self._held = {}
        self._collection._open()


class _TextCollection(MilvusIndex):
    """A MilvusIndex's connection, errors and creation race for the text collection."""

    FIELDS = frozenset({"id", "words", "version", "facets", "sparse"})

    def __init__(self, *, uri: str, collection: str) -> None:
        super().__init__(1, uri=uri, collection=collection)

    def _open(self) -> None:
        def layout(client: Any) -> bool | None:
            if not client.has_collection(self.collection):
                return None
            fields = {f["name"] for f in client.describe_collection(self.collection)["fields"]}
            return fields >= self.FIELDS

        current = self._call("读取集合", layout)
        if current is False:  # an older layout: derived data, filled again by the sync
            self._call("删除集合", lambda c: c.drop_collection(self.collection))
        if not current:
            self._create()
        self._call("加载集合", lambda c: c.load_collection(self.collection))

    def _create(self) -> None:
        pymilvus = _milvus()

        def made(client: Any, tokenizer: str) -> None:
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
            schema.add_field("words", pymilvus.DataType.VARCHAR, max_length=MAX_WORDS_BYTES,
                             enable_analyzer=True, analyzer_params={"tokenizer": tokenizer})
            schema.add_field("version", pymilvus.DataType.VARCHAR, max_length=VERSION)
            schema.add_field("facets", pymilvus.DataType.JSON)
            schema.add_field("sparse", pymilvus.DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(pymilvus.Function(
                name=f"{self.collection}_bm25", function_type=pymilvus.FunctionType.BM25,
                input_field_names=["words"], output_field_names=["sparse"]))
            params = client.prepare_index_params()
            params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                             params={"bm25_k1": K1, "bm25_b": B})
            client.create_collection(self.collection, schema=schema, index_params=params,
                                     consistency_level="Strong")

        def create(client: Any) -> None:
            # Our words are \w+ tokens joined by spaces: cut at the spaces. A server has the
            # `whitespace` tokenizer (its `standard` would split Chinese into characters);
            # Milvus Lite has not, and its `standard` (\w+) cuts our words at the spaces too.
            lite = str(client.get_server_version()).startswith("milvus_lite")
            made(client, "standard" if lite else "whitespace")

        self._create_once(create)
