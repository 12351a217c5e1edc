"""Retrieval sets in the shared/eval layout, TREC runs, and the metrics we report."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from matcher.strength import STRONG_LABELS

Run = dict[str, list[tuple[str, float]]]  # query id → ranked (doc id, score)
Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class EvalDoc:
    id: str
    title: str
    text: str
    keywords: tuple[str, ...] = ()  # also in `text`; kept apart for the domain vocabulary


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or "id" not in record:
                raise ValueError(f"{path}:{line_no}: expected an object with an 'id'")
            yield line_no, record


def _as_text(value: object) -> str:
    # Keyword fields come as lists or as one string; both count as text.
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value if v is not None)
    return str(value)


def load_corpus(path: Path) -> list[EvalDoc]:
    docs = []
    for _, rec in _read_jsonl(path):
        title = _as_text(rec.get("title")).strip()
        parts = (_as_text(rec.get("text")).strip(), _as_text(rec.get("keywords")).strip())
        body = " ".join(part for part in parts if part)
        # A document with neither title nor text is kept (the set's ids stay whole) but has
        # nothing to match on; the ranker leaves it out of its indexes.
        raw = rec.get("keywords")
        keywords = tuple(str(k) for k in raw if k) if isinstance(raw, list | tuple) else ()
        docs.append(EvalDoc(str(rec["id"]), title, body, keywords))
    return docs


def load_queries(path: Path) -> list[EvalQuery]:
    queries = []
    for line_no, rec in _read_jsonl(path):
        text = _as_text(rec.get("text")).strip()
        if not text:
            raise ValueError(f"{path}:{line_no}: query {rec['id']!r} has empty text")
        queries.append(EvalQuery(str(rec["id"]), text))
    return queries


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ValueError(f"{path}:{line_no}: expected 'qid 0 docid grade'")
            qid, _, doc_id, grade = parts
            qrels.setdefault(qid, {})[doc_id] = int(grade)
    return qrels


def write_trec(run: Run, out: TextIO, tag: str) -> None:
    for qid, ranked in run.items():
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            out.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def ndcg_at(ranked: Sequence[str], judged: dict[str, int], k: int) -> float:
    # Exponential gain, as trec_eval's ndcg_cut with graded qrels.
    dcg = sum((2 ** judged.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr_at(ranked: Sequence[str], judged: dict[str, int], k: int) -> float:
    for i, doc_id in enumerate(ranked[:k]):
        if judged.get(doc_id, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def recall_at(ranked: Sequence[str], judged: dict[str, int], k: int) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def precision_at(ranked: Sequence[str], judged: dict[str, int], k: int, min_grade: int) -> float:
    """Share of the top k judged at `min_grade` or above (an unjudged document counts as not)."""
    return sum(1 for d in ranked[:k] if judged.get(d, 0) >= min_grade) / k


METRICS = ("nDCG@10", "MRR@10", "R@10", "R@100")
# Sets judged by reading on the 0–3 scale (datasets/eval/need-results/GUIDELINES.md: 2 partly
# answers, 3 could solve it) also get P@5 at grade ≥ 2, over the needs that have such a result.
# The derived sets' grades (1 and 2: shares a keyword, is the source) mean something else.
JUDGED_SCALE_TOP = 3
ANSWERS_GRADE = 2
JUDGED_METRICS = ("P@5",)


def is_judged_scale(qrels: Qrels) -> bool:
    return any(g >= JUDGED_SCALE_TOP for rel in qrels.values() for g in rel.values())


def answerable(qrels: Qrels) -> list[str]:
    """Queries with at least one result that at least partly answers them (grade ≥ 2)."""
    return [q for q, rel in qrels.items() if any(g >= ANSWERS_GRADE for g in rel.values())]


def score_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the judged queries (queries with no relevant doc are skipped)."""
    judged_ids = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    if not judged_ids:
        raise ValueError("qrels hold no relevant document")
    totals = dict.fromkeys(METRICS, 0.0)
    for qid in judged_ids:
        ranked = [doc_id for doc_id, _ in run.get(qid, [])]
        judged = qrels[qid]
        totals["nDCG@10"] += ndcg_at(ranked, judged, 10)
        totals["MRR@10"] += mrr_at(ranked, judged, 10)
        totals["R@10"] += recall_at(ranked, judged, 10)
        totals["R@100"] += recall_at(ranked, judged, 100)
    scores = {name: value / len(judged_ids) for name, value in totals.items()}
    if is_judged_scale(qrels):
        answered = answerable(qrels)
        scores["P@5"] = sum(
            precision_at([d for d, _ in run.get(q, [])], qrels[q], 5, ANSWERS_GRADE)
            for q in answered) / len(answered)
    return scores


# A need page lists this many matches; the page says 当前平台暂无较强匹配的成果 when none of
# them is rated 强 or 较强 (web.matchview.none_strong). The evaluation reads the same window.
FLAG_DEPTH = 20


@dataclass(frozen=True)
class FlagScores:
    """How well "no strong match" tells unanswerable needs (no judged result at grade ≥ 2)
    from answerable ones."""

    unanswerable: int
    unanswerable_flagged: int  # rightly told there is no strong match
    answerable: int
    answerable_flagged: int  # told so although the corpus holds an answer

    @property
    def flagged_share(self) -> float:
        return self.unanswerable_flagged / self.unanswerable if self.unanswerable else 0.0

    @property
    def false_alarm_share(self) -> float:
        return self.answerable_flagged / self.answerable if self.answerable else 0.0


def flagged(labels: Sequence[str], depth: int = FLAG_DEPTH) -> bool:
    """Whether a need with these strength labels (rank order) is told no match is strong."""
    return bool(labels) and not any(label in STRONG_LABELS for label in labels[:depth])


def score_flags(labels: dict[str, list[str]], qrels: Qrels) -> FlagScores:
    """Over the judged queries of a 0–3 set: those flagged, apart by answerability."""
    answered = set(answerable(qrels))
    rated = [q for q in qrels if labels.get(q)]
    unanswerable = [q for q in rated if q not in answered]
    answerable_ids = [q for q in rated if q in answered]
    return FlagScores(
        unanswerable=len(unanswerable),
        unanswerable_flagged=sum(flagged(labels[q]) for q in unanswerable),
        answerable=len(answerable_ids),
        answerable_flagged=sum(flagged(labels[q]) for q in answerable_ids),
    )
