"""The matching service: the engine kept in step with the database, for one process.

One `MatchService` per process holds the encoder and the `IndexStore`. At start-up it loads
the saved indexes and repairs any difference from the database; after each save, callers
call `changed(...)` so the edited items are matchable at once, without a full reindex.
FAISS and BM25 indexes are not safe to write while another thread reads them, so every
operation on the store goes through one lock.

Several processes (gunicorn workers, a CLI import beside the site) each hold their own
indexes. Every committed change to a need or result is also a row in the `index_changes` log
(`corpora.changes`, same transaction); before every read a service applies the rows past the
last one it applied (at most every `index_poll_seconds`, default 0.2 s), so another worker's
edit is matchable here within that. `changed()` does the same under the index folder's write
lock before it saves, so the last save on disk is always the newest state. At start-up old log
rows (over a day) are pruned; a service idle longer than half that re-syncs in full.

Edits do not wait for the index files: the service saves the changed sides in the background
`index_save_seconds` (default 30 s) after the first unsaved edit, from a snapshot, and at exit
(`flush`). The files are only what a restarting process loads first; its start-up sync with
the database re-indexes whatever edits a killed process had not saved, so nothing is lost.
The service is built by `service.composition.build_service`; it knows nothing of Flask.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from corpora.changes import RETENTION, changes_since, latest_change_id, prune
from corpora.items import DatabaseItems, to_item
from corpora.models import Need, Result
from corpora.sides import side_of
from matcher.filters import Filters
from matcher.hubness import mutual_pairs
from matcher.indexing import IndexStore, SyncReport, release_free_memory
from matcher.retriever import Matcher
from matcher.strength import LABELS
from matcher.types import SIDES, Item, Match, Side, Strength

logger = logging.getLogger(__name__)

# Past this long without reading the change log, its rows may have been pruned: sync in full.
FULL_SYNC_AFTER_S = RETENTION.total_seconds() / 2


# A need counts as answered by a result only at this strength or above. 较强 is the label
# whose calibrated precision target is 0.6 (`matcher/strength.json`): a result in a need's top
# 10 at 弱 or 一般 is usually not what the firm wants, and counting it let one generic result
# claim needs from tablets to CO2 capture. Officers then read "能较好解决 N 条" literally.
COVERAGE_MIN_LABEL = "较强"
# ... and only if the need is also among the result's this many nearest open needs (mutual
# nearest neighbours, `matcher.hubness.mutual_pairs`): a hub near every need cannot claim
# more needs than it is nearest to. Measured on the demo (scripts/measure_hubs.py): on its
# own it cut the most needs one result claimed from 9 to 6; after the strength threshold
# (which cut it to 2) it dropped no pair, so it costs nothing there and guards the rest.
COVERAGE_MUTUAL_K = 10


def labels_from(min_label: str) -> tuple[str, ...]:
    """The strength labels at or above `min_label` (best first)."""
    if min_label not in LABELS:
        raise ValueError(f"strength label must be one of {', '.join(LABELS)}, got {min_label!r}")
    return LABELS[:LABELS.index(min_label) + 1]


@dataclass(frozen=True)
class Coverage:
    """Which open needs each active result answers well: it is in that need's top K and the
    engine rates the pair `min_label` or better (and, with hub filtering, see
    `matcher.hubness`, the need is among the result's own nearest needs)."""

    top_k: int
    # result id → {need id: rank of the result among that need's matches (1 = best)}
    needs_of: dict[int, dict[int, int]]
    min_label: str = COVERAGE_MIN_LABEL
    # result id → {need id: the pair's strength}: the same pairs as `needs_of`
    strength_of: dict[int, dict[int, Strength]] = field(default_factory=dict)
    # every open need searched → the best strength any result reached for it (None: no
    # result at all, or none the engine could rate); the needs nothing answers well are those
    # below `min_label`
    best_of_need: dict[int, Strength | None] = field(default_factory=dict)
    # pairs strong enough but dropped because the need is not among the result's own
    # nearest needs (`COVERAGE_MUTUAL_K`)
    hub_pairs_dropped: int = 0

    def count(self, result_id: int) -> int:
        return len(self.needs_of.get(result_id, {}))

    def strength(self, result_id: int, need_id: int) -> Strength | None:
        return self.strength_of.get(result_id, {}).get(need_id)

    def unanswered(self) -> list[int]:
        """Open needs no result answers at `min_label` or better, in id order."""
        good = labels_from(self.min_label)
        return sorted(need for need, best in self.best_of_need.items()
                      if best is None or best.label not in good)


@dataclass(frozen=True)
class _CachedCoverage:
    version: int  # the service's index version it was computed at
    computed_at: float  # time.monotonic()
    coverage: Coverage


# Needs searched per hold of the service lock while computing the coverage.
COVERAGE_NEEDS_PER_LOCK = 2


class MatchService:
    def __init__(self, store: IndexStore, sessions: sessionmaker[Session],
                 coverage_top_k: int = 10, poll_seconds: float = 0.2,
                 save_seconds: float = 30.0, coverage_max_age: float = 30.0, *,
                 coverage_min_label: str = COVERAGE_MIN_LABEL,
                 coverage_mutual_k: int = COVERAGE_MUTUAL_K) -> None:
        self.store = store
        self.sessions = sessions
        self.coverage_top_k = coverage_top_k
        self._coverage_min_label = coverage_min_label
        labels_from(coverage_min_label)  # a bad label fails here, not at the first page
        if coverage_mutual_k < 1:
            raise ValueError(f"coverage_mutual_k must be positive, got {coverage_mutual_k}")
        self.coverage_mutual_k = coverage_mutual_k
        self.poll_seconds = poll_seconds
        self.save_seconds = save_seconds
        self.coverage_max_age = coverage_max_age
        self._coverage_lock = threading.Lock()
        self._save_timer: threading.Timer | None = None
        self._lock = threading.RLock()
        self._version = 0
        self._needs_sync = False
        self._coverage: _CachedCoverage | None = None
        # The newest change-log id whose change this process's indexes reflect.
        self.applied_change = 0
        self._polled_at = time.monotonic()
        _running.add(self)

    @property
    def matcher(self):  # noqa: ANN201 - the engine's Matcher
        return self.store.matcher

    def start(self, *, sync: bool = True) -> list[SyncReport]:
        """Prune old log rows, then (with `sync`) repair the indexes against the database."""
        with self.sessions() as session:
            removed = prune(session)
            session.commit()
        if removed:
            logger.info("pruned %d index change rows", removed)
        if sync:
            return self.sync()
        with self._lock, self.sessions() as session:
            self.applied_change = latest_change_id(session)
            self._polled_at = time.monotonic()
        return []

    def sync(self, *, progress: bool = False) -> list[SyncReport]:
        with self._lock, self.store.writing(), self.sessions() as session:
            # Read before the rows: whatever commits after is in the log past this id.
            latest = latest_change_id(session)
            reports = self.store.sync(DatabaseItems(session), progress=progress,
                                      change_id=latest)
            self.applied_change = latest
            self._polled_at = time.monotonic()
            self._needs_sync = False
            self._version += 1
            return reports

    def check(self) -> list[SyncReport]:
        with self._lock, self.sessions() as session:
            return self.store.check(DatabaseItems(session))

    def catch_up(self, *, force: bool = False) -> int:
        """Apply the changes other processes committed since the last call; returns how many
        items were re-indexed or dropped. Without `force`, at most every `poll_seconds`."""
        with self._lock:
            now = time.monotonic()
            if self._needs_sync or now - self._polled_at > FULL_SYNC_AFTER_S:
                # A failed update, or idle so long that the rows we missed may be pruned.
                self.sync()
                return 0
            if not force and now - self._polled_at < self.poll_seconds:
                return 0
            applied = 0
            with self.sessions() as session:
                latest = latest_change_id(session)
                if latest < self.applied_change:
                    # The log went backwards: another database behind the same folder.
                    logger.warning("index change log at %d < %d applied: full sync",
                                   latest, self.applied_change)
                    self._needs_sync = True
                elif latest > self.applied_change:
                    changes = changes_since(session, self.applied_change, latest)
                    try:
                        for side in SIDES:
                            if changes.get(side):
                                applied += self.store.items_changed(
                                    DatabaseItems(session), side, changes[side], save=False)
                    except Exception:
                        logger.exception("applying index changes failed; a full sync follows")
                        self._needs_sync = True
                    self.applied_change = latest
                    self._version += 1
            self._polled_at = now
            if self._needs_sync:
                self.sync()
            return applied

    def changed(self, session: Session, side: Side, ids: Iterable[int]) -> None:
        """Re-read these rows after their commit and (re)index or drop them.

        The rows are already saved, so a failure here must not fail the request: it is
        logged and the next read repairs the indexes from the database first."""
        ids = list(ids)
        with self._lock:
            try:
                # Catching up first applies this edit's own log row too, so `applied_change`
                # covers everything the indexes now hold when a snapshot records it.
                self.catch_up(force=True)
                self.store.items_changed(DatabaseItems(session), side, ids, save=False)
            except Exception:
                logger.exception("indexing %s %s failed; a full sync will follow", side, ids)
                self._needs_sync = True
            self._version += 1
            if self.store.unsaved():
                self._schedule_save()

    def _schedule_save(self) -> None:
        """Save soon (now when `save_seconds` is 0); called under the lock."""
        if self.save_seconds <= 0:
            self.flush()
        elif self._save_timer is None:
            self._save_timer = threading.Timer(self.save_seconds, self._save_in_background)
            self._save_timer.daemon = True
            self._save_timer.start()

    def _save_in_background(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("saving the indexes failed; trying again later")
            with self._lock:
                self._schedule_save()

    def flush(self) -> None:
        """Write every side edited since its last save. Only the snapshot is taken under the
        lock; writing (hundreds of MB at 100,000 items) lets searches and edits go on."""
        with self._lock:
            if self._save_timer is not None:
                self._save_timer.cancel()
                self._save_timer = None
            if self._needs_sync:
                return  # the indexes are known to be off; the sync that follows saves
            snapshots = [self.store.snapshot(side, self.applied_change)
                         for side in SIDES if side in self.store.unsaved()]
        try:
            for snapshot in snapshots:
                self.store.write_snapshot(snapshot)
        finally:
            del snapshots
            release_free_memory()

    def item(self, side: Side, item_id: int) -> Item | None:
        with self._lock:
            self.catch_up()
            return self.store.matcher.collections[side].items.get(item_id)

    def _encode_query(self, text: str):  # noqa: ANN202 - a (dimension,) float32 vector
        # Outside the lock: encoding is the slow part, and the encoder and its cache are safe
        # to call from several threads.
        return self.store.encoder.encode_queries([text])[0]

    def search(self, text: str, side: Side, *, k: int = 20,
               filters: Filters | None = None) -> list[Match]:
        vector = self._encode_query(text)
        with self._lock:
            self.catch_up()
            return self.store.matcher.search_many(
                [text], side=side, k=k, filters=filters, query_vectors=vector[None, :])[0]

    def match_row(self, row: Need | Result, target: Side, *, k: int = 20,
                  filters: Filters | None = None,
                  adjust: Callable[[Matcher, np.ndarray], np.ndarray] | None = None,
                  ) -> list[Match]:
        """Best matches for a row, even one not itself matchable (a closed need).

        `adjust`, called under the lock with the engine and the row's query vector, returns
        the vector to search with (a firm's marks move it: `service.feedback`)."""
        side = side_of(row)
        with self._lock:
            self.catch_up()
            item = self.store.matcher.collections[side].items.get(row.id)
        if item is None:
            item = to_item(row)  # reads the row's organisation: not under the lock
        vector = self._encode_query(item.full_text)
        with self._lock:
            self.catch_up()
            if adjust is not None:
                vector = adjust(self.store.matcher, vector)
            return self.store.matcher.match_item(item, target=target, k=k, filters=filters,
                                                 query_vector=vector)

    @property
    def coverage_min_label(self) -> str:
        """The least strength a pair needs to count in the coverage (`COVERAGE_MIN_LABEL`)."""
        return self._coverage_min_label

    @coverage_min_label.setter
    def coverage_min_label(self, label: str) -> None:
        labels_from(label)
        with self._lock:
            self._coverage_min_label = label
            self._coverage = None  # counted at another threshold: recompute at the next read

    def coverage(self) -> Coverage:
        """Every open need's top K among active results, the pairs rated
        `coverage_min_label` or better.

        It costs a search per open need (about 2 s for 130 needs at 100,000 results), so
        after an edit the figures already computed are served while new ones are computed
        in the background, and they are recomputed at most every `coverage_max_age` seconds.
        Only the very first call waits for them."""
        with self._lock:
            self.catch_up()
            cached = self._coverage
        if cached is None:
            return self.refresh_coverage()
        if not self._coverage_fresh(cached) and not self._coverage_lock.locked():
            threading.Thread(target=self._refresh_coverage_quietly, daemon=True,
                             name="coverage").start()
        return cached.coverage

    def warm_up(self) -> None:
        """Start computing the coverage in the background (a first call then waits for it)."""
        threading.Thread(target=self._refresh_coverage_quietly, daemon=True,
                         name="coverage").start()

    def _refresh_coverage_quietly(self) -> None:
        try:
            self.refresh_coverage()
        except Exception:  # the figures already served stay; the next read tries again
            logger.exception("recomputing the coverage failed")

    def refresh_coverage(self) -> Coverage:
        """Compute the coverage now, unless it is fresh already."""
        with self._coverage_lock:  # one computation at a time; the others reuse it
            with self._lock:
                cached = self._coverage
                if cached is not None and self._coverage_fresh(cached):
                    return cached.coverage
                version = self._version
                needs = list(self.store.matcher.collections["need"].items.values())
            vectors = self.store.encoder.encode_queries([n.full_text for n in needs]) \
                if needs else None
            min_label = self.coverage_min_label
            good = labels_from(min_label)
            needs_of: dict[int, dict[int, int]] = {}
            strength_of: dict[int, dict[int, Strength]] = {}
            best_of_need: dict[int, Strength | None] = {n.id: None for n in needs}
            # A few needs per hold of the lock, so searches and edits are not held up for
            # the whole computation (about 10 ms a need at 100,000 results).
            for start in range(0, len(needs), COVERAGE_NEEDS_PER_LOCK):
                chunk = needs[start:start + COVERAGE_NEEDS_PER_LOCK]
                with self._lock:
                    if not self.store.matcher.collections["result"].count():
                        break
                    # Rated, not explained: only the strength is read.
                    ranked = self.store.matcher.search_many(
                        [n.full_text for n in chunk], side="result", k=self.coverage_top_k,
                        explain=False, rate=True, query_side="need",
                        query_facets=[n.facets for n in chunk],
                        query_vectors=vectors[start:start + len(chunk)],  # type: ignore[index]
                    )
                for need, matches in zip(chunk, ranked, strict=True):
                    for rank, match in enumerate(matches, start=1):
                        strength = match.explanation.strength if match.explanation else None
                        if strength is None:
                            continue
                        best = best_of_need[need.id]
                        if best is None or strength.probability > best.probability:
                            best_of_need[need.id] = strength
                        if strength.label in good:
                            needs_of.setdefault(match.id, {})[need.id] = rank
                            strength_of.setdefault(match.id, {})[need.id] = strength
            mutual = self._mutual_only(needs_of, needs, vectors)
            dropped = sum(map(len, needs_of.values())) - sum(map(len, mutual.values()))
            strength_of = {r: {n: strength_of[r][n] for n in ranks} for r, ranks in mutual.items()}
            coverage = Coverage(self.coverage_top_k, mutual, min_label, strength_of,
                                best_of_need, dropped)
            with self._lock:
                if min_label == self._coverage_min_label:  # not changed meanwhile
                    self._coverage = _CachedCoverage(version, time.monotonic(), coverage)
            return coverage

    def _mutual_only(self, needs_of: dict[int, dict[int, int]], needs: Sequence[Item],
                     vectors: np.ndarray | None) -> dict[int, dict[int, int]]:
        """The pairs whose need is among the result's `coverage_mutual_k` nearest open
        needs (by cosine of the result's first window with the needs' query vectors)."""
        if not needs_of or vectors is None:
            return needs_of
        results = self.store.matcher.collections["result"]
        with self._lock:
            ids = [r for r in needs_of if r in results.items]
            found = results.vectors.vectors(np.array(ids, dtype=np.int64)) if ids else None
        result_vectors = dict(zip(ids, found, strict=True)) if found is not None else {}
        need_vectors = {need.id: vectors[n] for n, need in enumerate(needs)}
        return mutual_pairs(needs_of, result_vectors, need_vectors, self.coverage_mutual_k)

    def _coverage_fresh(self, cached: _CachedCoverage) -> bool:
        return (cached.version == self._version
                or time.monotonic() - cached.computed_at < self.coverage_max_age)

    def items(self, side: Side) -> Sequence[Item]:
        with self._lock:
            self.catch_up()
            return list(self.store.matcher.collections[side].items.values())


# Services with edits not yet saved write them when the process exits normally.
_running: weakref.WeakSet[MatchService] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for svc in list(_running):
        if svc.store.unsaved():
            try:
                svc.flush()
            except Exception:  # the next start-up sync repairs from the database
                logger.exception("saving the indexes at exit failed")
