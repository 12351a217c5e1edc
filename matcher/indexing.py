"""Keep the on-disk indexes in step with the database, the source of truth.

Each side has a folder under `<home>/indexes/<side>/` holding the vector index, the BM25
token lists and `hashes.json`: the content hash of every item as it was indexed. Comparing
those with the database's hashes tells exactly what to add, re-embed or drop, so a restart,
an import or an edit only ever touches the items that changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from corpora.items import content_hashes, load_items
from embeddings.base import Encoder
from matcher.lexical import LexicalIndex
from matcher.retriever import Collection, Matcher
from matcher.types import SIDES, Side
from matcher.vector_common import IndexFileError, write_atomically
from matcher.vector_index import open_index

HASHES_FILE = "hashes.json"
# How vectors are laid out on disk; an index saved under another layout is rebuilt.
# 2: first window in `vectors/`, further windows of long texts in `windows/`.
LAYOUT = 2


@dataclass(frozen=True)
class SyncReport:
    side: Side
    added: int
    updated: int
    removed: int
    total: int
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt)

    def summary(self) -> str:
        how = "重建" if self.rebuilt else "增量同步"
        return (f"{self.side}: {how}, 新增 {self.added}, 更新 {self.updated}, "
                f"删除 {self.removed}, 共 {self.total} 条")


def _side_dir(home: Path, side: Side) -> Path:
    return home / "indexes" / side


def _write_json_atomically(path: Path, payload: object) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(payload), encoding="utf-8"))


def _difference(wanted: dict[int, str], indexed: dict[int, str]
                ) -> tuple[list[int], int, list[int]]:
    """(ids to (re)embed, how many of them are new, ids to drop)."""
    fresh = [i for i, h in wanted.items() if indexed.get(i) != h]
    added = sum(1 for i in fresh if i not in indexed)
    gone = [i for i in indexed if i not in wanted]
    return fresh, added, gone


class IndexStore:
    """Loads, repairs and saves a `Matcher`'s collections against the database."""

    def __init__(self, home: Path, encoder: Encoder) -> None:
        self.home = Path(home)
        self.encoder = encoder
        self.matcher = Matcher(encoder)
        self._indexed_hashes: dict[Side, dict[int, str]] = {side: {} for side in SIDES}

    def load(self) -> None:
        """Read whatever indexes exist on disk; missing or foreign ones start empty."""
        for side in SIDES:
            folder = _side_dir(self.home, side)
            try:
                hashes = json.loads((folder / HASHES_FILE).read_text(encoding="utf-8"))
                if hashes.get("model") != self.encoder.name or hashes.get("layout") != LAYOUT:
                    continue  # another model or layout: rebuilt on the next sync
                vectors = open_index(folder / "vectors")
                windows = open_index(folder / "windows")
                lexical = LexicalIndex.load(folder / "lexical")
            except (FileNotFoundError, IndexFileError, ValueError, json.JSONDecodeError):
                continue
            if any(index.meta.get("model") != self.encoder.name
                   or index.dimension != self.encoder.dimension for index in (vectors, windows)):
                continue
            coll = self.matcher.collections[side]
            coll.vectors, coll.windows, coll.lexical = vectors, windows, lexical
            coll.reload_window_counts()
            self._indexed_hashes[side] = {int(k): v for k, v in hashes["items"].items()}

    def sync(self, session: Session, *, progress: bool = False) -> list[SyncReport]:
        return [self.sync_side(session, side, progress=progress) for side in SIDES]

    def sync_side(self, session: Session, side: Side, *, progress: bool = False) -> SyncReport:
        coll = self.matcher.collections[side]
        wanted = content_hashes(session, side)
        indexed = self._indexed_hashes[side]
        stored_ids = set(coll.vectors.ids().tolist())
        # Anything the files disagree on (a crash between writes) is simply re-indexed.
        consistent = (stored_ids == set(indexed) == set(coll.lexical.ids().tolist())
                      and set(coll.extra_windows) <= stored_ids)
        rebuilt = not consistent and bool(stored_ids or indexed or coll.extra_windows)
        if rebuilt:
            empty_ids = np.zeros(0, dtype=np.int64)
            empty = np.zeros((0, self.encoder.dimension), dtype=np.float32)
            coll.vectors.build(empty_ids, empty)
            coll.windows.build(empty_ids, empty)
            coll.extra_windows = {}
            coll.lexical = LexicalIndex()
            indexed = {}
        fresh, added, gone = _difference(wanted, indexed)
        if gone:
            coll.vectors.remove(np.array(gone, dtype=np.int64))
            coll.lexical.remove(gone)
        items = load_items(session, side)
        coll.items = {item.id: item for item in items}
        if fresh:
            fresh_set = set(fresh)
            self.matcher.index_items([i for i in items if i.id in fresh_set], progress=progress)
        self._indexed_hashes[side] = dict(wanted)
        if gone or fresh or rebuilt or not (_side_dir(self.home, side) / HASHES_FILE).exists():
            self.save_side(side)
        return SyncReport(side, added, len(fresh) - added, len(gone), len(wanted), rebuilt)

    def check(self, session: Session) -> list[SyncReport]:
        """What a sync would do, without doing it."""
        reports = []
        for side in SIDES:
            wanted = content_hashes(session, side)
            fresh, added, gone = _difference(wanted, self._indexed_hashes[side])
            reports.append(SyncReport(side, added, len(fresh) - added, len(gone), len(wanted)))
        return reports

    def save_side(self, side: Side) -> None:
        folder = _side_dir(self.home, side)
        folder.mkdir(parents=True, exist_ok=True)
        coll: Collection = self.matcher.collections[side]
        coll.vectors.save(folder / "vectors", model=self.encoder.name)
        coll.windows.save(folder / "windows", model=self.encoder.name)
        coll.lexical.save(folder / "lexical")
        # Written last: the hashes name what the files above hold.
        _write_json_atomically(
            folder / HASHES_FILE,
            {"model": self.encoder.name, "layout": LAYOUT,
             "items": {str(k): v for k, v in self._indexed_hashes[side].items()}},
        )

    def items_changed(self, session: Session, side: Side, ids: Iterable[int]) -> None:
        """Apply saved edits at once: (re)index these ids, or drop them if no longer matchable."""
        ids = [int(i) for i in ids]
        live = {item.id: item for item in load_items(session, side, ids=ids)}
        hashes = content_hashes(session, side, ids)
        coll = self.matcher.collections[side]
        dropped = [i for i in ids if i not in live]
        self.matcher.remove_items(side, dropped)
        for i in dropped:
            self._indexed_hashes[side].pop(i, None)
        if live:
            self.matcher.index_items(list(live.values()))
            for i in live:
                self._indexed_hashes[side][i] = hashes[i]
        coll.items.update(live)
        self.save_side(side)


def open_store(home: Path, encoder: Encoder, session_factory: Callable[[], Session], *,
               progress: bool = False) -> tuple[IndexStore, list[SyncReport]]:
    """Load the saved indexes and repair any difference from the database."""
    store = IndexStore(home, encoder)
    store.load()
    with session_factory() as session:
        reports = store.sync(session, progress=progress)
    return store, reports
