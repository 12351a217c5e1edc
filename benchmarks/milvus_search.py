"""Vector search on Milvus Lite beside the in-process FAISS indexes, in one run, on one core.

    nice python benchmarks/milvus_search.py [--sizes 100000,1000000] [--queries 200]
        [--types FLAT,HNSW,IVF_FLAT] [--server-types HNSW] [--skip-milvus-above N]

Data: the synthetic clustered 384-d mixture of `benchmarks/search.py` (imported from it, same
seeds, so its FAISS rows are comparable with that script's). For each size this run builds:

* FAISS exact (`FaissIndex` forced flat): the ground truth for recall@10, and a baseline;
* FAISS automatic (`new_index`: IVF above 20k, probes calibrated at build time);
* `MilvusIndex` on a Milvus Lite local file in a temp dir, one collection per `--types`
  entry (the index types `MilvusIndex` offers; it asks for HNSW M=16 efConstruction=200 and
  IVF_FLAT nlist=1024, but milvus-lite 3.2.2 drops the build parameters pymilvus 3 sends as
  flat keys and builds with its defaults, M=16 efConstruction=200 and nlist=128 a segment;
  searches pass no ef/nprobe, so the engine's defaults apply: ef=64, nprobe=10);
* optionally (`--server-types`) the same through `python -m milvus_lite server` on
  127.0.0.1 over gRPC (`uri=http://127.0.0.1:PORT`), to show what a network hop and a
  separate process cost; the server runs with OMP_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1.

Timed: single queries one at a time through the public `search` (faiss.omp_set_num_threads(1),
and OMP/OpenBLAS limited to 1 thread in this process; Milvus Lite with a local file runs its
engine inside this process, in gRPC server threads, so those limits apply to it too),
p50/p95 latency, recall@10 against the exact results, the same for a filtered search keeping
a random 1% of the ids, build time (FAISS: build; Milvus: insert, then flush and index until
searchable), the process CPU seconds per query (more than the wall time means more than one
core worked), the thread count, and memory (this process's RSS growth, or the server's RSS).

Milvus Lite 3 is a pure-Python engine over FAISS per segment (segments of at most 100k rows,
each with its own HNSW/IVF index; rows not yet flushed are searched by brute force), not the
C++ Milvus (Knowhere) of a standalone or cluster deployment: its figures measure this
project's path through pymilvus and the Lite engine, not what a Milvus server would do.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# One thread everywhere, set before numpy loads its BLAS: Milvus Lite's brute-force search is
# a numpy product (OpenBLAS would use every core), and the server inherits this environment.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import (  # noqa: E402  (benchmarks/search.py: the same mixture and measures)
    DIMENSION,
    FILTER_SHARE,
    K,
    Mixture,
    recall,
    release_freed_memory,
    rss_bytes,
    time_queries,
)

from matcher.vector_faiss import FaissIndex  # noqa: E402
from matcher.vector_index import new_index  # noqa: E402
from matcher.vector_milvus import (  # noqa: E402
    FETCH_ALLOWED_BELOW,
    MilvusIndex,
    client_for,
    close_client,
)

Truth = dict[str, list[list[int]]]


@dataclass
class Row:
    size: int
    label: str
    build: str
    rss_per_vector: float | None
    threads: int
    searches: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS/VmHWM (bytes) and Threads of a process, from /proc."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                out[name] = int(value)
    return out


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of this process (all threads) or of `pid`."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def search_rows(index: object, queries: np.ndarray, allowed: np.ndarray,
                truth: Truth | None, cpu_pid: int | None) -> tuple[dict[str, dict], Truth]:
    results: Truth = {}
    out: dict[str, dict[str, float]] = {}
    for name, allowed_ids in (("all", None), ("filter 1%", allowed)):
        cpu_before = cpu_seconds(cpu_pid)
        results[name], seconds = time_queries(index, queries, allowed_ids)  # type: ignore[arg-type]
        cpu = cpu_seconds(cpu_pid) - cpu_before
        out[name] = {
            "p50": 1e3 * float(np.percentile(seconds, 50)),
            "p95": 1e3 * float(np.percentile(seconds, 95)),
            "recall": recall(results[name], truth[name]) if truth else 1.0,
            "full": float(all(len(r) == K for r in results[name])),
            # the 5 warm-up queries are in the CPU time too
            "cpu_per_query": 1e3 * cpu / (len(queries) + 5),
        }
    return out, results


def print_row(row: Row) -> None:
    for name, s in row.searches.items():
        rss = f"{row.rss_per_vector:7.0f}" if row.rss_per_vector is not None else "      -"
        print(f"{row.size:>9,}  {row.label:<22} {name:<9} {s['p50']:8.3f} {s['p95']:8.3f}"
              f"  {s['recall']:9.4f}  {'yes' if s['full'] else 'NO':>4}  {s['cpu_per_query']:7.3f}"
              f"  {row.threads:>3}  {rss}  {row.build}  {row.note}", flush=True)


def measure_faiss(label: str, index: FaissIndex, ids: np.ndarray, vectors: np.ndarray,
                  queries: np.ndarray, allowed: np.ndarray, truth: Truth | None
                  ) -> tuple[Row, Truth]:
    release_freed_memory()
    rss_before = rss_bytes()
    started = time.perf_counter()
    index.build(ids, vectors)
    build_s = time.perf_counter() - started
    release_freed_memory()
    row = Row(ids.size, label, f"build {build_s:.1f} s", (rss_bytes() - rss_before) / ids.size,
              proc_status()["Threads"])
    with tempfile.TemporaryDirectory() as directory:
        index.save(Path(directory), model="synthetic")
    if index.kind == "faiss-ivf":
        row.note = f"nlist={index.meta['nlist']} nprobe@10={index.nprobe_for(K)}"
    row.searches, results = search_rows(index, queries, allowed, truth, None)
    print_row(row)
    return row, results


def wait_idle(uri: str, collection: str, pid: int | None, timeout_s: float = 3600) -> None:
    """Until the collection is searchable through its index: `describe_index` reports no
    pending rows, and the engine's process has stopped working in the background. Milvus
    Lite builds each flushed segment's index (and compacts segments, then re-indexes them)
    in a background thread, searching by brute force meanwhile, and `describe_index` says
    Finished before that work is done; so also wait for 2 s in a row with < 2% of a core of
    CPU in its process (this one, for a local file: its main thread is asleep here)."""
    client = client_for(uri)
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline:
        info = client.describe_index(collection, "vector")
        before = cpu_seconds(pid)
        time.sleep(1.0)
        busy = cpu_seconds(pid) - before
        pending = int(info.get("pending_index_rows", 0))
        quiet = quiet + 1 if pending == 0 and busy < 0.02 else 0
        if quiet >= 2:
            return
    raise TimeoutError(f"{collection}: still indexing after {timeout_s} s")


def measure_milvus(label: str, index_type: str, uri: str, ids: np.ndarray, vectors: np.ndarray,
                   queries: np.ndarray, allowed: np.ndarray, truth: Truth,
                   server_pid: int | None, data_dir: Path) -> Row:
    release_freed_memory()
    rss_before = rss_bytes() if server_pid is None else proc_status(server_pid)["VmRSS"]
    collection = f"bench_{index_type.lower()}_{ids.size}"
    index = MilvusIndex(DIMENSION, uri=uri, collection=collection, index_type=index_type)
    started = time.perf_counter()
    index.build(ids, vectors)
    insert_s = time.perf_counter() - started
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as pointer_dir:
        index.save(Path(pointer_dir), model="synthetic")  # flushes
    wait_idle(uri, collection, server_pid)
    index_s = time.perf_counter() - started
    release_freed_memory()
    if server_pid is None:
        status = proc_status()
        rss_per_vector = (status["VmRSS"] - rss_before) / ids.size
    else:
        status = proc_status(server_pid)
        rss_per_vector = (status["VmRSS"] - rss_before) / ids.size
    disk = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    row = Row(ids.size, label, f"insert {insert_s:.1f} s + flush+index {index_s:.1f} s",
              rss_per_vector, status["Threads"])
    filtered = ("fetch+exact" if allowed.size < FETCH_ALLOWED_BELOW else "id-in filter")
    row.note = f"filter path: {filtered}; disk {disk / ids.size:.0f} B/v (all collections so far)"
    row.searches, _ = search_rows(index, queries, allowed, truth, server_pid)
    print_row(row)
    index.drop()  # the next collection's memory and disk figures start clean
    return row


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def lite_server(data_dir: Path) -> Iterator[tuple[str, int]]:
    """`python -m milvus_lite server` on a free port; yields (uri, pid)."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    log = open(data_dir.parent / f"server-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
         "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"milvus_lite server did not start (see {log.name})")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        close_client(f"http://127.0.0.1:{port}")
        process.terminate()
        process.wait(30)
        log.close()


