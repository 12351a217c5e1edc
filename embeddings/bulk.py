"""Bulk embedding on Ray Data: a large import, or a full re-embed after a model change.

The single-process path (`CachedEncoder.encode_document_windows`, what index sync calls) runs
the model on one machine's cores. Here the driver reads the texts, drops every one the
embedding cache already holds (role "document-windows", keyed by `text_key`), and hands the
rest to a pool of encoder actors through `Dataset.map_batches`: each actor builds its encoder
once (`encoder_factory()`) and encodes batches with `encode_document_windows`, exactly what the
single-process path stores. The driver writes each finished batch to the cache as it arrives
(`iter_batches`), so a killed run keeps every batch it received and a rerun encodes only what
is missing; the index sync afterwards finds every text cached and encodes nothing.

Texts are handed to Ray in rounds of at most `round_size` missing texts, so the driver never
holds a whole corpus: each round is one Ray Data pipeline with its own actor pool (a model load
per actor per round, seconds against the minutes a round encodes).

Local runs start Ray with `workers` CPUs and shut it down again; with `address` the actors run
on an existing cluster (every node needs this repository and its requirements installed).
The cache file lives on the driver only: workers never touch it.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.base import Encoder, encode_document_windows
from embeddings.cache import EmbeddingCache, text_key

ROLE = "document-windows"
# The folder `embeddings` is imported from.
_IMPORT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BATCH_SIZE = 32
# How many source texts are checked against the cache in one lookup.
_LOOKUP_CHUNK = 1_000
# Loading the model and, on a fresh node, materializing it or building its int8 export.
_ACTOR_START_S = 900
_GCS_WAIT_VARIABLE = "RAY_gcs_server_port_wait_time_s"
_LOCAL_GCS_WAIT_S = 180
_MIN_ROUND = 50_000
_ROUND_PER_WORKER = 10_000


class BulkEmbeddingError(RuntimeError):
    """A run stopped part way; `stored` texts were written to the cache and stay there."""

    def __init__(self, message: str, stored: int) -> None:
        super().__init__(message)
        self.stored = stored


@dataclass(frozen=True)
class EncoderSpec:
    """A picklable encoder factory: Ray ships it to every actor, which loads the model once."""

    model: str
    backend: str | None = None
    models_dir: Path | None = None

    def __call__(self) -> Encoder:
        from embeddings.loader import load_encoder

        return load_encoder(self.model, backend=self.backend, models_dir=self.models_dir)


@dataclass
class BulkReport:
    seen: int = 0        # texts read from the source
    blank: int = 0       # empty or whitespace-only: nothing to embed (the index has none)
    duplicates: int = 0  # the same text again within this run
    cached: int = 0      # distinct texts the cache already held
    encoded: int = 0     # distinct texts encoded by this run and written to the cache
    windows: int = 0     # vectors written (a long text has one per window)
    rounds: int = 0
    workers: int = 0
    seconds: float = 0.0

    @property
    def texts_per_second(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (f"文本 {self.seen} 条（空白 {self.blank}，重复 {self.duplicates}），"
                f"已缓存 {self.cached}，本次编码 {self.encoded}（{self.windows} 个窗口向量），"
                f"{self.workers} 个编码进程，用时 {self.seconds:.1f}s，"
                f"{self.texts_per_second:.1f} 条/秒")


class _WindowActor:
    """One Ray actor: builds the encoder once, then encodes whatever batches it is given."""

    def __init__(self, encoder_factory: Callable[[], Encoder], model_name: str,
                 dimension: int) -> None:
        self.encoder = encoder_factory()
        self.mismatch = ""
        if self.encoder.name != model_name or self.encoder.dimension != dimension:
            # A node with other weights would otherwise file its vectors under this model.
            # Raised from the first batch, not here: a batch's error ends the run at once,
            # where an actor that dies starting leaves Ray Data waiting for a replacement.
            self.mismatch = (f"worker encoder is {self.encoder.name} "
                             f"({self.encoder.dimension}), the driver expects {model_name} "
                             f"({dimension})")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.mismatch:
            raise ValueError(self.mismatch)
        texts = [str(text) for text in batch["text"]]
        rows = encode_document_windows(self.encoder, texts)
        return {
            "key": batch["key"],
            "vectors": np.array([np.ascontiguousarray(row, dtype=np.float32).tobytes()
                                 for row in rows], dtype=object),
        }


def _actor_class(encoder_factory: Callable[[], Encoder], model_name: str, dimension: int
                 ) -> type[_WindowActor]:
    """The actor class with its arguments bound (Ray pickles the class, the factory with it):
    Ray Data then builds every actor, and any replacement, with no arguments to pass."""

    class WindowActor(_WindowActor):
        def __init__(self) -> None:
            super().__init__(encoder_factory, model_name, dimension)

    return WindowActor


def _missing_rounds(texts: Iterable[str], cache: EmbeddingCache, model_name: str,
                    dimension: int, report: BulkReport, round_size: int,
                    on_done: Callable[[int], None]) -> Iterator[list[dict[str, str]]]:
    """Rounds of {"key": hex, "text": ...} rows the cache lacks; counts the rest in `report`.

    The keys seen are kept to drop repeats (about 100 bytes a text: 1 GB at ten million)."""
    seen_keys: set[bytes] = set()
    pending: list[dict[str, str]] = []
    chunk: list[tuple[bytes, str]] = []

    def check(chunk: list[tuple[bytes, str]]) -> None:
        found = cache.get_many(model_name, ROLE, [key for key, _ in chunk], dimension, rows=True)
        skipped = 0
        for key, text in chunk:
            if key in found:
                report.cached += 1
                skipped += 1
            else:
                pending.append({"key": key.hex(), "text": text})
        on_done(skipped)

    for text in texts:
        report.seen += 1
        if not isinstance(text, str) or not text.strip():
            report.blank += 1
            on_done(1)
            continue
        key = text_key(text)
        if key in seen_keys:
            report.duplicates += 1
            on_done(1)
            continue
        seen_keys.add(key)
        chunk.append((key, text))
        if len(chunk) >= _LOOKUP_CHUNK:
            check(chunk)
            chunk = []
        if len(pending) >= round_size:
            yield pending
            pending = []
    if chunk:
        check(chunk)
    while pending:
        yield pending[:round_size]
        pending = pending[round_size:]


# "ValueError: message" lines of the worker's traceback, as Ray's error text carries it.
_ERROR_LINE = re.compile(r"^\s*([\w.]+(?:Error|Exception|Exit))\b:?\s*(.*)$")


def _worker_error(error: BaseException) -> str:
    """What the worker raised, out of Ray's wrappers: Ray Data re-raises a failed batch as
    its own UserCodeException and keeps the original only as text in the message."""
    for line in str(error).splitlines():
        match = _ERROR_LINE.match(line)
        if match and not match.group(1).startswith("ray."):
            return f"{match.group(1)}: {match.group(2)}"
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"


def start_ray(address: str | None, workers: int) -> bool:
    """Connect to `address`, or start a local Ray with `workers` CPUs; True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    # Ray's own start-up notes (and its workers' logs) would bury the progress bar.
    quiet = {"include_dashboard": False, "log_to_driver": False,
             "logging_level": logging.ERROR, "ignore_reinit_error": True}
    if address:
        ray.init(address=address, **quiet)
    else:
        # "local": a Ray of our own, even where `ray start` left a cluster on this machine
        # (plain ray.init() would join that one). Its workers import this code from where the
        # driver has it, whatever their cwd.
        paths = [str(_IMPORT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        # Ray gives its GCS 30 s to publish its port; on a busy 2-core machine (a CI runner
        # in the middle of a test suite) it has taken longer. An operator's value still wins.
        os.environ.setdefault(_GCS_WAIT_VARIABLE, str(_LOCAL_GCS_WAIT_S))
        try:
            ray.init(address="local", num_cpus=workers, runtime_env={
                "env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}, **quiet)
        except RuntimeError as error:
            ray.shutdown()
            raise BulkEmbeddingError(f"the local Ray did not start: {error}\n{_gcs_log_tail()}",
                                     0) from error
    return True


def _gcs_log_tail(limit: int = 2_000) -> str:
    """The end of the local GCS's own logs, which say why it did not come up."""
    logs = Path(tempfile.gettempdir()) / "ray" / "session_latest" / "logs"
    parts = []
    for name in ("gcs_server.err", "gcs_server.out"):
        try:
            text = (logs / name).read_text(errors="replace")
        except OSError:
            continue
        parts.append(f"{logs / name}:\n{text[-limit:]}")
    return "\n".join(parts) or f"(no GCS logs under {logs})"


def _quiet_ray_data() -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours is on the driver, per text
    context.print_on_execution_start = False
    # An actor that cannot start (a node without the model, say) fails the run, not hangs it.
    context.wait_for_min_actors_s = _ACTOR_START_S
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _store_batches(encoded, cache: EmbeddingCache, model_name: str,  # noqa: ANN001
                   dimension: int, report: BulkReport, bar) -> str:  # noqa: ANN001
    """Write each encoded batch to the cache as it arrives; "" or why the pipeline stopped.

    The failure comes back as text, not as Ray's exception: that one's traceback holds the
    executor and its actor handles, which would keep the actors (and their CPUs) alive."""
    try:
        for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
            keys = [bytes.fromhex(str(key)) for key in batch["key"]]
            vectors = [np.frombuffer(blob, dtype=np.float32).reshape(-1, dimension)
                       for blob in batch["vectors"]]
            cache.put_many(model_name, ROLE, keys, vectors)
            report.encoded += len(keys)
            report.windows += sum(len(windows) for windows in vectors)
            bar.update(len(keys))
    except Exception as error:
        return (f"批量编码中断：已写入缓存 {report.encoded} 条，重新运行将只编码其余文本"
                f"（{_worker_error(error)[:500]}）")
    return ""


def embed_bulk(texts: Iterable[str], encoder_factory: Callable[[], Encoder],
               cache_path: Path | str, model_name: str, dimension: int, *,
               workers: int | None = None,
               batch_size: int = DEFAULT_BATCH_SIZE, address: str | None = None,
               progress: bool = True, total: int | None = None, cpus_per_worker: float = 1.0,
               round_size: int | None = None) -> BulkReport:
    """Encode every text of `texts` the cache lacks on `workers` Ray actors; store the windows.

    `encoder_factory` must pickle (e.g. `EncoderSpec`) and build an encoder named `model_name`
    with `dimension`; `total` (the number of texts, when known) sizes the progress bar.
    `workers` defaults to this machine's cores, or with `address` to the cluster's CPUs.
    Raises BulkEmbeddingError when a batch fails: what was stored before stays stored.
    """
    import ray
    import ray.data
    from tqdm import tqdm

    if (workers is not None and workers < 1) or batch_size < 1:
        raise ValueError("workers and batch_size must be positive")
    started_at = time.perf_counter()
    started = False
    if workers is None and address:
        # As many actors as the cluster has CPUs for.
        started = start_ray(address, 0)
        workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
    workers = workers or os.cpu_count() or 1
    round_size = round_size or max(_MIN_ROUND, _ROUND_PER_WORKER * workers)
    report = BulkReport(workers=workers)
    cache = EmbeddingCache(cache_path)
    bar = tqdm(total=total, desc="bulk embedding", unit="text", disable=not progress)
    try:
        rounds = _missing_rounds(texts, cache, model_name, dimension, report, round_size,
                                 bar.update)
        for rows in rounds:
            if not report.rounds:  # no Ray at all when everything is cached already
                started = start_ray(address, workers) or started
                _quiet_ray_data()
            report.rounds += 1
            # One block per batch: each batch reaches the driver (and the cache) on its own.
            dataset = ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows)
                                                                               / batch_size))
            encoded = dataset.map_batches(
                _actor_class(encoder_factory, model_name, dimension),
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=cpus_per_worker,
            )
            failure = _store_batches(encoded, cache, model_name, dimension, report, bar)
            # Nothing of the failed pipeline may outlive this round: Ray kills an actor only
            # once no handle to it is left, and a lingering one holds its CPU from the next run.
            del dataset, encoded
            if failure:
                gc.collect()  # Ray's own wrappers hold the handles in reference cycles
                raise BulkEmbeddingError(failure, report.encoded)
    finally:
        bar.close()
        cache.close()
        if started:
            ray.shutdown()
        report.seconds = time.perf_counter() - started_at
    return report
