"""Encoding speed and dense retrieval quality: the default encoder beside plain fp32.

For each encoder, on the same texts in the same run:
  * documents/s on a sample of the development corpora (title + text + keywords), best of
    a few rounds run interleaved, so load from other processes hits every encoder alike,
  * single-query latency p50/p95 (one query per call, as the site issues them),
  * dense-only nDCG@10 (graded qrels, gain 2^grade - 1, the convention of the reference
    figures in datasets/eval/README.md) on the development sets. Our encoders score a
    document longer than the window by its best window (the index also discounts later
    windows by 0.02; this does not); the baseline truncates at 512 tokens.

The baseline is plain sentence-transformers fp32 on torch: `SentenceTransformer(path)` with
the model's own prompts and its 512-token truncation. Run niced; the machine has 2 cores.

    nice python benchmarks/encode.py                       # all four sets, full corpora
    nice python benchmarks/encode.py --sets csl-keywords --max-docs 300 --max-queries 60
    nice python benchmarks/encode.py --encoders fp32 default torch bf16 onnx torch:w256

What a CPU without AMX gets can be seen on one with it by capping oneDNN's instruction set:
OpenVINO's CPU kernels and torch's bf16 products go through oneDNN, and fp32 matrix products
never use AMX, so the fp32 baseline is what such a CPU runs too. ONNX Runtime reads the CPU
itself and cannot be capped this way.

    ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI nice python benchmarks/encode.py --encoders fp32 openvino
    ONEDNN_MAX_CPU_ISA=AVX2_VNNI MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 \
        nice python benchmarks/encode.py --encoders fp32 openvino
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
from settings import Settings  # noqa: E402

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
    # One normalised vector per window and document (the index's view), when the encoder has it.
    encode_document_windows: Callable[[Sequence[str]], list[np.ndarray]] | None = None

    def scores(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        query_vectors = self.encode_queries(queries)
        if self.encode_document_windows is None:
            return query_vectors @ self.encode_documents(documents).T
        windows = self.encode_document_windows(documents)
        owner = np.repeat(np.arange(len(windows)), [len(rows) for rows in windows])
        per_window = query_vectors @ np.vstack(windows).T
        best = np.full((len(queries), len(windows)), -np.inf, dtype=np.float32)
        np.maximum.at(best.T, owner, per_window.T)
        return best


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
            (2 ** judged.get(eval_set.doc_ids[doc], 0) - 1) / math.log2(rank + 2)
            for rank, doc in enumerate(top)
        )
        ideal = sorted(judged.values(), reverse=True)[:10]
        idcg = sum((2**grade - 1) / math.log2(rank + 2) for rank, grade in enumerate(ideal))
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
    settings = Settings.from_env()
    if spec == "default":
        encoder = load_encoder(settings.model, backend=settings.backend,
                               models_dir=settings.models_dir)
    else:
        backend, _, window = spec.partition(":w")
        encoder = load_encoder("e5", backend=backend, models_dir=settings.models_dir,
                               window_tokens=int(window) if window else None)
    label = f"{spec}: {encoder.name}"
    return Contender(label, encoder.encode_documents, encoder.encode_queries,
                     getattr(encoder, "encode_document_windows", None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(ALL_SETS), choices=ALL_SETS)
    parser.add_argument("--max-docs", type=int, default=None, help="documents per set (subsample)")
    parser.add_argument("--max-queries", type=int, default=None, help="queries per set")
    parser.add_argument("--latency-queries", type=int, default=50)
    parser.add_argument("--speed-docs", type=int, default=128, help="documents per speed round")
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds (best is kept)")
    parser.add_argument(
        "--encoders",
        nargs="+",
        default=["fp32", "default"],
        help="fp32 | default | torch | bf16 | onnx | openvino, optionally :wN for an N-token "
        "window (the first is the baseline)",
    )
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)

    import torch

    print(f"cpus: {os.cpu_count()}  torch threads: {torch.get_num_threads()}")
    caps = [f"{name}={os.environ[name]}" for name in
            ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")
            if os.environ.get(name)]
    if caps:
        print("instruction sets capped:", " ".join(caps))
    model_dir = materialize_e5(default_e5_dir(Settings.from_env().models_dir), progress=True)
    eval_root = Settings.from_env().datasets / "eval"
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

    # Throughput and latency are measured interleaved, best of several rounds: the machine is
    # shared, and contention would otherwise favour whichever encoder ran in a quiet moment.
    speed_texts = [text for eval_set in sets for text in eval_set.doc_texts]
    speed_texts = random.Random(args.seed).sample(
        speed_texts, min(args.speed_docs, len(speed_texts))
    )
    latency_texts = [text for eval_set in sets for text in eval_set.query_texts]
    latency_texts = latency_texts[: args.latency_queries]
    results: dict[str, dict] = {contender.label: {} for contender in contenders}
    for contender in contenders:
        contender.encode_documents(speed_texts[:8])  # warm-up
        contender.encode_queries(latency_texts[:4])
    best_seconds = {contender.label: math.inf for contender in contenders}
    for _ in range(args.rounds):
        for contender in contenders:
            started = time.perf_counter()
            contender.encode_documents(speed_texts)
            elapsed = time.perf_counter() - started
            best_seconds[contender.label] = min(best_seconds[contender.label], elapsed)
    latencies: dict[str, list[float]] = {contender.label: [] for contender in contenders}
    for text in latency_texts:
        for contender in contenders:
            started = time.perf_counter()
            contender.encode_queries([text])
            latencies[contender.label].append((time.perf_counter() - started) * 1000)
    for contender in contenders:
        row = results[contender.label]
        row["docs_per_s"] = len(speed_texts) / best_seconds[contender.label]
        ordered = sorted(latencies[contender.label])
        row["p50_ms"] = statistics.median(ordered)
        row["p95_ms"] = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
        print(
            f"{contender.label}: {row['docs_per_s']:.2f} docs/s (best of {args.rounds} x "
            f"{len(speed_texts)} docs), query p50 {row['p50_ms']:.1f} ms "
            f"p95 {row['p95_ms']:.1f} ms",
            flush=True,
        )
    for contender in contenders:
        ndcg = {}
        for eval_set in sets:
            scores = contender.scores(eval_set.query_texts, eval_set.doc_texts)
            ndcg[eval_set.name] = ndcg_at_10(scores, eval_set)
        results[contender.label]["ndcg"] = ndcg
        print(
            f"{contender.label}: nDCG@10 "
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
