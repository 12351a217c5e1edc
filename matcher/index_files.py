"""Where the index files live on disk, and how to copy one side as exactly one save.

    <home>/indexes/<side>/
        hashes.json   written last by every save: the item hashes, the change-log id, and
                      the sha256 of each file of that save (`files`, keyed by folder name)
        vectors/      first window of every item (a vector index: matcher.vector_common,
        windows/      further windows of long texts   `index.json` naming its data file)
        lexical/      the BM25 postings (LexicalIndex.data_path)

`matcher.indexing` writes and reads this layout; `copy_saved_side` copies it for a backup.
Both take the names from here, so a change of layout changes the copy with it instead of
leaving backups that silently miss a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from matcher.lexical import LexicalIndex
from matcher.types import Side
from matcher.vector_common import SIDECAR_NAME

INDEXES_DIR = "indexes"
HASHES_FILE = "hashes.json"
VECTORS_DIR = "vectors"
WINDOWS_DIR = "windows"
LEXICAL_DIR = "lexical"
VECTOR_DIRS = (VECTORS_DIR, WINDOWS_DIR)
# How vectors are laid out on disk; an index saved under another layout is rebuilt.
# 2: first window in `vectors/`, further windows of long texts in `windows/`.
LAYOUT = 2
CHUNK = 1024 * 1024


def indexes_folder(home: Path) -> Path:
    return Path(home) / INDEXES_DIR


def side_folder(home: Path, side: Side) -> Path:
    return indexes_folder(home) / side


class _Moving(Exception):
    """The files read do not belong to one save: a save went on while we copied."""


def _copy_hashed(source: Path, target: Path) -> str:
    """Copy and hash in one read; the copy is fsynced. Returns the sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _copy_once(source: Path, target: Path) -> str | None:
    """One attempt; None when the copy is one save, else why it is not usable. Raises
    _Moving (or FileNotFoundError) when a save went on meanwhile."""
    _copy_hashed(source / HASHES_FILE, target / HASHES_FILE)
    files = json.loads((target / HASHES_FILE).read_text("utf-8")).get("files")
    if not isinstance(files, dict):
        return "索引格式较旧（hashes.json 未记录文件校验和）"
    for folder in VECTOR_DIRS:
        _copy_hashed(source / folder / SIDECAR_NAME, target / folder / SIDECAR_NAME)
        sidecar = json.loads((target / folder / SIDECAR_NAME).read_text("utf-8"))
        if sidecar.get("sha256") != files.get(folder):
            raise _Moving
        data_name = Path(str(sidecar["file"])).name
        if _copy_hashed(source / folder / data_name,
                        target / folder / data_name) != sidecar["sha256"]:
            raise _Moving
    words = LexicalIndex.data_path(source / LEXICAL_DIR)
    if _copy_hashed(words, target / LEXICAL_DIR / words.name) != files.get(LEXICAL_DIR):
        raise _Moving
    return None


def copy_saved_side(source: Path, target: Path, *, attempts: int = 5,
                    retry_seconds: float = 0.2) -> str | None:
    """Copy one side's committed files from `source` to `target` (a new folder) without
    taking the index folder's lock; None when done, else why the side was left out (Chinese,
    for the user), with nothing left at `target`.

    Every save writes hashes.json last, and it records the checksum of each file of that
    save. So hashes.json is copied first and each file after it must carry that checksum:
    then the copy is exactly one save, whatever other processes did meanwhile. Otherwise a
    save was under way (or its data file was swept), and the side is tried again, up to
    `attempts` times `retry_seconds` apart."""
    source, target = Path(source), Path(target)
    if not (source / HASHES_FILE).is_file():
        return "索引不存在"
    reason = "索引正在写入"
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry_seconds)
        shutil.rmtree(target, ignore_errors=True)
        try:
            problem = _copy_once(source, target)
        except (_Moving, FileNotFoundError):
            reason = "索引正在写入"
            continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            reason = f"无法读取索引（{type(error).__name__}）"
            continue
        if problem is None:
            return None
        reason = problem
        break
    shutil.rmtree(target, ignore_errors=True)
    return reason
