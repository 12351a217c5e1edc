"""The demo corpus: public papers and patents as results of sample institutions, plus firm needs.

Sources (attribution travels with the data, see docs/import-format.md):
- `datasets/data/csl_papers.jsonl`: CSL, Chinese Scientific Literature (Apache-2.0) → 论文
- `datasets/data/patents.jsonl`: KPPatent-ZH (MIT) → 发明专利
- `corpora/data/demo_needs.jsonl`: needs written for the demo, posted by sample firms

None of these records comes from a real university: they are assigned to sample institutions
named "示例…（演示数据）" and flagged `is_sample`. Their maturity, institution and transfer modes
are demo metadata, drawn deterministically from a hash of the record id (so every build gives
the same answer); their industry comes from the keyword heuristic in `corpora.industries`.
Patents without a title get one derived from the abstract's own opening (`corpora.demo_titles`),
and `Result.title_derived` says so: the pages show a tag beside such a title, never a mark in
it. Titles that came with OCR'd page counts ("权利要求书3页说明书8页…") are cleaned.

Every record goes through the importer (`corpora.importer`), so the demo obeys the same
validation and upsert rules as a user's upload; building twice creates nothing new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from corpora.demo_titles import clean_source_title, derive_title
from corpora.importer import ImportReport, import_records, import_table, read_source
from corpora.industries import classify_industry
from corpora.models import Result
from corpora.schema import NEED_SCHEMA

DEMO_NEEDS_PATH = Path(__file__).resolve().parent / "data" / "demo_needs.jsonl"
PAPERS_FILE = Path("data") / "csl_papers.jsonl"
PATENTS_FILE = Path("data") / "patents.jsonl"

# What the demo wrote in front of derived titles before they were flagged instead (migration
# 0006 takes it off existing rows). No title carries it any more.
DERIVED_TITLE_MARK = "〔据摘要拟题〕"


@dataclass(frozen=True)
class SampleInstitution:
    name: str
    kind: str  # university | institute
    city: str


SAMPLE_INSTITUTIONS: tuple[SampleInstitution, ...] = (
    SampleInstitution("示例大学甲（演示数据）", "university", "上海松江"),
    SampleInstitution("示例大学乙（演示数据）", "university", "杭州"),
    SampleInstitution("示例大学丙（演示数据）", "university", "合肥"),
    SampleInstitution("示例大学丁（演示数据）", "university", "苏州"),
    SampleInstitution("示例研究院戊（演示数据）", "institute", "嘉兴"),
    SampleInstitution("示例研究院己（演示数据）", "institute", "芜湖"),
)

Weighted = Sequence[tuple[Any, int]]

# Papers are mostly early-stage; patents spread further towards industrialisation.
PAPER_MATURITY: Weighted = (("实验室", 6), ("小试", 3), ("中试", 1))
PATENT_MATURITY: Weighted = (("实验室", 2), ("小试", 3), ("中试", 3), ("产业化", 2))
PAPER_TRANSFER_MODES: Weighted = (
    (("技术咨询",), 4),
    (("合作开发",), 3),
    (("技术咨询", "合作开发"), 3),
)
PATENT_TRANSFER_MODES: Weighted = (
    (("技术转让",), 3),
    (("许可",), 2),
    (("技术转让", "许可"), 3),
    (("合作开发",), 1),
    (("作价入股",), 1),
)


def pick(record_id: str, purpose: str, weighted: Weighted) -> Any:
    """A weighted choice that depends only on the record id and what it is for."""
    digest = hashlib.sha256(f"{purpose}:{record_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(weight for _, weight in weighted)
    for value, weight in weighted:
        if point < weight:
            return value
        point -= weight
    raise AssertionError("unreachable: point is below the total weight")


def institution_for(record_id: str) -> SampleInstitution:
    return pick(record_id, "institution", [(inst, 1) for inst in SAMPLE_INSTITUTIONS])


def _read_jsonl(path: Path, limit: int | None) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        for count, line in enumerate(stream):
            if limit is not None and count >= limit:
                return
            yield json.loads(line)


def demo_title(source: dict[str, Any], result_type: str) -> tuple[str | None, bool]:
    """The title the demo shows for a source record, and whether it was derived (the record
    came without one)."""
    abstract = source.get("abstract") or ""
    own = (source.get("title") or "").strip()
    if own:
        return clean_source_title(own, abstract), False
    derived = derive_title(abstract, source.get("keywords") or (), result_type)
    return (derived.text, True) if derived is not None else (None, True)


def _result_record(source: dict[str, Any], result_type: str) -> dict[str, Any]:
    record_id = source["id"]
    institution = institution_for(record_id)
    is_paper = result_type == "论文"
    keywords = source.get("keywords") or []
    title, _ = demo_title(source, result_type)
    guess = classify_industry(
        title or "", source.get("abstract") or "", keywords, source.get("discipline")
    )
    return {
        "external_id": record_id,
        "title": title,
        "abstract": source.get("abstract"),
        "keywords": keywords,
        "result_type": result_type,
        "industry": guess.industry,
        "maturity": pick(record_id, "maturity", PAPER_MATURITY if is_paper else PATENT_MATURITY),
        "transfer_modes": list(
            pick(record_id, "transfer", PAPER_TRANSFER_MODES if is_paper else PATENT_TRANSFER_MODES)
        ),
        "institution": institution.name,
        "institution_kind": institution.kind,
        "institution_city": institution.city,
    }


@dataclass
class DemoReport:
    reports: dict[str, ImportReport] = field(default_factory=dict)  # papers / patents / needs
    missing: list[str] = field(default_factory=list)  # source files that were not there

    @property
    def created(self) -> int:
        return sum(report.created for report in self.reports.values())

    @property
    def updated(self) -> int:
        return sum(report.updated for report in self.reports.values())

    def changed_ids(self, side: str) -> list[int]:
        return sorted(
            row_id
            for report in self.reports.values()
            if report.side == side
            for row_id in report.changed_ids
        )

    def summary(self) -> str:
        lines = ["演示数据（示例单位，非真实机构）："]
        lines.extend(report.summary(max_errors=10) for report in self.reports.values())
        lines.extend(f"未找到 {path}，已跳过。" for path in self.missing)
        return "\n".join(lines)


def _flag_derived_titles(session: Session, report: ImportReport, derived: set[str]) -> None:
    """Set `title_derived` on the rows just written (created, updated or unchanged): the
    importer's field table has no such column, since no office imports it. The rows are in the
    session already, so this issues UPDATEs only where the flag changes."""
    for row_id in report.created_ids + report.updated_ids + report.unchanged_ids:
        row = session.get(Result, row_id)
        if row is not None:
            flag = row.external_id in derived
            if row.title_derived != flag:
                row.title_derived = flag


def build_demo(
    session: Session,
    shared_dir: str | Path,
    *,
    limit: int | None = None,
    progress: bool = True,
    needs_path: str | Path | None = None,
) -> DemoReport:
    """Import the demo corpus through `session` (the caller commits); idempotent.

    `limit` takes only the first N records of each source file (for tests). Source rows the
    importer rejects (a patent with an empty abstract) are skipped and listed in the report.
    The needs file is the project's own, so a bad row there raises `RowsRejected`.
    """
    shared = Path(shared_dir)
    report = DemoReport()
    for key, relative, result_type in (
        ("papers", PAPERS_FILE, "论文"),
        ("patents", PATENTS_FILE, "发明专利"),
    ):
        path = shared / relative
        if not path.exists():
            report.missing.append(str(path))
            continue
        sources = list(_read_jsonl(path, limit))
        records = [_result_record(source, result_type) for source in sources]
        report.reports[key] = import_records(
            session, "result", records, source=path.name, keep_valid=True, sample=True,
            progress=progress,
        )
        derived = {source["id"] for source in sources if demo_title(source, result_type)[1]}
        _flag_derived_titles(session, report.reports[key], derived)

    needs_file = Path(needs_path) if needs_path is not None else DEMO_NEEDS_PATH
    if not needs_file.exists():
        report.missing.append(str(needs_file))
        return report
    table = read_source(NEED_SCHEMA, needs_file)
    if limit is not None:
        table.rows = table.rows[:limit]
    report.reports["needs"] = import_table(
        session, "need", table, source=needs_file.name, sample=True, progress=progress
    )
    return report
