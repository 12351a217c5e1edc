"""What every vector index backend shares: input checks, exact top-k, and crash-safe files.

On disk an index is a directory holding one data file and the JSON sidecar `index.json`.
The data file gets a fresh name on every save and the sidecar names it, so replacing the
sidecar (atomically, last) is the single commit point: a crash at any moment leaves either
the old pair or the new pair, never a new index under an old sidecar.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

SIDECAR_NAME = "index.json"
FORMAT_VERSION = 1
DATA_PREFIX = "vectors-"
TEMP_PREFIX = ".tmp-"
LOCK_NAME = ".write.lock"
# Stored vectors must be unit length (inner product == cosine); float32 rounding and
# different normalisation code paths stay well inside this.
NORM_TOLERANCE = 1e-3

Hits = list[list[tuple[int, float]]]


class DimensionMismatchError(ValueError):
    """Vectors or queries whose width differs from the index's dimension."""


class IndexFileError(RuntimeError):
    """An index directory that is missing, incomplete, corrupt or inconsistent."""


class IndexUnavailableError(RuntimeError):
    """The index service (Milvus) cannot be reached or failed a request: the site answers
    503 and the next sync catches up; nothing in the database is lost."""


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- input checks -------------------------------------------------------------------


def as_ids(ids: np.ndarray | list[int], *, unique: bool = True) -> np.ndarray:
    """A 1-D int64 copy of `ids`; duplicates refused when `unique` (an upsert batch must
    say once what each id holds)."""
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"ids must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=True)
    if array.size and array.min() < 0:
        # FAISS marks "no result" with id -1; database ids are never negative anyway
        raise ValueError(f"ids must be non-negative, got {int(array.min())}")
    if unique and array.size:
        ordered = np.sort(array)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if repeated.size:
            raise ValueError(f"duplicate ids in one batch: {np.unique(repeated)[:10].tolist()}")
    return array


def sorted_unique(ids: np.ndarray) -> np.ndarray:
    """np.unique for int64 ids, by sorting: numpy 2's hash-based np.unique is ~20x slower
    here, which showed up as most of a filtered search's time with 100k allowed ids."""
    ordered = np.sort(ids)
    if ordered.size < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def as_vectors(vectors: np.ndarray, dimension: int, rows: int) -> np.ndarray:
    """Contiguous float32 (rows, dimension) matrix of finite unit (or zero) vectors."""
    matrix = np.asarray(vectors)
    if matrix.ndim != 2:
        raise ValueError(f"vectors must be a 2-D matrix, got shape {matrix.shape}")
    if matrix.shape[1] != dimension:
        raise DimensionMismatchError(
            f"vectors have dimension {matrix.shape[1]}, this index holds {dimension}-d vectors"
        )
    if matrix.shape[0] != rows:
        raise ValueError(f"{rows} ids but {matrix.shape[0]} vectors")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(matrix, axis=1)
    bad = np.flatnonzero((np.abs(norms - 1.0) > NORM_TOLERANCE) & (norms != 0.0))
    if bad.size:
        raise ValueError(
            f"vectors must be L2-normalised; row {int(bad[0])} has norm {float(norms[bad[0]]):.4f}"
        )
    return matrix


