"""Memory per web worker at 100,000 results: the in-process indexes against Milvus.

    python benchmarks/scale_demo.py --source var --home /tmp/g60-100k --force   # first
    python benchmarks/worker_memory.py [--home /tmp/g60-100k] [--searches 30]
        [--backends faiss,milvus] [--milvus-index-type FLAT]

For each backend a fresh subprocess builds the service as a web worker does
(`service.composition.build_service(Settings.from_env())`, `.start()`: load the indexes,
check them against the database), then runs searches through the service (needs → results
and results → needs, the query texts taken from the database's own needs), and reports its
VmRSS and VmHWM (/proc/self/status) at each stage: after importing, after loading the model,
after start, after the searches.

Milvus: the worker's settings are MATCHER_HOME (a copy of `--home`, so the FAISS home stays
as it is), INDEX_BACKEND=milvus, MILVUS_URI=http://127.0.0.1:PORT of a `python -m milvus_lite
server` started here (a separate process: that is where the vectors go, so its RSS is
reported too). The scaled home's copies (`scale_demo.py`) have vectors made by nudging the
demo's, which no embedding cache holds, so a start-up sync on a new backend would re-encode
95,000 texts (over an hour on 2 cores); instead a set-up subprocess copies every side's
vectors and windows from the home's FAISS files into the Milvus collections and saves the
side through `IndexStore.save_side` with the Milvus backend, as a sync would have left it.
The worker then finds the collections in step and inserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
QUERY_SIDES = (("need", "result"), ("result", "need"))


def status() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as lines:
        for line in lines:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                out[name] = int(value)
    return out


def status_of(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
    return out


def worker(searches: int) -> None:
    """One web worker's service, measured stage by stage; prints one JSON line."""
    stages: dict[str, dict[str, int]] = {}
    timings: dict[str, float] = {}
    from sqlalchemy import select

    from corpora.models import Need, Result
    from service.composition import build_service, encoder_for
    from settings import Settings
    stages["imported"] = status()
    settings = Settings.from_env()
    started = time.perf_counter()
    encoder = encoder_for(settings)
    encoder.encode_queries(["预热"])
    timings["model_s"] = time.perf_counter() - started
    stages["model loaded"] = status()
    started = time.perf_counter()
    service = build_service(settings, encoder)
    reports = service.start()
    timings["start_s"] = time.perf_counter() - started
    stages["started"] = status()
    with service.sessions() as session:
        texts = {
            "need": [f"{n.title} {n.description or ''}"[:300] for n in session.scalars(
                select(Need).order_by(Need.id).limit(searches))],
            "result": [r.title for r in session.scalars(
                select(Result).order_by(Result.id).limit(searches))],
        }
    seconds = []
    for query_side, target in QUERY_SIDES:
        for text in texts[query_side]:
            begun = time.perf_counter()
            service.search(text, target, k=20)
            seconds.append(time.perf_counter() - begun)
    timings["search_p50_ms"] = 1e3 * sorted(seconds)[len(seconds) // 2]
    timings["searches"] = len(seconds)
    stages["after searches"] = status()
    collections = service.matcher.collections
    counts = {side: collections[side].vectors.count() for side in ("need", "result")}
    kinds = {side: collections[side].vectors.kind for side in ("need", "result")}
    print(json.dumps({"stages": stages, "timings": timings, "counts": counts, "kinds": kinds,
                      "sync": [r.summary() for r in reports]}, ensure_ascii=False), flush=True)


def migrate(home: str, uri: str, index_type: str) -> None:
    """Copy the home's FAISS vectors into Milvus collections and save each side on the
    Milvus backend (see the module docstring for why not a sync)."""
    import numpy as np

    from matcher.index_backend import IndexBackend
    from matcher.indexing import IndexStore
    from matcher.types import SIDES

    hashes = json.loads((Path(home) / "indexes" / "result" / "hashes.json").read_text())

    class FrozenEncoder:  # name and dimension only: nothing here encodes
        name = hashes["model"]
        dimension = 384

        def encode_queries(self, texts: object, *, progress: bool = False) -> np.ndarray:
            raise RuntimeError("the migration never encodes")

        encode_documents = encode_queries

    store = IndexStore(Path(home), FrozenEncoder())  # type: ignore[arg-type]
    store.load()
    backend = IndexBackend("milvus", uri, "g60", index_type)
    for side in SIDES:
        coll = store.matcher.collections[side]
        for role in ("vectors", "windows"):
            source = getattr(coll, role)
            target = backend.new(source.dimension, side, role)
            ids = source.ids()
            started = time.perf_counter()
            target.build(ids, source.vectors(ids))
            print(f"  {side}/{role}: {ids.size} vectors into Milvus in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            setattr(coll, role, target)
        store.backend = backend
        store.save_side(side)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_child(arguments: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *arguments], env=env, cwd=REPO,
                          capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"child {arguments} failed ({done.returncode}):\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f}"


def report(label: str, result: dict) -> list[str]:
    rows = []
    for stage, values in result["stages"].items():
        rows.append(f"| {label} | {stage} | {mib(values['VmRSS'])} | {mib(values['VmHWM'])} | "
                    f"{mib(values.get('RssAnon', 0))} | {values.get('Threads', '')} |")
    t = result["timings"]
    print(f"{label}: model {t['model_s']:.1f} s, start {t['start_s']:.1f} s, "
          f"{t['searches']} searches p50 {t['search_p50_ms']:.0f} ms; vectors "
          f"{result['counts']} {result['kinds']}; sync {result['sync']}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", default="/tmp/g60-100k")
    parser.add_argument("--searches", type=int, default=30, help="per direction")
    parser.add_argument("--backends", default="faiss,milvus")
    parser.add_argument("--milvus-index-type", default="FLAT")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--migrate", nargs=3, metavar=("HOME", "URI", "TYPE"),
                        help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        return worker(arguments.searches)
    if arguments.migrate:
        return migrate(*arguments.migrate)

    home = Path(arguments.home)
    if not (home / "indexes" / "result" / "hashes.json").exists():
        raise SystemExit(f"{home}: no scaled home; run benchmarks/scale_demo.py first")
    base_env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                    TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO))
    print(f"{os.cpu_count()} cores; home {home}; {arguments.searches} searches per direction")
    rows = ["| backend | stage | VmRSS MiB | VmHWM MiB | RssAnon MiB | threads |",
            "|---|---|---|---|---|---|"]
    backends = [b for b in arguments.backends.split(",") if b]
    if "faiss" in backends:
        result = run_child(["--worker", "--searches", str(arguments.searches)],
                           dict(base_env, MATCHER_HOME=str(home), INDEX_BACKEND="faiss"))
        rows += report("in-process (FAISS + BM25)", result)
    if "milvus" in backends:
        work = Path(tempfile.mkdtemp(prefix="worker-memory-"))
        copy = work / "home"
        shutil.copytree(home, copy, symlinks=True)
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        log = open(work / "server.log", "w")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(work / "milvus"),
             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
            env=base_env)
        try:
            deadline = time.monotonic() + 60
            while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"milvus_lite server did not start ({work / 'server.log'})")
                time.sleep(0.2)
            print(f"milvus_lite server pid {server.pid}: {mib(status_of(server.pid)['VmRSS'])} "
                  "MiB empty", flush=True)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, __file__, "--migrate", str(copy), uri,
                 arguments.milvus_index_type], env=base_env, cwd=REPO, check=True,
                capture_output=True, text=True)
            print(done.stdout, end="")
            print(f"migration {time.perf_counter() - started:.0f} s; server "
                  f"{mib(status_of(server.pid)['VmRSS'])} MiB", flush=True)
            env = dict(base_env, MATCHER_HOME=str(copy), INDEX_BACKEND="milvus",
                       MILVUS_URI=uri, MILVUS_INDEX_TYPE=arguments.milvus_index_type)
            result = run_child(["--worker", "--searches", str(arguments.searches)], env)
            rows += report(f"Milvus ({arguments.milvus_index_type}) worker", result)
            server_status = status_of(server.pid)
            rows.append(f"| milvus_lite server (all vectors) | after the worker's searches | "
                        f"{mib(server_status['VmRSS'])} | {mib(server_status['VmHWM'])} | | |")
        finally:
            server.terminate()
            server.wait(30)
            log.close()
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
