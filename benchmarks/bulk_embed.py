"""Bulk embedding throughput: one process against Ray with local workers, on the same texts.

Both start from an empty embedding cache and store the same thing (every window of every
text, role "document-windows"):
  * single process: `CachedEncoder(encoder, cache).encode_document_windows(texts)`, what index
    sync runs; torch uses every core in one process; the model is loaded before the clock
    starts;
  * Ray: `embeddings.bulk.embed_bulk` on a local Ray with `--workers` encoder actors (one
    CPU, so one torch thread, each); the clock includes the actors loading the model (Ray's
    own start is timed apart), as a real run pays it.
Each is timed by the wall clock and by the CPU seconds its processes used (the single
process; the Ray actors, which write theirs to a file, plus the driver): on a machine other
work shares, wall time says little and CPU time still says what the work costs. The vectors
of the two are compared window by window (cosine), and the Ray rate is extrapolated to a
cluster as arithmetic (nodes like this machine, linear scaling assumed), not measured. Run
niced on an otherwise idle machine; it has 2 cores.

    nice python benchmarks/bulk_embed.py                      # 2,000 texts, default model
    nice python benchmarks/bulk_embed.py --texts 300 --model fake
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embeddings.base import Encoder, encode_document_windows  # noqa: E402
from embeddings.bulk import ROLE, EncoderSpec, embed_bulk, start_ray  # noqa: E402
from embeddings.cache import CachedEncoder, EmbeddingCache, text_key  # noqa: E402
from embeddings.loader import load_encoder  # noqa: E402
from settings import Settings  # noqa: E402


class MeteredEncoder:
    """Records its process's CPU seconds (after the model load, and after each batch) in a
    file: the actors are other processes, and CPU time, unlike wall time, hardly changes
    when other work shares the machine."""

    def __init__(self, inner: Encoder, folder: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.file = folder / f"cpu-{os.getpid()}.txt"
        self.loaded = time.process_time()
        self.file.write_text(f"{self.loaded} {self.loaded}")

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.inner.encode_queries(texts, progress=progress)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.inner.encode_documents(texts, progress=progress)

    def encode_document_windows(self, texts: Sequence[str], *, progress: bool = False
                                ) -> list[np.ndarray]:
        rows = encode_document_windows(self.inner, texts)
        self.file.write_text(f"{self.loaded} {time.process_time()}")
        return rows


@dataclass(frozen=True)
class MeteredSpec:
    spec: EncoderSpec
    folder: Path

    def __call__(self) -> MeteredEncoder:
        return MeteredEncoder(self.spec(), self.folder)


def actor_cpu(folder: Path) -> tuple[float, float, int]:
    """(CPU seconds loading the model, CPU seconds encoding, actors) over every actor."""
    loads = encodes = 0.0
    files = sorted(folder.glob("cpu-*.txt"))
    for file in files:
        loaded, last = (float(value) for value in file.read_text().split())
        loads += loaded
        encodes += last - loaded
    return loads, encodes, len(files)


def corpus_texts(datasets: Path, count: int) -> list[str]:
    """Papers and patents alternately, as the index embeds them: title, abstract, keywords."""
    rows = []
    for name in ("csl_papers.jsonl", "patents.jsonl"):
        lines = (datasets / "data" / name).read_text(encoding="utf-8").splitlines()
        rows.append([json.loads(line) for line in lines])
    texts: list[str] = []
    seen: set[str] = set()
    for position in range(max(len(side) for side in rows)):
        for side in rows:
            if position < len(side) and len(texts) < count:
                row = side[position]
                text = "\n".join(part for part in (
                    row["title"].strip(), row["abstract"].strip(),
                    "关键词:" + ";".join(row["keywords"]) if row.get("keywords") else "")
                    if part)
                if text not in seen:
                    seen.add(text)
                    texts.append(text)
    if len(texts) < count:
        raise SystemExit(f"only {len(texts)} distinct texts in {datasets / 'data'}")
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default=None, help="default: the settings' (MATCHER_MODEL)")
    parser.add_argument("--corpus-size", type=float, default=10_000_000,
                        help="texts in the extrapolation (default 10 million)")
    parser.add_argument("--nodes", type=int, default=50, help="nodes in the extrapolation")
    args = parser.parse_args()

    settings = Settings.from_env()
    model = args.model or settings.model
    texts = corpus_texts(settings.datasets, args.texts)
    print(f"{len(texts)} texts (papers and patents: title, abstract, keywords), "
          f"mean {np.mean([len(t) for t in texts]):.0f} characters; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f} at start")

    started = time.perf_counter()
    encoder = load_encoder(model, backend=settings.backend, models_dir=settings.models_dir)
    print(f"model {encoder.name}, loaded in {time.perf_counter() - started:.1f}s")

    with tempfile.TemporaryDirectory(prefix="bulk-embed-") as folder:
        single_cache = EmbeddingCache(Path(folder) / "single.sqlite")
        started, cpu_started = time.perf_counter(), time.process_time()
        single = CachedEncoder(encoder, single_cache).encode_document_windows(texts)
        single_s = time.perf_counter() - started
        single_cpu = time.process_time() - cpu_started
        single_cache.close()
        windows = sum(len(rows) for rows in single)
        print(f"single process : {single_s:7.1f}s  {len(texts) / single_s:6.1f} texts/s  "
              f"({windows} windows); {single_cpu:.1f} CPU-s, "
              f"{len(texts) / single_cpu:.1f} texts per CPU-s")

        import ray

        started = time.perf_counter()
        start_ray(None, args.workers)
        ray_start_s = time.perf_counter() - started
        meters = Path(folder) / "meters"
        meters.mkdir()
        spec = MeteredSpec(EncoderSpec(model, settings.backend, settings.models_dir), meters)
        cpu_started = time.process_time()
        try:
            report = embed_bulk(texts, spec, Path(folder) / "ray.sqlite", encoder.name,
                                encoder.dimension, workers=args.workers,
                                batch_size=args.batch_size, progress=False)
        finally:
            ray.shutdown()
        driver_cpu = time.process_time() - cpu_started
        load_cpu, encode_cpu, actors = actor_cpu(meters)
        ray_rate = report.encoded / report.seconds
        ray_cpu = encode_cpu + driver_cpu
        print(f"Ray, {args.workers} workers: {report.seconds:7.1f}s  {ray_rate:6.1f} texts/s  "
              f"({report.windows} windows; Ray's start, {ray_start_s:.1f}s, not counted; the "
              f"actors' model loads are); {encode_cpu:.1f} CPU-s encoding in {actors} actors "
              f"+ {driver_cpu:.1f} on the driver = {len(texts) / ray_cpu:.1f} texts per CPU-s "
              f"(model loads {load_cpu:.1f} CPU-s; Ray's own daemons not counted)")
        print(f"Ray / single process: {ray_rate / (len(texts) / single_s):.2f}x by wall time, "
              f"{single_cpu / ray_cpu:.2f}x by CPU time")

        cache = EmbeddingCache(Path(folder) / "ray.sqlite")
        stored = cache.get_many(encoder.name, ROLE, [text_key(t) for t in texts],
                                encoder.dimension, rows=True)
        cache.close()
        cosines = np.concatenate([np.sum(stored[text_key(t)] * rows, axis=1)
                                  for t, rows in zip(texts, single, strict=True)])
        print(f"vectors, Ray against single process: min cosine {cosines.min():.6f} over "
              f"{len(cosines)} windows")

    cores = os.cpu_count() or 1
    print(f"\nextrapolation (arithmetic, not measured; nodes like this one, {cores} cores, "
          f"linear scaling, the driver's cache writes not limiting):")
    for label, rate in (("measured wall rate", ray_rate),
                        (f"idle node: {len(texts) / ray_cpu:.1f} texts per CPU-s x {cores}",
                         len(texts) / ray_cpu * cores)):
        node_hours = args.corpus_size / rate / 3600
        print(f"  {label}: {args.corpus_size:,.0f} texts / {rate:.1f} texts/s per node = "
              f"{node_hours:,.1f} node-hours; on {args.nodes} nodes {node_hours:,.1f} / "
              f"{args.nodes} = {node_hours / args.nodes:,.2f} hours")
    single_rate = len(texts) / single_cpu * cores
    print(f"  single process, idle machine: {len(texts) / single_cpu:.1f} texts per CPU-s x "
          f"{cores} = {single_rate:.1f} texts/s; {args.corpus_size:,.0f} texts = "
          f"{args.corpus_size / single_rate / 3600:,.1f} hours")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
