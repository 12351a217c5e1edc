"""Keep the on-disk indexes in step with the database, the source of truth.

Each side has a folder under `<home>/indexes/<side>/` holding the vector index, the BM25
postings and `hashes.json`: the content hash of every item as it was indexed. Comparing
those with the database's hashes tells exactly what to add, re-embed or drop, so a restart,
an import or an edit only ever touches the items that changed. The names of those files are
defined once, in `matcher.index_files`, which also copies a side for backups.

Several processes may save the same folder (gunicorn workers, a CLI import beside the site).
Every file is replaced atomically (temporary file, fsync, rename, directory fsync), and a
whole save of all sides' files runs under one exclusive `flock` on `indexes/.write.lock`
(re-entrant within a store), so two processes' files never interleave; `load` holds the lock
shared. `hashes.json`, written last, also records the checksum of each file it describes: a
process killed half-way through a save leaves files that disagree with it, and `load` refuses
that side (the next sync rebuilds it) instead of trusting vectors of another generation.

The vector indexes live where the `IndexBackend` says: in this process (FAISS, saved into
the folder) or on Milvus, where every edit is durable at once and the folder records only
which collection holds the side (and the hashes and BM25 postings, as always). A Milvus side
that is ahead of or behind `hashes.json` (a crash between an edit and the next save) is
repaired item by item, never emptied: other processes may be serving from it.

Saving is a snapshot (a copy of each in-process index, taken while nothing edits them) and a
write that needs no other lock than the folder's, so the site can save in the background while it
serves; `hashes.json` records the change-log id the snapshot reflects, and an older snapshot
never replaces a newer save.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.base import Encoder
from matcher.collection import Collection
from matcher.index_backend import IndexBackend
from matcher.index_files import (
    HASHES_FILE,
    LAYOUT,
    LEXICAL_DIR,
    VECTORS_DIR,
    WINDOWS_DIR,
    indexes_folder,
    side_folder,
)
from matcher.lexical import LexicalIndex, PackedWords, save_packed
from matcher.milvus_hashes import MilvusHashes
from matcher.retriever import Matcher
from matcher.types import SIDES, Item, ItemSource, Side
from matcher.vector_common import (
    TEMP_PREFIX,
    IndexFileError,
    read_sidecar,
    sha256_of,
    write_atomically,
)
from matcher.vector_index import VectorIndex
from matcher.vector_milvus import facet_document
from matcher.vocabulary import (
    EDIT_TOLERANCE,
    brings_new_terms,
    index_with,
    refreshed,
    vocabulary_of,
)

LOCK_FILE = ".write.lock"  # in <home>/indexes/


@dataclass(frozen=True)
class SyncReport:
    side: Side
    added: int
    updated: int
    removed: int
    total: int
    rebuilt: bool = False
    problem: str = ""  # why the saved files were refused, if they were

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt)

    def summary(self) -> str:
        how = "重建" if self.rebuilt else "增量同步"
        text = (f"{self.side}: {how}, 新增 {self.added}, 更新 {self.updated}, "
                f"删除 {self.removed}, 共 {self.total} 条")
        return f"{text}（{self.problem}）" if self.problem else text


def release_free_memory() -> None:
    """Hand memory freed by a dropped snapshot back to the system (glibc only).

    A snapshot is hundreds of MB in many blocks (FAISS keeps one per IVF list), freed in
    whichever thread's malloc arena made them; glibc keeps such memory for reuse by that arena
    and a long-running server's RSS grows by a snapshot now and then. malloc_trim returns it."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _saved_change_id(folder: Path) -> int:
    """The change-log id the side's saved files reflect; -1 if they are missing or unreadable
    (anything is newer than that)."""
    try:
        return int(json.loads((folder / HASHES_FILE).read_text(encoding="utf-8"))["change_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


@dataclass(frozen=True)
class SideSnapshot:
    """One side as it was at change-log id `change_id`: every change committed up to that id
    is in it. Saves compare this id with the one in hashes.json, so a slow writer never
    replaces a newer save with an older state. (Whatever the files hold, a start-up sync
    compares them with the database, so a stale save costs time, never correctness.)"""

    side: Side
    change_id: int
    vectors: VectorIndex
    windows: VectorIndex
    lexical: PackedWords
    hashes: dict[int, str]


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

    def __init__(self, home: Path, encoder: Encoder, backend: IndexBackend | None = None
                 ) -> None:
        self.home = Path(home)
        self.encoder = encoder
        self.backend = backend or IndexBackend()
        self.matcher = Matcher(encoder, index_factory=self.backend.new,
                               full_text_factory=self.backend.full_text_factory)
        self._indexed_hashes: dict[Side, dict[int, str]] = {side: {} for side in SIDES}
        # Sides whose in-memory index differs from the files last saved.
        self._unsaved: set[Side] = set()
        # side → why its saved files were refused by `load` (until a sync replaces them)
        self.load_problems: dict[Side, str] = {}
        self._file_lock = threading.RLock()
        self._file_lock_depth = 0
        # With a shared backend: each side's hashes beside its vectors (`MilvusHashes`).
        self._shared_hashes: dict[Side, MilvusHashes] = {}

    @contextlib.contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        """`indexes/.write.lock` in `mode`, across processes; re-entrant in this store."""
        with self._file_lock:
            if self._file_lock_depth:
                self._file_lock_depth += 1
                try:
                    yield
                finally:
                    self._file_lock_depth -= 1
                return
            folder = indexes_folder(self.home)
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / LOCK_FILE, "a+b") as handle:
                fcntl.flock(handle.fileno(), mode)
                self._file_lock_depth = 1
                try:
                    yield
                finally:
                    self._file_lock_depth = 0
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Hold the folder's write lock: no other process saves or loads meanwhile. Held
        around "read the database, apply, save", it makes the last save the newest state."""
        return self._flock(fcntl.LOCK_EX)

    def load(self) -> None:
        """Read whatever indexes exist on disk; missing or foreign ones start empty."""
        with self._flock(fcntl.LOCK_SH):
            # Every writer holds the lock exclusively: any temporary file now is a crash's.
            for stale in indexes_folder(self.home).rglob(f"{TEMP_PREFIX}*"):
                stale.unlink(missing_ok=True)
            for side in SIDES:
                problem = self._load_side(side)
                if problem:
                    self.load_problems[side] = problem
                else:
                    self.load_problems.pop(side, None)

    def _load_side(self, side: Side) -> str:
        """Load one side; returns "" when loaded or absent, else why the files were refused."""
        folder = side_folder(self.home, side)
        if not folder.exists():
            return ""
        try:
            hashes = json.loads((folder / HASHES_FILE).read_text(encoding="utf-8"))
            if hashes.get("model") != self.encoder.name:
                return f"索引来自另一模型 {hashes.get('model')}"
            if hashes.get("layout") != LAYOUT:
                return f"索引格式 {hashes.get('layout')} 已过时"
            for role, directory in (("vectors", VECTORS_DIR), ("windows", WINDOWS_DIR)):
                if read_sidecar(folder / directory).get("location") != \
                        self.backend.location(side, role):
                    return "索引保存在另一后端（INDEX_BACKEND 或 MILVUS_URI 已更改）"
            vectors = self.backend.open(folder / VECTORS_DIR)
            windows = self.backend.open(folder / WINDOWS_DIR)
            lexical = LexicalIndex.load(folder / LEXICAL_DIR)
            files = hashes.get("files")
            if files is not None and files != {
                    VECTORS_DIR: vectors.meta.get("sha256"),
                    WINDOWS_DIR: windows.meta.get("sha256"),
                    LEXICAL_DIR: sha256_of(LexicalIndex.data_path(folder / LEXICAL_DIR))}:
                return "索引文件与 hashes.json 不是同一次保存（保存中断）"
            items = {int(k): str(v) for k, v in hashes["items"].items()}
        except FileNotFoundError as error:
            return f"索引文件缺失: {Path(error.filename or '?').name}"
        except (IndexFileError, ValueError, KeyError, TypeError, AttributeError,
                json.JSONDecodeError) as error:
            return f"索引文件损坏: {error}"
        for index in (vectors, windows):
            if index.meta.get("model") != self.encoder.name:
                return f"向量来自另一模型 {index.meta.get('model')}"
            if index.dimension != self.encoder.dimension:
                return f"向量维度 {index.dimension} ≠ 模型维度 {self.encoder.dimension}"
        coll = self.matcher.collections[side]
        coll.vectors, coll.windows, coll.lexical = vectors, windows, lexical
        coll.reload_window_counts()
        coll.centres = None  # recomputed from the loaded vectors on first use
        self._indexed_hashes[side] = items
        return ""

    def sync(self, source: ItemSource, *, progress: bool = False, change_id: int = 0
             ) -> list[SyncReport]:
        """Repair every side against the source of truth and save what changed. `change_id`:
        the newest change-log id committed before `source` read the rows (recorded with the
        files)."""
        with self.writing():
            return [self.sync_side(source, side, progress=progress, change_id=change_id)
                    for side in SIDES]

    def _consistent(self, side: Side) -> bool:
        """Do the vector, window and BM25 indexes hold exactly the items hashes.json names?"""
        coll = self.matcher.collections[side]
        stored_ids = set(coll.vectors.ids().tolist())
        return (stored_ids == set(self._indexed_hashes[side]) == set(coll.lexical.ids().tolist())
                and set(coll.extra_windows) <= stored_ids)

    def _hashes_of(self, side: Side) -> MilvusHashes:
        hashes = self._shared_hashes.get(side)
        if hashes is None:
            made = self.backend.hashes(side)
            assert made is not None, "only a shared backend keeps hashes beside the vectors"
            hashes = self._shared_hashes[side] = made
        return hashes

    def _repair_shared(self, coll: Collection, indexed: dict[int, str], wanted: set[int]
                       ) -> dict[int, str]:
        """A shared (Milvus) side that disagrees with this folder's hashes: drop from it only
        what the database no longer holds, and trust the hashes written beside the vectors
        (`MilvusHashes`) for items stored on both indexes, unless this folder's own say
        otherwise; the sync then re-indexes the rest (upserts, from the embedding cache).
        Never emptied: other processes may be serving from it. Returns the hashes to trust."""
        stored = set(coll.vectors.ids().tolist())
        gone = np.array(sorted(stored - wanted), dtype=np.int64)
        if gone.size:
            coll.vectors.remove(gone)
        coll.reload_window_counts()
        coll.drop_windows([i for i in coll.extra_windows if i not in wanted])
        shared = self._hashes_of(coll.side).read()
        trusted = {i: h for i, h in shared.items()
                   if i in stored and i in wanted and indexed.get(i, h) == h}
        words = coll.lexical.ids().tolist()
        coll.lexical.remove([i for i in words if i not in trusted])
        self._unsaved.add(coll.side)
        return trusted

    @staticmethod
    def _refresh_shared_facets(coll: Collection, items: list[Item], fresh: set[int]) -> None:
        """A full sync also compares the facets Milvus filters on with the database's (a
        facet edit whose write was lost to a crash or an outage); the fresh items get theirs
        with their vectors."""
        stored = coll.vectors.stored_facets()  # type: ignore[attr-defined]
        coll.set_facets([item for item in items if item.id not in fresh and item.id in stored
                         and stored[item.id] != facet_document(item.facets)])

    def sync_side(self, source: ItemSource, side: Side, *, progress: bool = False,
                  change_id: int = 0) -> SyncReport:
        with self.writing():
            return self._sync_side(source, side, progress=progress, change_id=change_id)

    def _sync_side(self, source: ItemSource, side: Side, *, progress: bool,
                   change_id: int) -> SyncReport:
        coll = self.matcher.collections[side]
        wanted = source.content_hashes(side)
        items = source.load_items(side)
        # Two reads, maybe not of one snapshot (PostgreSQL): a row that changed in between is
        # taken as either read saw it, and the change log or the next sync names it again.
        wanted = {item.id: wanted[item.id] for item in items if item.id in wanted}
        items = [item for item in items if item.id in wanted]
        indexed = self._indexed_hashes[side]
        # Anything the files disagree on (a crash between writes) is simply re-indexed.
        rebuilt = not self._consistent(side) and bool(
            coll.vectors.count() or indexed or coll.extra_windows)
        if rebuilt and coll.vectors.persistent:
            indexed = self._repair_shared(coll, indexed, set(wanted))
            rebuilt = False
        elif rebuilt:
            empty_ids = np.zeros(0, dtype=np.int64)
            empty = np.zeros((0, self.encoder.dimension), dtype=np.float32)
            coll.vectors.build(empty_ids, empty)
            coll.windows.build(empty_ids, empty)
            coll.extra_windows = {}
            coll.lexical = LexicalIndex()
            indexed = {}
        problem = self.load_problems.pop(side, "")
        fresh, added, gone = _difference(wanted, indexed)
        if gone:
            coll.vectors.remove(np.array(gone, dtype=np.int64))
            coll.lexical.remove(gone)
        if coll.filters_inside():
            self._refresh_shared_facets(coll, items, set(fresh))
        coll.items = {item.id: item for item in items}
        coll.centres = None  # the vectors changed under it: recomputed on first use
        # A sync sees every item: the BM25 side is re-cut whenever the keyword fields' domain
        # vocabulary has changed at all (the fresh items are cut with it below).
        fresh_set = set(fresh)
        vocabulary = vocabulary_of(items)
        if vocabulary != coll.lexical.vocabulary:
            coll.lexical = index_with([i for i in items if i.id not in fresh_set], vocabulary)
            self._unsaved.add(side)
        unworded = [i for i in items if i.id not in fresh_set and i.id not in coll.lexical]
        if unworded:  # vectors trusted from a shared backend, words not yet cut here
            coll.lexical.add((i.id, i.full_text) for i in unworded)
        if fresh:
            self.matcher.index_items([i for i in items if i.id in fresh_set], progress=progress)
        if coll.full_text is not None:
            # Milvus's copy of the words, compared with what this sync sees: a vocabulary
            # change, an item gone, a write an outage lost.
            coll.full_text.reconcile(coll.items, coll.lexical)
        self._indexed_hashes[side] = dict(wanted)
        if gone or fresh or rebuilt or problem or side in self._unsaved \
                or not (side_folder(self.home, side) / HASHES_FILE).exists():
            self.save_side(side, change_id=change_id)
        return SyncReport(side, added, len(fresh) - added, len(gone), len(wanted),
                          rebuilt or bool(problem), problem)

    def check(self, source: ItemSource) -> list[SyncReport]:
        """What a sync would do, without doing it."""
        reports = []
        for side in SIDES:
            wanted = source.content_hashes(side)
            problem = self.load_problems.get(side, "")
            if not self._consistent(side):
                problem = problem or "向量、关键词索引与 hashes.json 的条目不一致"
                indexed: dict[int, str] = {}
            else:
                indexed = self._indexed_hashes[side]
            full_text = self.matcher.collections[side].full_text
            if not problem and full_text is not None and set(full_text.held()) != set(indexed):
                # Only the ids: the rows' versions need the items' texts, which a sync reads.
                problem = "Milvus 全文索引与 hashes.json 的条目不一致"
            fresh, added, gone = _difference(wanted, indexed)
            reports.append(SyncReport(side, added, len(fresh) - added, len(gone), len(wanted),
                                      bool(problem), problem))
        return reports

    def save_side(self, side: Side, *, change_id: int = 0) -> None:
        """Save one side now, whatever the files on disk hold."""
        self.write_snapshot(self.snapshot(side, change_id), force=True)

    def unsaved(self) -> set[Side]:
        """Sides whose in-memory index differs from the files this store last saved."""
        return set(self._unsaved)

    def snapshot(self, side: Side, change_id: int) -> SideSnapshot:
        """A copy of one side to save later, from another thread. Take it while nothing edits
        the matcher (the service's lock); it counts as saved unless writing it fails."""
        coll: Collection = self.matcher.collections[side]
        self._unsaved.discard(side)
        return SideSnapshot(side, change_id, _snapshot_of(coll.vectors),
                            _snapshot_of(coll.windows), coll.lexical.packed(),
                            dict(self._indexed_hashes[side]))

    def write_snapshot(self, snap: SideSnapshot, *, force: bool = False) -> bool:
        """Write a snapshot's files, hashes.json last. Unless `force`, a snapshot no newer
        than the files on disk (another process saved a later state) is skipped. Returns
        whether it wrote; on failure the side counts as unsaved again."""
        try:
            with self.writing():
                folder = side_folder(self.home, snap.side)
                if not force and snap.change_id <= _saved_change_id(folder):
                    return False
                folder.mkdir(parents=True, exist_ok=True)
                snap.vectors.save(folder / VECTORS_DIR, model=self.encoder.name)
                snap.windows.save(folder / WINDOWS_DIR, model=self.encoder.name)
                save_packed(snap.lexical, folder / LEXICAL_DIR)
                # Written last: the hashes name what the files above hold, and which files.
                _write_json_atomically(
                    folder / HASHES_FILE,
                    {"model": self.encoder.name, "layout": LAYOUT, "change_id": snap.change_id,
                     "files": {VECTORS_DIR: snap.vectors.meta["sha256"],
                               WINDOWS_DIR: snap.windows.meta["sha256"],
                               LEXICAL_DIR: sha256_of(
                                   LexicalIndex.data_path(folder / LEXICAL_DIR))},
                     "items": {str(k): v for k, v in snap.hashes.items()}},
                )
                if self.backend.shared:  # after the vectors, which every edit wrote already
                    self._hashes_of(snap.side).write(snap.hashes)
                return True
        except BaseException:
            self._unsaved.add(snap.side)
            raise

    def items_changed(self, source: ItemSource, side: Side, ids: Iterable[int], *,
                      save: bool = True, change_id: int = 0) -> int:
        """Apply saved edits at once: (re)index these ids, or drop them if no longer matchable.

        Items whose text is indexed already at the database's hash are not re-embedded (their
        facets are still refreshed), so applying the same change twice costs a query. Returns
        how many items were re-indexed or dropped; saves the side's files when `save`
        (recording `change_id`, as `sync` does)."""
        ids = sorted({int(i) for i in ids})
        hashes = source.content_hashes(side, ids)
        # Both reads must agree (a row may change between them): the log names it again then.
        live = {item.id: item for item in source.load_items(side, ids)
                if item.id in hashes}
        coll = self.matcher.collections[side]
        indexed = self._indexed_hashes[side]
        dropped = [i for i in ids if i not in live and (i in indexed or i in coll.items)]
        self.matcher.remove_items(side, dropped)
        for i in dropped:
            indexed.pop(i, None)
        fresh = [item for i, item in live.items()
                 if indexed.get(i) != hashes[i] or i not in coll.items]
        if fresh:
            self.matcher.index_items(fresh)
            for item in fresh:
                indexed[item.id] = hashes[item.id]
        fresh_ids = {item.id for item in fresh}
        # Facets live beside the vectors on Milvus: a facet-only edit is written there too.
        coll.set_facets([item for i, item in live.items() if i not in fresh_ids
                         and i in coll.items and coll.items[i].facets != item.facets])
        coll.items.update(live)
        if dropped or fresh:
            self._unsaved.add(side)
        # An edit re-cuts the side only once the vocabulary has drifted far enough to matter
        # (`matcher.vocabulary`); until then its words are cut as the index's are.
        if fresh and brings_new_terms(coll.lexical.vocabulary, fresh):
            retokenised = refreshed(coll.lexical, list(coll.items.values()),
                                    tolerance=EDIT_TOLERANCE)
            if retokenised is not None:
                coll.lexical = retokenised
                if coll.full_text is not None:
                    coll.full_text.reconcile(coll.items, coll.lexical)
        if save and side in self._unsaved:  # a facet-only edit changes nothing on disk
            self.save_side(side, change_id=change_id)
        return len(dropped) + len(fresh)


def _snapshot_of(index: VectorIndex) -> VectorIndex:
    """A copy to save from another thread; a persistent index is its own (Milvus has every
    edit already, and saving it records only where it is)."""
    return index if index.persistent else index.copy()


def open_store(home: Path, encoder: Encoder, source: ItemSource, *,
               progress: bool = False, backend: IndexBackend | None = None
               ) -> tuple[IndexStore, list[SyncReport]]:
    """Load the saved indexes and repair any difference from the source of truth."""
    store = IndexStore(home, encoder, backend)
    store.load()
    reports = store.sync(source, progress=progress)
    return store, reports
