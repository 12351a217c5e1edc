"""Command line: `python -m matcher rank|evaluate ...` (the demo is `python -m service demo`).

The encoder comes from the settings (`MATCHER_MODEL`, `MATCHER_BACKEND`, `MATCHER_HOME`, read
once here), `--model` overriding the model."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from matcher.evaluation import (
    FLAG_DEPTH,
    JUDGED_METRICS,
    METRICS,
    answerable,
    is_judged_scale,
    load_corpus,
    load_qrels,
    load_queries,
    score_flags,
    score_run,
    write_trec,
)
from matcher.lexical_milvus import MilvusFullText
from matcher.ranking import EvalRanker
from matcher.retriever import MODES
from matcher.types import Side


def _encoder(spec: str | None, cache: str | None = None):
    """The configured encoder; with `cache`, behind an embedding cache in that file, so that a
    second evaluation of the same texts (an experiment on fusion or BM25) encodes nothing."""
    from embeddings.cache import CachedEncoder, EmbeddingCache
    from embeddings.loader import load_encoder
    from settings import Settings

    settings = Settings.from_env()
    encoder = load_encoder(spec or settings.model, backend=settings.backend,
                           models_dir=settings.models_dir)
    return CachedEncoder(encoder, EmbeddingCache(cache)) if cache else encoder


@contextlib.contextmanager
def _index_factory(args: argparse.Namespace, name: str) -> Iterator[Any]:
    """Where the evaluation's vectors go: None (FAISS in memory) or, with `--index milvus`,
    collections on `--milvus-uri` (by default a throw-away Milvus Lite file), dropped after."""
    if args.index != "milvus":
        yield None, None
        return
    from matcher import vector_milvus
    from matcher.index_backend import IndexBackend

    with tempfile.TemporaryDirectory(prefix="g60-eval-milvus-") as scratch:
        uri = args.milvus_uri or str(Path(scratch) / "eval.db")
        prefix = "eval_" + "".join(c if c.isalnum() else "_" for c in name)
        backend = IndexBackend("milvus", uri, prefix, args.milvus_index_type, args.lexical)
        made: list[vector_milvus.MilvusIndex] = []
        texts: list[MilvusFullText] = []

        def factory(dimension: int, side: Side, role: str) -> vector_milvus.MilvusIndex:
            index = backend.new(dimension, side, role)
            index.build(np.zeros(0, dtype=np.int64), np.zeros((0, dimension), np.float32))
            made.append(index)  # type: ignore[arg-type]
            return index  # type: ignore[return-value]

        def full_text(side: Side) -> MilvusFullText:
            made_text = backend.full_text_factory(side)  # type: ignore[misc]
            made_text.drop()  # a run starts from an empty collection
            texts.append(made_text)
            return made_text

        try:
            yield factory, (full_text if backend.full_text_factory else None)
        finally:
            for index in made:
                with contextlib.suppress(Exception):
                    index.drop()
            for text in texts:
                with contextlib.suppress(Exception):
                    text.drop()
            vector_milvus.close_client(uri)


def cmd_rank(args: argparse.Namespace) -> int:
    docs = load_corpus(Path(args.corpus))
    queries = load_queries(Path(args.queries))
    encoder = _encoder(args.model, args.cache) if args.mode != "lexical" else None
    with _index_factory(args, Path(args.corpus).parent.name) as (factory, full_text):
        ranker = EvalRanker(encoder, docs, dense=args.mode != "lexical",
                            progress=not args.quiet, index_factory=factory,
                            full_text_factory=full_text)
        run = ranker.rank(queries, k=args.top_k, mode=args.mode, progress=not args.quiet)
    write_trec(run, sys.stdout, tag=args.tag or f"g60-{args.mode}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    set_dir = Path(args.setdir)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        if not (set_dir / name).is_file():
            print(f"error: {set_dir / name} not found", file=sys.stderr)
            return 2
    docs = load_corpus(set_dir / "corpus.jsonl")
    queries = load_queries(set_dir / "queries.jsonl")
    qrels = load_qrels(set_dir / "qrels.tsv")
    encoder = _encoder(args.model, args.cache)
    started = time.perf_counter()
    rows = []
    flags = {}
    with _index_factory(args, set_dir.name) as (factory, full_text):
        ranker = EvalRanker(encoder, docs, progress=not args.quiet, index_factory=factory,
                            full_text_factory=full_text)
        build_s = time.perf_counter() - started
        for mode in args.modes:
            run, labels = ranker.rank_rated(queries, k=100, mode=mode)
            rows.append((mode, score_run(run, qrels), ranker.timings.queries_s[mode]))
            if any(labels.values()):
                flags[mode] = score_flags(labels, qrels)
    where = ("in-process FAISS" if args.index != "milvus"
             else f"Milvus ({args.milvus_index_type}; BM25 "
                  f"{'Milvus full-text' if args.lexical == 'milvus' else 'in-process'})")
    print(f"{set_dir.name}: {len(docs)} documents, {len(queries)} queries, "
          f"model {encoder.name}, vectors in {where}")
    encode_s = ranker.timings.encode_documents_s
    print(f"index build {build_s:.1f}s (document encoding {encode_s:.1f}s, "
          "shared by dense and hybrid)")
    shown = METRICS + (JUDGED_METRICS if is_judged_scale(qrels) else ())
    if is_judged_scale(qrels):
        answered = len(answerable(qrels))
        print(f"judged 0–3: {answered} of {len(qrels)} judged queries have a result at grade ≥ 2"
              f" (P@5 is over those; {len(qrels) - answered} are unanswerable)")
    header = f"{'mode':<8}" + "".join(f"{m:>9}" for m in shown) + f"{'query s':>9}"
    print(header)
    for mode, scores, seconds in rows:
        print(f"{mode:<8}" + "".join(f"{scores[m]:>9.4f}" for m in shown) + f"{seconds:>9.1f}")
    if is_judged_scale(qrels):
        for mode, f in flags.items():
            # The need page's plain notice (当前平台暂无较强匹配的成果): right for needs the
            # corpus cannot answer, a false alarm for the others.
            print(f"{mode}: no match 强/较强 in the top {FLAG_DEPTH}: unanswerable needs "
                  f"flagged {f.unanswerable_flagged}/{f.unanswerable} "
                  f"({f.flagged_share:.3f}); answerable needs flagged "
                  f"{f.answerable_flagged}/{f.answerable} ({f.false_alarm_share:.3f})")
    return 0


CACHE_HELP = ("keep the vectors in this embedding cache (SQLite; e.g. var/cache/embeddings.sqlite)"
              " and take them from it on the next run")


def _index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", choices=("faiss", "milvus"), default="faiss",
                        help="where the vectors are searched (default: FAISS in memory)")
    parser.add_argument("--milvus-uri", default="", metavar="URI",
                        help="with --index milvus: a server (http://host:19530) or a Milvus "
                             "Lite file (default: a temporary one)")
    parser.add_argument("--milvus-index-type", default="FLAT",
                        choices=("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX"))
    parser.add_argument("--lexical", default="milvus", choices=("milvus", "process"),
                        help="with --index milvus: BM25 by Milvus's full-text search "
                             "(default) or in this process")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m matcher", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rank = sub.add_parser("rank", help="rank a corpus for a query set; TREC run on stdout")
    rank.add_argument("--corpus", required=True, help="corpus.jsonl (id, title, text, keywords)")
    rank.add_argument("--queries", required=True, help="queries.jsonl (id, text)")
    rank.add_argument("--top-k", type=int, default=100)
    rank.add_argument("--mode", choices=MODES, default="hybrid")
    rank.add_argument("--model", default=None, help="model folder, or 'fake' (default: e5)")
    rank.add_argument("--tag", default=None, help="run tag in the last column")
    rank.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    rank.add_argument("--cache", default=None, metavar="FILE", help=CACHE_HELP)
    _index_options(rank)
    rank.set_defaults(func=cmd_rank)

    evaluate = sub.add_parser("evaluate", help="nDCG@10, MRR@10, R@10, R@100 for every mode")
    evaluate.add_argument("setdir", help="folder with corpus.jsonl, queries.jsonl, qrels.tsv")
    evaluate.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    evaluate.add_argument("--model", default=None)
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.add_argument("--cache", default=None, metavar="FILE", help=CACHE_HELP)
    _index_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "top_k", 1) < 1:
        print("error: --top-k must be positive", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
