"""The one place that composes encoder, embedding cache, index store and database.

`build_service(settings)` gives a process its `MatchService`: the site builds one per worker
on first use (`web.matching`), the CLI commands and `python -m service demo` build their own.
A test passes `encoder=` (for instance a counting fake) and its own session factory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from corpora.db import create_engine_for, make_sessionmaker
from corpora.items import DatabaseItems
from embeddings.base import Encoder
from embeddings.cache import CachedEncoder, EmbeddingCache
from embeddings.loader import load_encoder
from matcher.index_backend import IndexBackend
from matcher.indexing import IndexStore, SyncReport
from matcher.indexing import open_store as open_saved_store
from service.matching import MatchService
from settings import Settings


def encoder_for(settings: Settings) -> Encoder:
    """The encoder the settings name (model and runtime), loaded once per process."""
    return load_encoder(settings.model, backend=settings.backend, models_dir=settings.models_dir)


def backend_for(settings: Settings) -> IndexBackend:
    """Where the settings put the vector indexes (in process, or on Milvus)."""
    if settings.index_backend == "milvus":
        return IndexBackend("milvus", settings.milvus_uri_or_default,
                            settings.milvus_collection_prefix, settings.milvus_index_type,
                            settings.milvus_lexical)
    return IndexBackend()


def build_service(settings: Settings, encoder: Encoder | None = None, *,
                  sessions: sessionmaker[Session] | None = None,
                  load: bool = True) -> MatchService:
    """The service over the saved indexes (none with `load=False`), not yet synced.

    `encoder` defaults to the settings' model; it is always wrapped in the shared embedding
    cache, so the model runs once per text whichever process gets there first. `sessions`
    defaults to a new engine on the settings' database."""
    if encoder is None:
        encoder = encoder_for(settings)
    cached = CachedEncoder(encoder, EmbeddingCache(settings.embedding_cache))
    store = IndexStore(settings.home, cached, backend_for(settings))
    if load:
        store.load()
    if sessions is None:
        sessions = make_sessionmaker(create_engine_for(settings.database_url))
    return MatchService(store, sessions, settings.coverage_top_k, settings.index_poll_seconds,
                        settings.index_save_seconds, settings.coverage_max_age_seconds)


def open_store(home: Path, encoder: Encoder, sessions: Callable[[], Session], *,
               progress: bool = False, backend: IndexBackend | None = None
               ) -> tuple[IndexStore, list[SyncReport]]:
    """Load the saved indexes under `home` and repair any difference from the database."""
    with sessions() as session:
        return open_saved_store(home, encoder, DatabaseItems(session), progress=progress,
                                backend=backend)
