"""`python -m matcher rank` on a 15,000-document set, timed: the issue's 10-minute target.

    python benchmarks/rank.py [--docs 15000] [--workdir /tmp/g60-rank] [--mode hybrid]

Builds the set from the shared material (every text in `datasets/data/` and the two
development corpora, then each text again cut to its first half, with its own id, until
--docs documents), takes the queries of the four development sets, runs the CLI exactly as a
user would (`python -m matcher rank --corpus … --queries … --top-k 100`), and prints its
wall-clock time, peak memory and run size. The run is written to <workdir>/run.trec.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from settings import Settings  # noqa: E402

SHARED = Settings.from_env().datasets
EVAL_SETS = ("csl-title", "csl-keywords", "patent-title", "patent-keywords")
TARGET_S = 600


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_set(docs: int, folder: Path) -> tuple[Path, Path, int]:
    texts: list[tuple[str, str]] = []
    for name in ("patents", "csl_papers"):
        texts += [(d.get("title", ""), d.get("abstract", "")) for d in
                  _read(SHARED / "data" / f"{name}.jsonl")]
    for name in ("csl-title", "patent-title"):
        texts += [(d.get("title", ""), d.get("text", "")) for d in
                  _read(SHARED / "eval" / name / "corpus.jsonl")]
    rows = [{"id": f"d{n}", "title": t, "text": x} for n, (t, x) in enumerate(texts)]
    n = 0
    while len(rows) < docs:
        title, text = texts[n % len(texts)]
        rows.append({"id": f"h{n}", "title": title, "text": text[: max(1, len(text) // 2)]})
        n += 1
    rows = rows[:docs]
    folder.mkdir(parents=True, exist_ok=True)
    corpus, queries = folder / "corpus.jsonl", folder / "queries.jsonl"
    with open(corpus, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    count = 0
    with open(queries, "w", encoding="utf-8") as fh:
        for name in EVAL_SETS:
            for query in _read(SHARED / "eval" / name / "queries.jsonl"):
                fh.write(json.dumps({"id": f"{name}:{query['id']}", "text": query["text"]},
                                    ensure_ascii=False) + "\n")
                count += 1
    return corpus, queries, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=15_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/g60-rank"))
    parser.add_argument("--mode", default="hybrid", choices=("hybrid", "dense", "lexical"))
    args = parser.parse_args()
    corpus, queries, query_count = build_set(args.docs, args.workdir)
    run = args.workdir / "run.trec"
    command = [sys.executable, "-m", "matcher", "rank", "--corpus", str(corpus),
               "--queries", str(queries), "--top-k", "100", "--mode", args.mode]
    print(f"{args.docs} documents, {query_count} queries: {' '.join(command[1:])}", flush=True)
    start = time.monotonic()
    with open(run, "w", encoding="utf-8") as out:
        done = subprocess.run(command, cwd=ROOT, stdout=out, check=False)
    wall = time.monotonic() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(run, encoding="utf-8") as fh:
        lines = sum(1 for _ in fh)
    verdict = "met" if done.returncode == 0 and wall <= TARGET_S else "MISSED"
    print(f"exit {done.returncode}; wall {wall // 60:.0f} min {wall % 60:.0f} s; "
          f"peak RSS {peak_mib:,.0f} MiB; {lines:,} run lines")
    print(f"target: within {TARGET_S // 60} min on 2 cores ... {verdict}")


if __name__ == "__main__":
    main()