def as_queries(queries: np.ndarray, dimension: int) -> np.ndarray:
    """One query (1-D) or many (2-D) as a contiguous float32 (q, dimension) matrix."""
    matrix = np.asarray(queries, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise ValueError(f"queries must be a vector or a 2-D matrix, got shape {matrix.shape}")
    if matrix.shape[1] != dimension:
        raise DimensionMismatchError(
            f"queries have dimension {matrix.shape[1]}, this index holds {dimension}-d vectors"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("queries contain NaN or infinity")
    return np.ascontiguousarray(matrix)


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


# --- exact search -------------------------------------------------------------------


def exact_top_k(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> Hits:
    """Brute-force inner-product top-k, best first, ties broken by smaller id.

    The reference every other backend is tested against, and the fast path for a filtered
    search whose allowed set is small.
    """
    if ids.size == 0:
        return [[] for _ in range(len(queries))]
    k = min(k, ids.size)
    scores = queries @ vectors.T
    hits: Hits = []
    for row in scores:
        candidates = np.argpartition(-row, k - 1)[:k] if k < row.size else np.arange(row.size)
        order = np.lexsort((ids[candidates], -row[candidates]))
        best = candidates[order]
        hits.append([(int(i), float(s)) for i, s in zip(ids[best], row[best], strict=True)])
    return hits


# --- files --------------------------------------------------------------------------


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable (the file's own fsync does not)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Have `write` fill a temporary file beside `path`, make it durable, then rename it
    over `path`: readers see the old file or the complete new one, never a torn one."""
    temporary = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{path.name}")
    try:
        write(temporary)
        # faiss writes by path, so flush and fsync by reopening rather than through its handle
        with open(temporary, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    fsync_directory(path.parent)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def new_data_name(suffix: str) -> str:
    # time first so names sort by age; the random part keeps two writers apart
    return f"{DATA_PREFIX}{time.time_ns():x}-{secrets.token_hex(4)}.{suffix}"


@contextlib.contextmanager
def _writer_lock(directory: Path) -> Iterator[None]:
    """One saver at a time per directory, across processes: the sweep after a commit must
    not delete the data file of another save still on its way to its own commit."""
    with open(directory / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def commit_index_files(
    directory: Path, suffix: str, write_data: Callable[[Path], None], sidecar: dict[str, Any]
) -> dict[str, Any]:
    """Write the data file, then the sidecar naming it (the commit), then sweep the files no
    sidecar names any more. Returns the sidecar as written. Readers take no lock: they see
    the old pair or the new one (see open_committed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _writer_lock(directory):
        return _commit_locked(directory, suffix, write_data, sidecar)


def _commit_locked(
    directory: Path, suffix: str, write_data: Callable[[Path], None], sidecar: dict[str, Any]
) -> dict[str, Any]:
    data_name = new_data_name(suffix)
    data_path = directory / data_name
    write_atomically(data_path, write_data)
    sidecar = {
        "format_version": FORMAT_VERSION,
        **sidecar,
        "file": data_name,
        "file_bytes": data_path.stat().st_size,
        "sha256": sha256_of(data_path),
        "saved_at": utc_now_iso(),
    }
    text = json.dumps(sidecar, ensure_ascii=False, indent=2) + "\n"
    write_atomically(directory / SIDECAR_NAME, lambda p: p.write_text(text, encoding="utf-8"))
    _sweep(directory, keep=data_name)
    return sidecar


def _sweep(directory: Path, keep: str) -> None:
    """Remove superseded data files and temporaries left by saves that crashed."""
    for path in directory.iterdir():
        stale_data = path.name.startswith(DATA_PREFIX) and path.name != keep
        if stale_data or path.name.startswith(TEMP_PREFIX):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


REQUIRED_SIDECAR_KEYS = {
    "format_version": int,
    "kind": str,
    "model": str,
    "dimension": int,
    "count": int,
    "file": str,
    "file_bytes": int,
    "sha256": str,
    "built_at": str,
}


def read_sidecar(directory: Path) -> dict[str, Any]:
    """The sidecar of `directory`, with every required field present and well typed."""
    path = Path(directory) / SIDECAR_NAME
    if not path.is_file():
        raise IndexFileError(f"no index at {directory}: {SIDECAR_NAME} is missing")
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IndexFileError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(sidecar, dict):
        raise IndexFileError(f"{path} must hold a JSON object")
    for key, expected_type in REQUIRED_SIDECAR_KEYS.items():
        value = sidecar.get(key)
        if not isinstance(value, expected_type) or isinstance(value, bool):
            raise IndexFileError(
                f"{path}: field {key!r} must be {expected_type.__name__}, got {value!r}"
            )
    if sidecar["format_version"] != FORMAT_VERSION:
        raise IndexFileError(
            f"{path}: format_version {sidecar['format_version']} is not {FORMAT_VERSION}"
        )
    if Path(sidecar["file"]).name != sidecar["file"]:
        raise IndexFileError(f"{path}: data file {sidecar['file']!r} must be a plain file name")
    return sidecar


def open_committed(directory: Path, kinds: tuple[str, ...]) -> tuple[dict[str, Any], Path]:
    """The sidecar and verified data file of a saved index of one of `kinds`.

    Checks the data file against the sidecar's size and sha256, so a swapped, truncated or
    corrupted file is refused before any parser reads it. A concurrent save may delete the
    file between our reading the sidecar and opening it; the sidecar then names a newer
    file, so read it again.
    """
    directory = Path(directory)
    for _attempt in range(3):
        sidecar = read_sidecar(directory)
        if sidecar["kind"] not in kinds:
            raise IndexFileError(
                f"{directory}: index kind {sidecar['kind']!r} is not one of {list(kinds)}"
            )
        data_path = directory / sidecar["file"]
        try:
            size = data_path.stat().st_size
            digest = sha256_of(data_path)
        except FileNotFoundError:
            if read_sidecar(directory)["file"] != sidecar["file"]:
                continue
            raise IndexFileError(
                f"{directory}: data file {sidecar['file']} named by {SIDECAR_NAME} is missing"
            ) from None
        if size != sidecar["file_bytes"] or digest != sidecar["sha256"]:
            raise IndexFileError(
                f"{data_path} does not match {SIDECAR_NAME} (size {size} vs "
                f"{sidecar['file_bytes']}, or checksum differs): corrupt or replaced"
            )
        return sidecar, data_path
    raise IndexFileError(f"{directory}: index kept changing while it was being opened")


def check_loaded(sidecar: dict[str, Any], *, dimension: int, count: int, where: Path) -> None:
    """Refuse a data file whose contents disagree with what its sidecar promised."""
    if dimension != sidecar["dimension"]:
        raise IndexFileError(
            f"{where}: index holds {dimension}-d vectors, sidecar says {sidecar['dimension']}"
        )
    if count != sidecar["count"]:
        raise IndexFileError(
            f"{where}: index holds {count} vectors, sidecar says {sidecar['count']}"
        )
