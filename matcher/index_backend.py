"""Where a store's vector indexes live: in this process (FAISS, saved as files) or on Milvus.

`IndexBackend` is what the settings choose (`INDEX_BACKEND`, `MILVUS_URI`...), handed to the
`IndexStore`: it makes each side's two indexes (the items' first windows and their later
windows) and reopens what a save recorded. With Milvus, each is a collection named
`<prefix>_<side>_<role>` on the server (or Milvus Lite file) the URI names, shared by every
process that points there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matcher.lexical_milvus import MilvusFullText
from matcher.milvus_hashes import MilvusHashes
from matcher.types import Side
from matcher.vector_common import read_sidecar
from matcher.vector_index import VectorIndex, new_index, open_index
from matcher.vector_milvus import INDEX_TYPES, MilvusIndex, redacted
from matcher.vector_milvus import KIND as MILVUS_KIND

BACKENDS = ("faiss", "milvus")
ROLES = ("vectors", "windows")
LEXICAL_PLACES = ("milvus", "process")


@dataclass(frozen=True)
class IndexBackend:
    name: str = "faiss"
    milvus_uri: str = ""
    collection_prefix: str = "g60"
    milvus_index_type: str = "FLAT"
    # "milvus": the BM25 side is searched with Milvus's full-text search too
    # (`matcher.lexical_milvus`); "process": in each process, as with FAISS.
    milvus_lexical: str = "milvus"

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"index backend must be one of {BACKENDS}, got {self.name!r}")
        if self.name == "milvus" and not self.milvus_uri:
            raise ValueError("the Milvus backend needs a URI (MILVUS_URI)")
        if self.milvus_index_type not in INDEX_TYPES:
            raise ValueError(f"Milvus index type must be one of {INDEX_TYPES}")
        if self.milvus_lexical not in LEXICAL_PLACES:
            raise ValueError(f"the Milvus lexical side must be one of {LEXICAL_PLACES}")

    @property
    def shared(self) -> bool:
        """Do the indexes live outside the process (one copy for every worker)?"""
        return self.name == "milvus"

    def collection(self, side: Side, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        return f"{self.collection_prefix}_{side}_{role}"

    def new(self, dimension: int, side: Side, role: str) -> VectorIndex:
        """The index of one side's role; on Milvus, the existing collection if there is one."""
        if self.name == "faiss":
            return new_index(dimension)
        return MilvusIndex(dimension, uri=self.milvus_uri,
                           collection=self.collection(side, role),
                           index_type=self.milvus_index_type)

    @property
    def full_text_factory(self) -> Callable[[Side], MilvusFullText] | None:
        """What makes each side's full-text collection, `<prefix>_<side>_text` (None: the
        BM25 side is searched in the process)."""
        if self.name == "faiss" or self.milvus_lexical != "milvus":
            return None
        return lambda side: MilvusFullText(uri=self.milvus_uri,
                                           collection=f"{self.collection_prefix}_{side}_text")

    def hashes(self, side: Side) -> MilvusHashes | None:
        """Where the shared content hashes of a side live (None: in the folder only)."""
        if self.name == "faiss":
            return None
        return MilvusHashes(self.milvus_uri, f"{self.collection_prefix}_{side}_hashes")

    def location(self, side: Side, role: str) -> str | None:
        """Where this backend keeps that index (None: in the process, from its files)."""
        if self.name == "faiss":
            return None
        return f"{redacted(self.milvus_uri)}#{self.collection(side, role)}"

    def open(self, directory: Path) -> VectorIndex:
        """What a save in `directory` recorded; a Milvus one through this backend's URI."""
        if read_sidecar(directory)["kind"] == MILVUS_KIND:
            return MilvusIndex.load(directory, uri=self.milvus_uri or None)
        return open_index(directory)
