"""Build a separate MATCHER_HOME holding the demo corpus scaled to 100,000 results, for load tests.

    .venv/bin/python benchmarks/scale_demo.py [--home /tmp/g60-load] [--source var]
        [--results 100000] [--cosine 0.97] [--force]

Then serve it with the real model, e.g.

    MATCHER_HOME=/tmp/g60-load .venv/bin/gunicorn -w 1 --threads 8 -b 127.0.0.1:5055 web.wsgi:app

and drive it with benchmarks/load.py and benchmarks/soak.py.

Why not simply import 100,000 results: encoding them with the real model takes over an hour
on two cores, and a load test measures serving, not encoding. So the copies are made from the
demo site's own data and its already computed vectors, and the site starts on them without
encoding anything (its start-up sync finds every hash in step).

How the copies are made, exactly:

* The source home (`--source`, default /work/main/var) is only ever read: its database and
  embedding cache are copied with SQLite's online backup from a read-only (`mode=ro`)
  connection, its indexes with a plain file copy.
* The copied database keeps every demo row (organisations, needs, the 4,654 results,
  accounts, shortlists) and is migrated to the current schema. Copy n (n = 0, 1, ...) of the
  results is the n mod N-th demo result (N demo results, in id order), batch b = n div N + 1:
  every column the same (organisation, abstract, keywords, type, status...) except
  `title` = original title + "（扩容副本b）" (cut to fit 200 characters) and `external_id` =
  original + "-xb", so that the importer's rules (unique external id per organisation,
  distinct dedup key) hold, and `created_at` / `updated_at` = the time of the copy;
  `content_hash` and `dedup_key` are computed with
  `corpora.models.content_hash_of` / `dedup_key_of` exactly as the ORM would. Rows are written
  with SQLAlchemy core inserts (5,000 a statement) on a plain connection: no ORM events, so
  the index change log (corpora.changes) does not ask every worker to re-index 95,000 rows.
  Copies are added until the database holds `--results` results in all.
* Each copy's vectors are its original's stored window vectors (from the demo's
  `indexes/result/vectors` and `windows`), each nudged by deterministic Gaussian noise and
  renormalised so that its cosine with the original is `--cosine` (0.97). The copy's real
  embedding would differ a little too (its title differs), and exact duplicates would make
  the IVF index's training and recall calibration degenerate (ties everywhere), which is not
  what a real 100k corpus looks like. BM25 postings are built from the copy's real text.
* The scaled index is written through `matcher.indexing.IndexStore.save_side`, and its
  `hashes.json` carries each copy's real content hash (from the database), so the copies
  count as indexed. Demo items keep the hashes the demo index had; if the demo database moved
  on since its index was saved, the site's start-up sync re-encodes just those few items.
* The demo accounts exist (`service.demo.ensure_demo_accounts`) with the password
  g60-demo-2026 (reset to it in the copy if the demo site's was changed).
* `models/multilingual-e5-small` is a tree of symbolic links to the demo's model files, so
  nothing is rebuilt and the model's verification caches are written under the new home,
  never into the source.

The script ends by checking, through a fresh `IndexStore`, that nothing is left to sync, and
by loading the real encoder to confirm its name is the one the indexes were saved under.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from corpora.db import create_engine_for, make_sessionmaker, upgrade  # noqa: E402
from corpora.items import DatabaseItems, content_hashes, load_items  # noqa: E402
from corpora.models import (  # noqa: E402
    Result,
    User,
    content_hash_of,
    dedup_key_of,
    split_joined,
)
from matcher.collection import window_id  # noqa: E402
from matcher.indexing import IndexStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "g60-demo-2026"  # service.demo.DEMO_PASSWORD
DEMO_USERS = ("admin", "officer", "firm", "firm2", "office", "office2")
INSERT_CHUNK = 5_000
TITLE_MAX = 200
EXTERNAL_ID_MAX = 100
MODEL_FOLDER = "multilingual-e5-small"


class FrozenEncoder:
    """Name and dimension of the demo's model, without the model: `IndexStore` and
    `Matcher` need them to load and save indexes, and nothing here may encode."""

    def __init__(self, name: str, dimension: int) -> None:
        self.name = name
        self.dimension = dimension

    def encode_queries(self, texts: Any, *, progress: bool = False) -> np.ndarray:
        raise RuntimeError("scale_demo never encodes: every vector comes from the demo index")

    encode_documents = encode_queries


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent snapshot of a live SQLite database (WAL included), opened read-only."""
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        reader.close()
        writer.close()


