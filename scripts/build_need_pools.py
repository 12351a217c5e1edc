"""Build the need → result development set (datasets/eval/need-results) and its judging pools.

Steps, each rerunnable on its own (run from the repository root, venv active):

    python scripts/build_need_pools.py corpus    # corpus.jsonl from the demo's papers and patents
    python scripts/build_need_pools.py queries   # refresh the demo needs in queries.jsonl
    python scripts/build_need_pools.py rank      # runs/{lexical,dense,hybrid}.trec, top 20
    python scripts/build_need_pools.py pools [--run runs/new-ranker.trec ...]

`corpus` reads the records exactly as `corpora.demo` imports them (`_result_record`, so titles
derived from the abstract where a patent has none) and keeps only the rows the importer accepts,
so the set's documents are the demo site's results, with the demo's `title_derived` flag (a title
written from the abstract because the record had none).

`queries` rewrites the `source: demo` lines from corpora/data/demo_needs.jsonl and keeps every
other line (the needs written for this set) as it is, so new needs are edited in queries.jsonl.

`rank` indexes the corpus once (one encoding pass shared by dense and hybrid) and writes one
TREC run per mode; a new ranker's run file (from `python -m matcher rank … --top-k 20` or
elsewhere) joins the pool with `pools --run FILE` (its tag is the file's stem). `pools` writes
pools.jsonl and judging/block-NN.md (25 queries a sheet). Grades already written into a sheet are
carried over when the sheets are rebuilt, so adding a ranker never loses judging work; a pooled
pair's grade is read back by `qrels`, which writes qrels.tsv from the sheets.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpora.demo import (  # noqa: E402
    DEMO_NEEDS_PATH,
    PAPERS_FILE,
    PATENTS_FILE,
    _result_record,
    demo_title,
)
from corpora.importer.readers import records_table  # noqa: E402
from corpora.schema import RESULT_SCHEMA, validate_values  # noqa: E402

SET_DIR = ROOT / "datasets" / "eval" / "need-results"
DATA_DIR = ROOT / "datasets"
BASE_MODES = ("lexical", "dense", "hybrid")
POOL_DEPTH = 20
BLOCK_SIZE = 25
SNIPPET_CHARS = 300
# A grade slot on a sheet: "- grade: " followed by nothing (to judge) or 0-3.
GRADE_LINE = re.compile(r"^- grade:[ \t]*([0-3]?)[ \t]*(?:#.*)?$")
CANDIDATE_HEAD = re.compile(r"^#### (\d+)\. `([^`]+)`")
QUERY_HEAD = re.compile(r"^## `([^`]+)`")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as stream:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


# --- corpus -------------------------------------------------------------------------------


def corpus_rows() -> Iterator[dict[str, Any]]:
    """The demo's results in the eval layout, in the demo's import order."""
    for relative, result_type, with_discipline in (
        (PAPERS_FILE, "论文", True),
        (PATENTS_FILE, "发明专利", False),
    ):
        sources = list(read_jsonl(DATA_DIR / relative))
        records = [_result_record(source, result_type) for source in sources]
        table = records_table(RESULT_SCHEMA, records)
        rows = table.rows
        assert isinstance(rows, list)
        for source, row in zip(sources, rows, strict=True):
            clean, errors = validate_values(RESULT_SCHEMA, row.line, row.fields)
            if row.problems or errors:  # the importer skips it (keep_valid): so does the set
                print(f"skipped {source['id']}: {[e.message for e in errors]}", file=sys.stderr)
                continue
            title = str(clean["title"])
            derived = demo_title(source, result_type)[1]
            yield {
                "id": source["id"],
                "title": title,
                "text": clean.get("abstract") or "",
                "keywords": list(clean.get("keywords") or []),
                "category": source.get("category") if with_discipline else None,
                "discipline": source.get("discipline") if with_discipline else None,
                "result_type": result_type,
                "industry": clean.get("industry"),
                "title_derived": derived,
            }


def cmd_corpus(args: argparse.Namespace) -> int:
    count = write_jsonl(args.set_dir / "corpus.jsonl", corpus_rows())
    print(f"corpus.jsonl: {count} documents")
    return 0


# --- queries ------------------------------------------------------------------------------


def demo_queries() -> Iterator[dict[str, Any]]:
    for need in read_jsonl(DEMO_NEEDS_PATH):
        title, body = need["title"].strip(), need["description"].strip()
        yield {
            "id": need["external_id"], "text": f"{title}\n{body}", "title": title, "body": body,
            "industry": need["industry"], "lang": "zh", "source": "demo",
            "intent": None,  # only the needs written for this set state a design intent
        }


def cmd_queries(args: argparse.Namespace) -> int:
    path = args.set_dir / "queries.jsonl"
    own = [row for row in read_jsonl(path) if row.get("source") != "demo"] if path.exists() else []
    for row in own:  # text is derived: keep it in step with title and body
        row["text"] = f"{row['title'].strip()}\n{row['body'].strip()}"
    ids = [row["id"] for row in [*demo_queries(), *own]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        print(f"error: duplicate query ids {duplicates}", file=sys.stderr)
        return 2
    count = write_jsonl(path, [*demo_queries(), *own])
    print(f"queries.jsonl: {count} queries ({len(own)} written for the set)")
    return 0


# --- runs ---------------------------------------------------------------------------------


def cmd_rank(args: argparse.Namespace) -> int:
    from matcher.cli import _encoder
    from matcher.evaluation import load_corpus, load_queries, write_trec
    from matcher.ranking import EvalRanker

    docs = load_corpus(args.set_dir / "corpus.jsonl")
    queries = load_queries(args.set_dir / "queries.jsonl")
    started = time.perf_counter()
    ranker = EvalRanker(_encoder(args.model), docs, progress=not args.quiet)
    print(f"index: {len(docs)} documents in {time.perf_counter() - started:.1f}s "
          f"(encoding {ranker.timings.encode_documents_s:.1f}s)")
    runs_dir = args.set_dir / "runs"
    runs_dir.mkdir(exist_ok=True)
    for mode in args.modes:
        run = ranker.rank(queries, k=args.top_k, mode=mode)
        with (runs_dir / f"{mode}.trec").open("w", encoding="utf-8") as stream:
            write_trec(run, stream, tag=mode)
        assert ranker.timings.queries_s is not None
        print(f"{mode}: {len(queries)} queries in {ranker.timings.queries_s[mode]:.1f}s")
    return 0


def read_run(path: Path, depth: int) -> dict[str, list[str]]:
    """qid → doc ids in rank order (the file's rank column), the first `depth` of each."""
    ranked: dict[str, list[tuple[int, str]]] = {}
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            parts = line.split()
            if len(parts) < 4:
                continue
            ranked.setdefault(parts[0], []).append((int(parts[3]), parts[2]))
    return {qid: [doc for _, doc in sorted(rows)[:depth]] for qid, rows in ranked.items()}


# --- pools and sheets ---------------------------------------------------------------------


def read_sheet_grades(judging_dir: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(qid, docid) → (grade, note line) already written on the sheets; empty slots skipped."""
    grades: dict[tuple[str, str], tuple[str, str]] = {}
    for sheet in sorted(judging_dir.glob("block-*.md")):
        qid = doc = None
        for line in sheet.read_text(encoding="utf-8").splitlines():
            if head := QUERY_HEAD.match(line):
                qid, doc = head.group(1), None
            elif head := CANDIDATE_HEAD.match(line):
                doc = head.group(2)
            elif (slot := GRADE_LINE.match(line)) and qid and doc and slot.group(1):
                grades[(qid, doc)] = (slot.group(1), line)
    return grades


def natural_key(doc_id: str) -> list[int | str]:
    """csl-dev-18 before csl-dev-190: ids sort by their numbers, as a reader expects."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", doc_id)]


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "…"


