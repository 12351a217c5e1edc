"""Bulk embedding on a local Ray with two workers: the vectors are the single-process path's,
a second run encodes nothing, and an interrupted run resumes where it stopped.

One local Ray serves the whole module (starting one costs seconds); `embed_bulk` leaves a
Ray it did not start running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from embeddings.bulk import ROLE, BulkEmbeddingError, EncoderSpec, embed_bulk, start_ray
from embeddings.cache import CachedEncoder, EmbeddingCache, text_key
from embeddings.fake import FakeEncoder
from settings import Settings

# Ray Data's DataContext sets deprecated fields of its own on creation.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")

WORKERS = 2
WINDOW_CHARS = 300  # the fake encoder's window: every patent with its claims has several


def real_texts(count: int, long_every: int = 6) -> list[str]:
    """Chinese paper and patent abstracts; every `long_every`-th text is a patent's abstract
    with its claims (thousands of characters: several windows for either encoder)."""
    data = Settings.from_env().datasets / "data"
    papers, patents = (
        [json.loads(line) for line in (data / name).read_text(encoding="utf-8").splitlines()]
        for name in ("csl_papers.jsonl", "patents.jsonl"))
    texts: list[str] = []
    for position in range(count):
        if position % long_every == 0:
            patent = patents[position]
            texts.append(f"{patent['title']}\n{patent['abstract']}\n{patent['claims']}")
        elif position % 2:
            paper = papers[position]
            texts.append(f"{paper['title']}\n{paper['abstract']}")
        else:
            patent = patents[position]
            texts.append(f"{patent['title']}\n{patent['abstract']}")
    return texts


class LoggingFake(FakeEncoder):
    """The windowed fake, writing how many texts each call encodes to a file (the actors run
    in other processes) and failing once it has encoded `fail_after` batches."""

    def __init__(self, log: Path, fail_after: int | None) -> None:
        super().__init__(64, window_chars=WINDOW_CHARS)
        self.log = log
        self.fail_after = fail_after
        self.batches = 0

    def encode_document_windows(self, texts, *, progress=False):  # noqa: ANN001, ANN201
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise RuntimeError("encoder stopped (test)")
        self.batches += 1
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(f"{len(texts)}\n")
        return super().encode_document_windows(texts)


@dataclass(frozen=True)
class LoggingFactory:
    log: Path
    fail_after: int | None = None

    def __call__(self) -> LoggingFake:
        return LoggingFake(self.log, self.fail_after)


def logged(log: Path) -> int:
    """Texts the actors encoded, as they wrote it down."""
    if not log.exists():
        return 0
    return sum(int(line) for line in log.read_text(encoding="utf-8").split())


REFERENCE = FakeEncoder(64, window_chars=WINDOW_CHARS)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    started = start_ray(None, WORKERS)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return real_texts(300)


def stored_rows(cache_path: Path, name: str, dimension: int, texts: list[str]
                ) -> dict[bytes, np.ndarray]:
    cache = EmbeddingCache(cache_path)
    try:
        return cache.get_many(name, ROLE, [text_key(t) for t in texts], dimension, rows=True)
    finally:
        cache.close()


def assert_same_windows(bulk: dict[bytes, np.ndarray], texts: list[str],
                        single: list[np.ndarray]) -> None:
    for text, expected in zip(texts, single, strict=True):
        got = bulk[text_key(text)]
        assert got.shape == expected.shape, "same number of windows per text"
        cosines = np.sum(got * expected, axis=1)
        assert cosines.min() >= 0.9999, cosines.min()


def test_bulk_equals_the_single_process_path_and_a_rerun_encodes_nothing(
        local_ray: None, texts: list[str], tmp_path: Path) -> None:
    cache_path = tmp_path / "bulk.sqlite"
    log = tmp_path / "calls.log"
    report = embed_bulk(texts, LoggingFactory(log), cache_path, REFERENCE.name,
                        REFERENCE.dimension, workers=WORKERS, batch_size=16, progress=False,
                        total=len(texts))
    assert (report.seen, report.cached, report.encoded) == (300, 0, 300)
    assert logged(log) == 300, "each text encoded once, by some actor"
    assert report.windows > 300, "long texts give several windows"

    single_cache = EmbeddingCache(tmp_path / "single.sqlite")
    single = CachedEncoder(REFERENCE, single_cache).encode_document_windows(texts)
    single_cache.close()
    assert_same_windows(stored_rows(cache_path, REFERENCE.name, REFERENCE.dimension, texts),
                        texts, single)

    again = embed_bulk(texts, LoggingFactory(log), cache_path, REFERENCE.name,
                       REFERENCE.dimension, workers=WORKERS, batch_size=16, progress=False)
    assert (again.seen, again.cached, again.encoded, again.rounds) == (300, 300, 0, 0)
    assert logged(log) == 300, "the rerun encoded nothing"

    # The index's own path (CachedEncoder over the same cache) then encodes nothing either.
    counting = LoggingFake(tmp_path / "sync.log", None)
    cache = EmbeddingCache(cache_path)
    CachedEncoder(counting, cache).encode_document_windows(texts)
    cache.close()
    assert logged(tmp_path / "sync.log") == 0


def test_blank_and_repeated_texts_are_counted_not_encoded(
        local_ray: None, texts: list[str], tmp_path: Path) -> None:
    source = [*texts[:20], "", "   ", *texts[:5]]
    log = tmp_path / "calls.log"
    report = embed_bulk(iter(source), LoggingFactory(log), tmp_path / "c.sqlite",
                        REFERENCE.name, REFERENCE.dimension, workers=WORKERS, batch_size=8,
                        progress=False)
    assert (report.seen, report.blank, report.duplicates, report.encoded) == (27, 2, 5, 20)
    assert logged(log) == 20


def test_an_interrupted_run_keeps_its_batches_and_the_rerun_encodes_only_the_rest(
        local_ray: None, texts: list[str], tmp_path: Path) -> None:
    cache_path = tmp_path / "bulk.sqlite"
    with pytest.raises(BulkEmbeddingError) as stopped:
        embed_bulk(texts, LoggingFactory(tmp_path / "first.log", fail_after=3), cache_path,
                   REFERENCE.name, REFERENCE.dimension, workers=WORKERS, batch_size=10,
                   progress=False)
    kept = len(stored_rows(cache_path, REFERENCE.name, REFERENCE.dimension, texts))
    assert kept == stopped.value.stored
    assert 0 < kept < len(texts), "some batches were stored before the failure, not all"

    log = tmp_path / "second.log"
    report = embed_bulk(texts, LoggingFactory(log), cache_path, REFERENCE.name,
                        REFERENCE.dimension, workers=WORKERS, batch_size=10, progress=False)
    assert (report.cached, report.encoded) == (kept, len(texts) - kept)
    assert logged(log) == len(texts) - kept, "only the missing texts reached the model"

    single_cache = EmbeddingCache(tmp_path / "single.sqlite")
    single = CachedEncoder(REFERENCE, single_cache).encode_document_windows(texts)
    single_cache.close()
    assert_same_windows(stored_rows(cache_path, REFERENCE.name, REFERENCE.dimension, texts),
                        texts, single)


def test_a_worker_with_another_model_is_refused(local_ray: None, texts: list[str],
                                                tmp_path: Path) -> None:
    with pytest.raises(BulkEmbeddingError, match="driver expects"):
        embed_bulk(texts[:10], EncoderSpec("fake"), tmp_path / "c.sqlite", REFERENCE.name,
                   REFERENCE.dimension, workers=WORKERS, batch_size=5, progress=False)
    assert not stored_rows(tmp_path / "c.sqlite", REFERENCE.name, REFERENCE.dimension, texts)


@pytest.mark.slow
def test_the_default_model_on_two_workers_equals_the_single_process_path(
        local_ray: None, tmp_path: Path) -> None:
    from embeddings.loader import load_encoder

    settings = Settings.from_env()
    texts = real_texts(96, long_every=8)
    spec = EncoderSpec(settings.model, settings.backend, settings.models_dir)
    encoder = load_encoder(settings.model, backend=settings.backend,
                           models_dir=settings.models_dir)
    cache_path = tmp_path / "bulk.sqlite"
    report = embed_bulk(texts, spec, cache_path, encoder.name, encoder.dimension,
                        workers=WORKERS, batch_size=16, progress=False)
    assert report.encoded == len(texts)
    assert report.windows > len(texts), "the long patents were split into windows"

    single_cache = EmbeddingCache(tmp_path / "single.sqlite")
    single = CachedEncoder(encoder, single_cache).encode_document_windows(texts)
    single_cache.close()
    assert_same_windows(stored_rows(cache_path, encoder.name, encoder.dimension, texts),
                        texts, single)

    again = embed_bulk(texts, spec, cache_path, encoder.name, encoder.dimension,
                       workers=WORKERS, batch_size=16, progress=False)
    assert (again.cached, again.encoded) == (len(texts), 0)


def test_a_local_ray_that_does_not_start_is_a_named_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What CI saw once: the GCS did not publish its port in time. The run says so, with
    the GCS's own log lines, and leaves no half-started Ray behind."""
    import ray

    logs = tmp_path / "ray" / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "gcs_server.err").write_text("bind: address already in use\n")
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    monkeypatch.delenv("RAY_gcs_server_port_wait_time_s", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    seen: dict[str, str | None] = {}
    shut: list[bool] = []

    def fail(**kwargs: object) -> None:
        seen["wait"] = os.environ.get("RAY_gcs_server_port_wait_time_s")  # noqa: SIM112
        raise RuntimeError("Timed out waiting for file gcs_server_port_x")

    monkeypatch.setattr(ray, "init", fail)
    monkeypatch.setattr(ray, "shutdown", lambda: shut.append(True))
    with pytest.raises(BulkEmbeddingError, match="(?s)did not start.*Timed out.*already in use"):
        start_ray(None, WORKERS)
    assert seen["wait"] == "180", "a local start waits longer than Ray's 30 s"
    assert shut == [True]
