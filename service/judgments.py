"""Firms' marks as a judged retrieval set, in the layout of datasets/eval (corpus.jsonl,
queries.jsonl, qrels.tsv), so `python -m matcher evaluate OUT_DIR` scores the engine on
judgements that grow from real use.

Each need with a mark is a query (its text is what the engine matches on: the need's title
and description, `Item.full_text`); each marked result is a document; a 相关 mark is grade 2
(the judged sets' "partly answers"), a 不相关 mark grade 0. Ids are the platform's own. Only
marked results are in the corpus, so scoring it measures how the engine orders the pairs
firms judged (a re-ranking of judged pairs), not retrieval from the whole platform.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from corpora.items import need_to_item
from corpora.models import MatchFeedback, Need

RELEVANT_GRADE = 2
NOT_RELEVANT_GRADE = 0


@dataclass(frozen=True)
class Exported:
    queries: int
    documents: int
    relevant: int
    not_relevant: int


def export_judgments(session: Session, out_dir: Path) -> Exported:
    marks = list(session.scalars(
        select(MatchFeedback)
        .options(selectinload(MatchFeedback.need).selectinload(Need.organisation),
                 selectinload(MatchFeedback.result))
        .order_by(MatchFeedback.need_id, MatchFeedback.result_id)))
    needs = {mark.need_id: mark.need for mark in marks}
    results = {mark.result_id: mark.result for mark in marks}
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "queries.jsonl", "w", encoding="utf-8") as out:
        for need_id in sorted(needs):
            text = need_to_item(needs[need_id]).full_text
            out.write(json.dumps({"id": str(need_id), "text": text}, ensure_ascii=False) + "\n")
    with open(out_dir / "corpus.jsonl", "w", encoding="utf-8") as out:
        for result_id in sorted(results):
            result = results[result_id]
            out.write(json.dumps({"id": str(result_id), "title": result.title,
                                  "text": result.abstract or "",
                                  "keywords": list(result.keyword_list)},
                                 ensure_ascii=False) + "\n")
    with open(out_dir / "qrels.tsv", "w", encoding="utf-8") as out:
        for mark in marks:
            grade = RELEVANT_GRADE if mark.relevant else NOT_RELEVANT_GRADE
            out.write(f"{mark.need_id}\t0\t{mark.result_id}\t{grade}\n")
    relevant = sum(1 for mark in marks if mark.relevant)
    return Exported(len(needs), len(results), relevant, len(marks) - relevant)