def sheet_text(block: int, queries: list[dict[str, Any]], pools: dict[str, list[dict[str, Any]]],
               docs: dict[str, dict[str, Any]], kept: dict[tuple[str, str], tuple[str, str]],
               rankers: list[str]) -> str:
    first, last = queries[0]["id"], queries[-1]["id"]
    lines = [
        f"# Judging sheet {block:02d}: queries {first} … {last}",
        "",
        "Grade every candidate by reading it against the need, per ../GUIDELINES.md: write 0, 1, 2"
        " or 3 after `- grade:` (an optional `# note` may follow). Candidates are in document-id"
        " order, not by rank, and the rankers are not named, so that no ranker is favoured."
        " Rebuild with `python scripts/build_need_pools.py pools`: written grades are kept.",
        "",
        f"Pooled rankers: {', '.join(rankers)}; depth {POOL_DEPTH}.",
        "",
    ]
    for query in queries:
        pool = pools[query["id"]]
        lines += [f"## `{query['id']}` ({query['industry']}, {query['lang']}): {query['title']}",
                  "", *[f"> {part}" if part else ">" for part in query["body"].splitlines()],
                  "", f"{len(pool)} candidates.", ""]
        for number, candidate in enumerate(pool, start=1):
            doc = docs[candidate["docid"]]
            tag = "，标题据摘要拟定" if doc.get("title_derived") else ""
            kind = f"{doc.get('result_type') or ''}{tag}"
            lines.append(f"#### {number}. `{doc['id']}` ({kind}) {doc['title'] or '（无标题）'}")
            lines.append("")
            text = snippet(doc.get("text") or "")
            lines.append(text if text else "（无摘要，只按标题判断）")
            if doc.get("keywords"):
                lines.append(f"关键词：{'；'.join(doc['keywords'])}")
            lines.append("")
            grade, note_line = kept.get((query["id"], doc["id"]), ("", "- grade: "))
            lines.append(note_line if grade else "- grade: ")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def cmd_pools(args: argparse.Namespace) -> int:
    runs_dir = args.set_dir / "runs"
    run_files = [runs_dir / f"{mode}.trec" for mode in BASE_MODES] + list(args.run)
    missing = [str(path) for path in run_files if not path.is_file()]
    if missing:
        print(f"error: run files not found: {missing} (run `rank` first)", file=sys.stderr)
        return 2
    runs = {path.stem: read_run(path, POOL_DEPTH) for path in run_files}
    queries = list(read_jsonl(args.set_dir / "queries.jsonl"))
    docs = {doc["id"]: doc for doc in read_jsonl(args.set_dir / "corpus.jsonl")}
    pools: dict[str, list[dict[str, Any]]] = {}
    for query in queries:
        ranks: dict[str, dict[str, int]] = {}
        for ranker, run in runs.items():
            for rank, doc in enumerate(run.get(query["id"], []), start=1):
                if doc not in docs:
                    print(f"error: {ranker} ranks unknown document {doc}", file=sys.stderr)
                    return 2
                ranks.setdefault(doc, {})[ranker] = rank
        pools[query["id"]] = [{"docid": doc, "rankers": ranks[doc]}
                              for doc in sorted(ranks, key=natural_key)]
    write_jsonl(args.set_dir / "pools.jsonl",
                ({"qid": q["id"], "candidates": pools[q["id"]]} for q in queries))
    judging_dir = args.set_dir / "judging"
    judging_dir.mkdir(exist_ok=True)
    kept = read_sheet_grades(judging_dir)
    for block, start in enumerate(range(0, len(queries), BLOCK_SIZE), start=1):
        chunk = queries[start:start + BLOCK_SIZE]
        text = sheet_text(block, chunk, pools, docs, kept, list(runs))
        (judging_dir / f"block-{block:02d}.md").write_text(text, encoding="utf-8")
    sizes = [len(pool) for pool in pools.values()]
    print(f"pools.jsonl: {len(queries)} queries, {sum(sizes)} pairs, "
          f"{sum(sizes) / len(sizes):.1f} candidates a query (min {min(sizes)}, max {max(sizes)});"
          f" {len(kept)} grades carried over; sheets in {judging_dir}")
    return 0