def link_model(source: Path, target: Path) -> None:
    """Mirror the model folder with symbolic links to its files; dot files (build locks,
    verification caches) are per home and left out."""
    for folder, _dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            if not name.startswith("."):
                (target / relative / name).symlink_to(Path(folder) / name)


def copy_title(title: str, batch: int) -> str:
    suffix = f"（扩容副本{batch}）"
    return title[:TITLE_MAX - len(suffix)] + suffix


def copy_rows(originals: list[dict[str, Any]], count: int) -> tuple[list[dict[str, Any]],
                                                                      list[int]]:
    """`count` new result rows (no id yet) and, per row, the id of the row it copies."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    sources: list[int] = []
    for n in range(count):
        original = originals[n % len(originals)]
        batch = n // len(originals) + 1
        row = {key: value for key, value in original.items() if key != "id"}
        row["title"] = copy_title(original["title"], batch)
        if original["external_id"]:
            row["external_id"] = f"{original['external_id']}-x{batch}"[:EXTERNAL_ID_MAX]
        keywords = split_joined(original["keywords"])
        row["content_hash"] = content_hash_of("result", row["title"], row["abstract"], keywords)
        row["dedup_key"] = dedup_key_of(row["title"], row["abstract"], keywords)
        row["created_at"] = row["updated_at"] = now
        rows.append(row)
        sources.append(original["id"])
    return rows, sources


def nudge(vectors: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """Each unit row moved to cosine `cosine` with itself, in a random direction."""
    if cosine >= 1.0:
        return vectors.astype(np.float32)
    noise = rng.standard_normal(vectors.shape).astype(np.float32)
    # Keep only the part orthogonal to the row, scaled to tan(angle): then renormalising
    # gives exactly the wanted cosine.
    noise -= (noise * vectors).sum(axis=1, keepdims=True) * vectors
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    moved = vectors + noise * np.tan(np.arccos(cosine))
    return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)


def ensure_accounts(home: Path, url: str) -> None:
    from service.accounts import authenticate, hash_password
    from service.demo import ensure_demo_accounts
    from web import create_app
    from web.database import sessions

    app = create_app({"MATCHER_HOME": home, "DATABASE_URL": url,
                      "SYNC_INDEX_ON_START": False})
    with app.app_context():
        created = ensure_demo_accounts(sessions())
        log(f"demo accounts created: {created or 'none (all present)'}")
        with sessions()() as session:
            for username in DEMO_USERS:
                user = session.scalar(select(User).where(User.username == username))
                if user is not None and authenticate(session, user.username,
                                                     DEMO_PASSWORD) is None:
                    user.password_hash = hash_password(DEMO_PASSWORD)
                    user.is_active = True
                    log(f"password of {user.username} reset to the demo password in the copy")
            session.commit()
    app.extensions["matcher.engine"].dispose()


def build(args: argparse.Namespace) -> None:
    source: Path = args.source.resolve()
    home: Path = args.home.resolve()
    if home == source or source in home.parents:
        raise SystemExit("--home must be outside --source")
    if home.exists():
        if not args.force:
            raise SystemExit(f"{home} exists: pass --force to rebuild it")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    os.environ["MATCHER_HOME"] = str(home)  # the model and cache paths follow it
    os.environ.pop("DATABASE_URL", None)
    started = time.perf_counter()

    database = home / "matcher.sqlite"
    url = f"sqlite:///{database}"
    copy_sqlite(source / "matcher.sqlite", database)
    upgrade(url)
    log(f"database copied and migrated: {database}")

    engine = create_engine_for(url)
    factory = make_sessionmaker(engine)
    table = Result.__table__
    with engine.connect() as connection:
        originals = [dict(row) for row in
                     connection.execute(select(table).order_by(table.c.id)).mappings()]
    wanted = args.results - len(originals)
    if wanted <= 0:
        raise SystemExit(f"the demo already holds {len(originals)} results")
    rows, sources = copy_rows(originals, wanted)
    first_new = max(r["id"] for r in originals) + 1
    with engine.begin() as connection:
        for start in range(0, len(rows), INSERT_CHUNK):
            connection.execute(insert(table), rows[start:start + INSERT_CHUNK])
    with engine.connect() as connection:
        new_ids = list(connection.scalars(
            select(table.c.id).where(table.c.id >= first_new).order_by(table.c.id)))
    if len(new_ids) != len(rows):
        raise SystemExit(f"inserted {len(rows)} rows but found {len(new_ids)}")
    original_of = dict(zip(new_ids, sources, strict=True))  # ids follow insertion order
    log(f"{len(rows)} copies inserted ({len(originals)} demo results, "
        f"{len(originals) + len(rows)} in all)")

    ensure_accounts(home, url)

    shutil.copytree(source / "indexes", home / "indexes")
    hashes_file = home / "indexes" / "result" / "hashes.json"
    model_name = json.loads(hashes_file.read_text(encoding="utf-8"))["model"]
    sidecar = home / "indexes" / "result" / "vectors" / "index.json"
    dimension = int(json.loads(sidecar.read_text(encoding="utf-8"))["dimension"])
    encoder = FrozenEncoder(model_name, dimension)
    store = IndexStore(home, encoder)
    store.load()
    coll = store.matcher.collections["result"]
    if not coll.vectors.count():
        raise SystemExit(f"could not load the demo's result index under {source / 'indexes'}")
    log(f"demo index loaded: {coll.vectors.count()} result vectors, model {model_name}")

    with factory() as session:
        items = load_items(session, "result", ids=new_ids)  # active copies only
        hashes = content_hashes(session, "result", ids=[item.id for item in items])
    stored = set(coll.vectors.ids().tolist())
    items = [item for item in items if original_of[item.id] in stored]
    firsts = coll.vectors.vectors(np.array([original_of[i.id] for i in items], dtype=np.int64))
    rng = np.random.default_rng(args.seed)
    firsts = nudge(firsts, args.cosine, rng)
    windows: list[np.ndarray] = []
    for n, item in enumerate(items):
        original = original_of[item.id]
        extra = coll.extra_windows.get(original, 0)
        if extra:
            ids = np.array([window_id(original, w) for w in range(1, extra + 1)], dtype=np.int64)
            more = nudge(coll.windows.vectors(ids), args.cosine, rng)
            windows.append(np.vstack([firsts[n:n + 1], more]))
        else:
            windows.append(firsts[n:n + 1])
    log(f"{len(items)} copies to index ({sum(len(w) for w in windows)} window vectors); "
        "building BM25 postings and the vector index")
    store.matcher.index_items(items, windows=windows, progress=True)
    # IndexStore has no public setter for "these items are indexed at these hashes" (its
    # sync would re-encode them): the demo items keep the hashes their vectors were made at.
    indexed = store._indexed_hashes["result"]  # noqa: SLF001
    indexed.update((item.id, hashes[item.id]) for item in items)
    store.save_side("result")
    log(f"scaled result index saved: {coll.vectors.count()} vectors, kind "
        f"{coll.vectors.meta.get('kind')}")

    cache = home / "cache"
    cache.mkdir()
    if (source / "cache" / "embeddings.sqlite").exists() and not args.no_cache:
        copy_sqlite(source / "cache" / "embeddings.sqlite", cache / "embeddings.sqlite")
        log("embedding cache copied (queries the demo site has seen stay cached)")
    link_model(source / "models" / MODEL_FOLDER, home / "models" / MODEL_FOLDER)

    check = IndexStore(home, encoder)
    check.load()
    with factory() as session:
        reports = check.check(DatabaseItems(session))
    for report in reports:
        log(f"left for the site's start-up sync: {report.summary()}")
    engine.dispose()
    if not args.skip_model_check:
        from service.composition import encoder_for
        from settings import Settings

        real = encoder_for(Settings.from_env())
        if real.name != model_name:
            raise SystemExit(f"the model loads as {real.name!r}, the index was saved under "
                             f"{model_name!r}: the site would re-encode everything")
        log(f"model check: {real.name} matches the index")
    log(f"done in {time.perf_counter() - started:.0f} s: MATCHER_HOME={home}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/g60-load"))
    parser.add_argument("--source", type=Path, default=REPO / "var",
                        help="the demo site's MATCHER_HOME (read only)")
    parser.add_argument("--results", type=int, default=100_000,
                        help="results in the scaled database, demo ones included")
    parser.add_argument("--cosine", type=float, default=0.97,
                        help="cosine between a copy's vectors and its original's")
    parser.add_argument("--seed", type=int, default=60)
    parser.add_argument("--force", action="store_true", help="replace an existing --home")
    parser.add_argument("--no-cache", action="store_true",
                        help="start with an empty embedding cache")
    parser.add_argument("--skip-model-check", action="store_true")
    build(parser.parse_args(argv))


if __name__ == "__main__":
    main()
