"""`python -m service embed-bulk`: fill the embedding cache on Ray, then sync the index.

The texts come from the database (every matchable need and result, as `Item.full_text`: what
the index embeds), from a JSONL file (a `text` field per line) or from a Parquet file (a
`text` column). `embeddings.bulk.embed_bulk` encodes the ones the cache lacks on a local Ray
(`--workers`, default the machine's cores) or on a cluster (`--address`). After a database
run the index is synced as `flask reindex` does: every text is cached by then, so the sync
encodes nothing, and it says so. File runs only fill the cache (the texts are not records
yet; the import that makes them records then finds them cached).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpora.db import create_engine_for, make_sessionmaker
from corpora.items import DatabaseItems
from embeddings.base import Encoder
from embeddings.base import encode_document_windows as windows_of
from embeddings.bulk import (
    DEFAULT_BATCH_SIZE,
    BulkEmbeddingError,
    BulkReport,
    EncoderSpec,
    embed_bulk,
)
from matcher.indexing import SyncReport
from matcher.types import SIDES
from service.composition import build_service, encoder_for
from settings import Settings

# Rows loaded from the database at a time, so a million records never sit in memory at once.
_DB_PAGE = 1_000


class SourceError(ValueError):
    """A source file that cannot be read as texts; the message names the file and line."""


@dataclass(frozen=True)
class TextSource:
    """Texts to embed, read lazily; `total` (when known) sizes the progress bar."""

    texts: Iterator[str]
    total: int | None
    label: str


def jsonl_source(path: Path) -> TextSource:
    with path.open(encoding="utf-8") as handle:
        total = sum(1 for line in handle if line.strip())

    def texts() -> Iterator[str]:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line)["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise SourceError(f"{path}:{number}: 每行应为带 text 字段的 JSON 对象"
                                      f"（{type(error).__name__}）") from error
                yield text if isinstance(text, str) else ""

    return TextSource(texts(), total, str(path))


def parquet_source(path: Path) -> TextSource:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if "text" not in parquet.schema_arrow.names:
        raise SourceError(f"{path}: 没有 text 列（列: {', '.join(parquet.schema_arrow.names)}）")

    def texts() -> Iterator[str]:
        for batch in parquet.iter_batches(columns=["text"], batch_size=10_000):
            for text in batch.column(0).to_pylist():
                yield text if isinstance(text, str) else ""

    return TextSource(texts(), parquet.metadata.num_rows, str(path))


def database_source(settings: Settings) -> TextSource:
    """Both sides' matchable items, page by page: the texts index sync would embed."""
    engine = create_engine_for(settings.database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        ids = {side: sorted(DatabaseItems(session).content_hashes(side)) for side in SIDES}

    def texts() -> Iterator[str]:
        try:
            for side in SIDES:
                for start in range(0, len(ids[side]), _DB_PAGE):
                    with sessions() as session:
                        page = ids[side][start:start + _DB_PAGE]
                        items = DatabaseItems(session).load_items(side, page)
                    for item in items:
                        yield item.full_text
        finally:
            engine.dispose()

    return TextSource(texts(), sum(len(side_ids) for side_ids in ids.values()),
                      settings.database_url)


class CountingEncoder:
    """Passes everything through and counts the document texts that reach the model."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.documents = 0

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.inner.encode_queries(texts, progress=progress)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.documents += len(texts)
        return self.inner.encode_documents(texts, progress=progress)

    def encode_document_windows(self, texts: Sequence[str], *, progress: bool = False
                                ) -> list[np.ndarray]:
        self.documents += len(texts)
        return windows_of(self.inner, texts, progress=progress)


def sync_index(settings: Settings, encoder: Encoder, *, progress: bool
               ) -> tuple[list[SyncReport], int]:
    """Bring the index in step with the database; returns the reports and how many texts the
    sync had to encode (0 when the bulk run cached them all)."""
    counting = CountingEncoder(encoder)
    engine = create_engine_for(settings.database_url)
    try:
        svc = build_service(settings, counting, sessions=make_sessionmaker(engine))
        svc.start(sync=False)
        reports = svc.sync(progress=progress)
        for report in reports:
            if not report.total:  # nothing to index, so the sync wrote no files
                svc.store.save_side(report.side)
        svc.flush()
    finally:
        engine.dispose()
    return reports, counting.documents


def print_report(report: BulkReport, label: str) -> None:
    print(f"来源 {label}")
    print(f"texts seen {report.seen}, blank {report.blank}, duplicates {report.duplicates}, "
          f"already cached {report.cached}, encoded {report.encoded} "
          f"({report.windows} window vectors), {report.seconds:.1f} s, "
          f"{report.texts_per_second:.1f} texts/s on {report.workers} workers")


def run_embed_bulk(settings: Settings, *, from_db: bool, jsonl: Path | None,
                   parquet: Path | None, workers: int | None, address: str | None,
                   batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> int:
    if sum((from_db, jsonl is not None, parquet is not None)) != 1:
        print("error: 须指定且只指定一个来源: --from-db、--jsonl 或 --parquet", file=sys.stderr)
        return 2
    try:
        if from_db:
            source = database_source(settings)
        elif jsonl is not None:
            source = jsonl_source(jsonl)
        else:
            assert parquet is not None
            source = parquet_source(parquet)
    except (OSError, SourceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # The driver loads the model too: its name (weights fingerprint included) keys the cache,
    # and every worker's encoder is checked against it.
    encoder = encoder_for(settings)
    spec = EncoderSpec(settings.model, settings.backend, settings.models_dir)
    try:
        report = embed_bulk(source.texts, spec, settings.embedding_cache, encoder.name,
                            encoder.dimension, workers=workers, batch_size=batch_size,
                            address=address, progress=progress, total=source.total)
    except (SourceError, BulkEmbeddingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_report(report, source.label)
    if from_db:
        reports, encoded = sync_index(settings, encoder, progress=progress)
        for sync_report in reports:
            print(sync_report.summary())
        print(f"index sync encoded {encoded} texts")
    return 0


EMBED_BULK_HELP = (
    "encode many texts on Ray (local, or a cluster with --address) into the embedding cache; "
    "with --from-db the index is synced afterwards and encodes nothing. A rerun encodes only "
    "what is missing")


def add_parser(commands) -> None:  # noqa: ANN001 - argparse's private subparsers action
    bulk = commands.add_parser("embed-bulk", help=EMBED_BULK_HELP, description=EMBED_BULK_HELP)
    source = bulk.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-db", action="store_true",
                        help="every matchable need and result in the database")
    source.add_argument("--jsonl", type=Path, metavar="PATH", help="one JSON object per line, "
                        "with a text field")
    source.add_argument("--parquet", type=Path, metavar="PATH", help="a Parquet file with a "
                        "text column")
    bulk.add_argument("--workers", type=int, default=None,
                      help="encoder actors (default: this machine's cores; with --address, "
                      "the cluster's CPUs)")
    bulk.add_argument("--address", default=None,
                      help="a Ray cluster's head, host:6379 (every node with this repository "
                      "and its requirements; with token auth, RAY_AUTH_MODE/RAY_AUTH_TOKEN set "
                      "here too); default: a local Ray with --workers CPUs")
    bulk.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                      help=f"texts per batch sent to a worker (default {DEFAULT_BATCH_SIZE})")
    bulk.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_from_args(settings: Settings, args) -> int:  # noqa: ANN001 - argparse.Namespace
    return run_embed_bulk(settings, from_db=args.from_db, jsonl=args.jsonl,
                          parquet=args.parquet, workers=args.workers, address=args.address,
                          batch_size=args.batch_size, progress=not args.no_progress)