def cmd_qrels(args: argparse.Namespace) -> int:
    """qrels.tsv from the grades on the sheets; reports pairs still ungraded."""
    grades = read_sheet_grades(args.set_dir / "judging")
    pools = {row["qid"]: row["candidates"] for row in read_jsonl(args.set_dir / "pools.jsonl")}
    open_pairs = sum(1 for qid, pool in pools.items() for c in pool
                     if (qid, c["docid"]) not in grades)
    with (args.set_dir / "qrels.tsv").open("w", encoding="utf-8") as stream:
        for qid, pool in pools.items():
            for candidate in pool:
                if (qid, candidate["docid"]) in grades:
                    grade = grades[(qid, candidate["docid"])][0]
                    stream.write(f"{qid}\t0\t{candidate['docid']}\t{grade}\n")
    print(f"qrels.tsv: {len(grades)} judged pairs, {open_pairs} pooled pairs not yet graded")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set-dir", type=Path, default=SET_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("corpus", help="corpus.jsonl from the demo data").set_defaults(func=cmd_corpus)
    sub.add_parser("queries", help="refresh the demo needs in queries.jsonl").set_defaults(
        func=cmd_queries)
    rank = sub.add_parser("rank", help="TREC runs of the project's rankers into runs/")
    rank.add_argument("--modes", nargs="+", choices=BASE_MODES, default=list(BASE_MODES))
    rank.add_argument("--top-k", type=int, default=POOL_DEPTH)
    rank.add_argument("--model", default=None, help="model folder, or 'fake' (default: e5)")
    rank.add_argument("--quiet", action="store_true")
    rank.set_defaults(func=cmd_rank)
    pools = sub.add_parser("pools", help="pools.jsonl and judging sheets from the runs")
    pools.add_argument("--run", type=Path, action="append", default=[],
                       help="an extra TREC run to pool (repeatable); tag = file stem")
    pools.set_defaults(func=cmd_pools)
    sub.add_parser("qrels", help="qrels.tsv from graded sheets").set_defaults(func=cmd_qrels)
    args = parser.parse_args(argv)
    args.set_dir.mkdir(parents=True, exist_ok=True)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
