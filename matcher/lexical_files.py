"""The BM25 index on disk: the packed arrays `LexicalIndex` saves (numpy arrays, a JSON word
list and the JSON domain vocabulary the words were cut with, in one .npz, no pickle), and the
older JSON-lines file it still reads.

The vocabulary sits in the same file as the postings so that one atomic write (and the one
checksum hashes.json records) covers both: postings can never be read back with another
vocabulary than the one that produced them. Files saved before it existed have none, which
is exactly how they were cut (jieba's base dictionary)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matcher.vector_common import write_atomically

DATA_FILE = "postings.npz"
LEGACY_FILE = "tokens.jsonl"  # schema 1: one JSON line of words per document
SCHEMA_VERSION = 2


@dataclass
class PackedWords:
    """Documents in row order, each row's words as (term id, tf) runs: the saved form."""

    terms: list[str]
    doc_ids: np.ndarray  # int64, one per row
    lengths: np.ndarray  # float32 words per row
    starts: np.ndarray  # int64, len(rows) + 1: row r's words are [starts[r], starts[r+1])
    term_ids: np.ndarray  # int32
    tfs: np.ndarray  # float32
    vocabulary: tuple[str, ...] = ()  # domain words the segmenter kept whole (sorted)


def empty_packed() -> PackedWords:
    return PackedWords([], np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(1, np.int64),
                       np.zeros(0, np.int32), np.zeros(0, np.float32))


def data_path(directory: Path) -> Path:
    """The file `save_packed` writes (or, from an older version, the file to read)."""
    path = Path(directory) / DATA_FILE
    legacy = Path(directory) / LEGACY_FILE
    return legacy if not path.exists() and legacy.exists() else path


def save_packed(packed: PackedWords, directory: Path) -> None:
    """Write a `LexicalIndex.packed()` snapshot atomically into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    terms = _json_bytes(packed.terms)
    vocabulary = _json_bytes(list(packed.vocabulary))

    def write(path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, schema=np.int64(SCHEMA_VERSION), terms=terms, doc_ids=packed.doc_ids,
                 lengths=packed.lengths, starts=packed.starts, term_ids=packed.term_ids,
                 tfs=packed.tfs, vocabulary=vocabulary)
        path.write_bytes(buffer.getbuffer())

    write_atomically(directory / DATA_FILE, write)
    (directory / LEGACY_FILE).unlink(missing_ok=True)


def _json_bytes(value: list[str]) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def read_packed(path: Path) -> PackedWords:
    """The arrays saved at `path` (a DATA_FILE), refused (ValueError) unless they agree."""
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            schema = int(data["schema"])
            terms = json.loads(data["terms"].tobytes().decode("utf-8"))
            packed = PackedWords(terms, data["doc_ids"].astype(np.int64),
                                 data["lengths"].astype(np.float32),
                                 data["starts"].astype(np.int64),
                                 data["term_ids"].astype(np.int32),
                                 data["tfs"].astype(np.float32),
                                 tuple(json.loads(data["vocabulary"].tobytes().decode("utf-8")))
                                 if "vocabulary" in data.files else ())
    except FileNotFoundError:
        raise
    except (OSError, KeyError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: unreadable lexical index: {error}") from error
    if schema != SCHEMA_VERSION:
        raise ValueError(f"{path}: unsupported lexical index schema {schema}")
    rows, entries = len(packed.doc_ids), len(packed.term_ids)
    if (len(packed.lengths) != rows or len(packed.starts) != rows + 1
            or packed.starts[-1] != entries or len(packed.tfs) != entries
            or (entries and not 0 <= packed.term_ids.min() <= packed.term_ids.max()
                < len(terms))):
        raise ValueError(f"{path}: lexical index arrays disagree (truncated?)")
    return packed


def read_legacy(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(id, words) per document of a schema 1 file (word lists as JSON lines), as saved
    before postings were kept. A truncated file raises ValueError once it is read through,
    so whoever builds from these rows must not keep them until the iteration ends."""
    with open(path, encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        if header.get("schema") != 1:
            raise ValueError(f"{path}: unsupported lexical index schema {header.get('schema')}")
        rows = 0
        for line in fh:
            doc_id, words = json.loads(line)
            yield int(doc_id), list(words)
            rows += 1
    if rows != header.get("count"):
        raise ValueError(f"{path}: truncated ({rows} of {header['count']} rows)")