def markdown(rows: list[Row]) -> str:
    lines = ["| size | index | p50 ms | p95 ms | recall@10 | filter 1% p50 / p95 ms | "
             "filter recall@10 | CPU ms/query | build | RSS B/vector |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        a, f = row.searches["all"], row.searches["filter 1%"]
        rss = f"{row.rss_per_vector:,.0f}" if row.rss_per_vector is not None else "-"
        lines.append(
            f"| {row.size:,} | {row.label} | {a['p50']:.2f} | {a['p95']:.2f} | {a['recall']:.3f} |"
            f" {f['p50']:.2f} / {f['p95']:.2f} | {f['recall']:.3f} | {a['cpu_per_query']:.2f} |"
            f" {row.build} | {rss} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="single queries per size")
    parser.add_argument("--centres", type=int, default=4_000, help="mixture components")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--types", default="FLAT,HNSW,IVF_FLAT",
                        help="Milvus Lite (local file) index types, comma-separated; '' none")
    parser.add_argument("--server-types", default="HNSW",
                        help="index types also run through `milvus_lite server`; '' none")
    parser.add_argument("--skip-milvus-above", type=int, default=0,
                        help="sizes above this run FAISS only (0: no limit)")
    parser.add_argument("--work-dir", default=None, help="where the Lite data goes (temp)")
    arguments = parser.parse_args()
    sizes = [int(size.replace("_", "")) for size in arguments.sizes.split(",")]
    types = [t for t in arguments.types.upper().split(",") if t]
    server_types = [t for t in arguments.server_types.upper().split(",") if t]

    faiss.omp_set_num_threads(1)
    import milvus_lite
    import pymilvus
    print(f"faiss {faiss.__version__}, numpy {np.__version__}, pymilvus {pymilvus.__version__}, "
          f"milvus-lite {milvus_lite.__version__}, {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores, faiss 1 thread; {DIMENSION}-d clustered synthetic vectors "
          f"({arguments.centres} centres), {arguments.queries} single queries, k={K}")
    print("     size  index                  search     p50 ms   p95 ms  recall@10  full"
          "  CPU ms/q  thr  RSS B/v  build  notes")
    mixture = Mixture(arguments.centres, arguments.seed)
    queries = mixture.sample(arguments.queries, seed=arguments.seed + 1)
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix="milvus-bench-", dir=arguments.work_dir))
    try:
        for size in sizes:
            vectors = mixture.sample(size, seed=arguments.seed + 2)
            ids = np.arange(size, dtype=np.int64)
            allowed = np.sort(np.random.default_rng(arguments.seed).choice(
                size, int(size * FILTER_SHARE), replace=False))
            exact = FaissIndex(DIMENSION, ann_threshold=sys.maxsize, progress=False)
            row, truth = measure_faiss("faiss exact", exact, ids, vectors, queries, allowed, None)
            rows.append(row)
            del exact
            automatic = new_index(DIMENSION, progress=False)
            rows.append(measure_faiss("faiss auto", automatic, ids, vectors, queries, allowed,
                                      truth)[0])
            del automatic
            release_freed_memory()
            if arguments.skip_milvus_above and size > arguments.skip_milvus_above:
                continue
            local_dir = work / f"lite-{size}"
            local_dir.mkdir()
            uri = str(local_dir / "bench.db")
            for index_type in types:
                rows.append(measure_milvus(f"milvus-lite {index_type}", index_type, uri, ids,
                                           vectors, queries, allowed, truth, None, local_dir))
            close_client(uri)
            for index_type in server_types:
                server_dir = work / f"server-{size}-{index_type}"
                server_dir.mkdir()
                with lite_server(server_dir) as (server_uri, pid):
                    rows.append(measure_milvus(f"lite server {index_type} (gRPC)", index_type,
                                               server_uri, ids, vectors, queries, allowed, truth,
                                               pid, server_dir))
            del vectors
            release_freed_memory()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
