"""Encoding speed and dense retrieval quality: the default encoder beside plain fp32.

For each encoder, on the same texts in the same run:
  * documents/s encoding the development corpora (title + text + keywords),
  * single-query latency p50/p95 (one query per call, as the site issues them),
  * dense-only nDCG@10 (graded qrels, linear gain as in trec_eval) on the development sets.

The baseline is plain sentence-transformers fp32 on torch: `SentenceTransformer(path)` with
the model's own prompts and its 512-token truncation. Run niced; the machine has 2 cores.

    nice python benchmarks/encode.py                       # all four sets, full corpora
    nice python benchmarks/encode.py --sets csl-keywords --max-docs 300 --max-queries 60
    nice python benchmarks/encode.py --encoders fp32 default torch:w256 onnx:w256
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embeddings.loader import load_encoder  # noqa: E402
from embeddings.model_store import default_e5_dir, materialize_e5  # noqa: E402
from embeddings.paths import shared_dir  # noqa: E402

ALL_SETS = ("csl-title", "csl-keywords", "patent-title", "patent-keywords")


@dataclass
class EvalSet:
    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


@dataclass
class Contender:
    label: str
    encode_documents: Callable[[Sequence[str]], np.ndarray]
    encode_queries: Callable[[Sequence[str]], np.ndarray]


def _document_text(row: dict) -> str:
    keywords = row.get("keywords") or []
    if isinstance(keywords, list):
        keywords = " ".join(keywords)
    return "\n".join(part for part in (row.get("title"), row.get("text"), keywords) if part)


def load_set(folder: Path, *, max_docs: int | None, max_queries: int | None, seed: int) -> EvalSet:
    def read_jsonl(path: Path) -> list[dict]:
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    corpus = read_jsonl(folder / "corpus.jsonl")
    queries = read_jsonl(folder / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels.tsv").open(encoding="utf-8") as handle:
        for line in handle:
            qid, _, doc_id, grade = line.split()
            if int(grade) > 0:
                qrels.setdefault(qid, {})[doc_id] = int(grade)
    queries = [query for query in queries if query["id"] in qrels]
    rng = random.Random(seed)
    if max_queries and len(queries) > max_queries:
        queries = rng.sample(queries, max_queries)
    if max_docs and len(corpus) > max_docs:
        # Keep every judged document of the kept queries, fill up with random distractors.
        judged = {doc for query in queries for doc in qrels[query["id"]]}
        kept = [row for row in corpus if row["id"] in judged]
        others = [row for row in corpus if row["id"] not in judged]
        room = max(0, max_docs - len(kept))
        corpus = kept + rng.sample(others, min(room, len(others)))
    texts = [_document_text(row) for row in corpus]
    keep = [index for index, text in enumerate(texts) if text.strip()]
    return EvalSet(
        name=folder.name,
        doc_ids=[corpus[index]["id"] for index in keep],
        doc_texts=[texts[index] for index in keep],
        query_ids=[query["id"] for query in queries],
        query_texts=[query["text"] for query in queries],
        qrels={query["id"]: qrels[query["id"]] for query in queries},
    )


def ndcg_at_10(scores: np.ndarray, eval_set: EvalSet) -> float:
    values = []
    for row, qid in enumerate(eval_set.query_ids):
        judged = eval_set.qrels[qid]
        top = np.argsort(-scores[row])[:10]
        dcg = sum(
            judged.get(eval_set.doc_ids[doc], 0) / math.log2(rank + 2)
            for rank, doc in enumerate(top)
        )
        ideal = sorted(judged.values(), reverse=True)[:10]
        idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
        values.append(dcg / idcg if idcg else 0.0)
    return float(np.mean(values)) if values else float("nan")


def make_contender(spec: str, model_dir: Path) -> Contender:
    if spec == "fp32":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(model_dir), device="cpu")
        prompts = model.prompts or {}

        def encode(texts: Sequence[str], prompt_name: str) -> np.ndarray:
            return model.encode(
                list(texts),
                prompt=prompts.get(prompt_name) or None,
                batch_size=16,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )

        return Contender(
            "plain ST fp32 (torch, w512 truncating)",
            lambda texts: encode(texts, "document"),
            lambda texts: encode(texts, "query"),
        )
    if spec == "default":
        encoder = load_encoder(None)
    else:
        backend, _, window = spec.partition(":w")
        previous = os.environ.get("MATCHER_BACKEND")
        os.environ["MATCHER_BACKEND"] = backend
        try:
            encoder = load_encoder("e5", window_tokens=int(window) if window else None)
        finally:
            if previous is None:
                os.environ.pop("MATCHER_BACKEND", None)
            else:
                os.environ["MATCHER_BACKEND"] = previous
    label = f"{spec}: {encoder.name}"
    return Contender(label, encoder.encode_documents, encoder.encode_queries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(ALL_SETS), choices=ALL_SETS)
    parser.add_argument("--max-docs", type=int, default=None, help="documents per set (subsample)")
    parser.add_argument("--max-queries", type=int, default=None, help="queries per set")
    parser.add_argument("--latency-queries", type=int, default=50)
    parser.add_argument(
        "--encoders",
        nargs="+",
        default=["fp32", "default"],
        help="fp32 | default | torch:wN | onnx:wN (the first is the baseline)",
    )
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)

    import torch

    print(f"cpus: {os.cpu_count()}  torch threads: {torch.get_num_threads()}")
    model_dir = materialize_e5(default_e5_dir(), progress=True)
    eval_root = shared_dir() / "eval"
    sets = [
        load_set(
            eval_root / name, max_docs=args.max_docs, max_queries=args.max_queries, seed=args.seed
        )
        for name in args.sets
    ]
    for eval_set in sets:
        print(f"{eval_set.name}: {len(eval_set.doc_texts)} docs, {len(eval_set.query_ids)} queries")

    contenders = []
    for spec in args.encoders:
        started = time.perf_counter()
        contenders.append(make_contender(spec, model_dir))
        print(f"loaded {contenders[-1].label} in {time.perf_counter() - started:.1f} s")

    latency_texts = [text for eval_set in sets for text in eval_set.query_texts]
    latency_texts = latency_texts[: args.latency_queries]
    results: dict[str, dict] = {}
    for contender in contenders:
        contender.encode_documents(sets[0].doc_texts[:8])  # warm-up
        contender.encode_queries(latency_texts[:4])
        doc_count, doc_seconds, ndcg = 0, 0.0, {}
        for eval_set in sets:
            started = time.perf_counter()
            documents = contender.encode_documents(eval_set.doc_texts)
            doc_seconds += time.perf_counter() - started
            doc_count += len(eval_set.doc_texts)
            queries = contender.encode_queries(eval_set.query_texts)
            ndcg[eval_set.name] = ndcg_at_10(queries @ documents.T, eval_set)
        latencies = []
        for text in latency_texts:
            started = time.perf_counter()
            contender.encode_queries([text])
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        results[contender.label] = {
            "docs_per_s": doc_count / doc_seconds,
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)],
            "ndcg": ndcg,
        }
        row = results[contender.label]
        print(
            f"{contender.label}: {row['docs_per_s']:.2f} docs/s, query p50 {row['p50_ms']:.1f} ms "
            f"p95 {row['p95_ms']:.1f} ms, nDCG@10 "
            + " ".join(f"{name}={value:.4f}" for name, value in ndcg.items()),
            flush=True,
        )

    baseline_label = contenders[0].label
    baseline = results[baseline_label]
    print(
        "\n| encoder | docs/s | speed-up | query p50 ms | query p95 ms | "
        + " | ".join(f"nDCG@10 {eval_set.name} (Δ%)" for eval_set in sets)
        + " |"
    )
    print("|---" * (5 + len(sets)) + "|")
    for label, row in results.items():
        cells = [
            label,
            f"{row['docs_per_s']:.2f}",
            f"{row['docs_per_s'] / baseline['docs_per_s']:.2f}×",
            f"{row['p50_ms']:.1f}",
            f"{row['p95_ms']:.1f}",
        ]
        for eval_set in sets:
            value, reference = row["ndcg"][eval_set.name], baseline["ndcg"][eval_set.name]
            delta = 100 * (value - reference) / reference if reference else float("nan")
            cells.append(f"{value:.4f} ({delta:+.2f}%)")
        print("| " + " | ".join(cells) + " |")
    print(f"\nbaseline: {baseline_label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
