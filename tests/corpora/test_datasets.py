"""The data ships in the repository (datasets/), whole, and is what the code reads by default."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from settings import Settings

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "datasets"

DATA_ROWS = {"data/csl_papers.jsonl": 1_000, "data/patents.jsonl": 3_655}
# set: (corpus documents, queries, qrels lines)
EVAL_SETS = {
    "csl-title": (716, 716, 716),
    "csl-keywords": (716, 150, 398),
    "patent-title": (3_655, 689, 689),
    "patent-keywords": (3_655, 500, 8_420),
    "need-results": (4_654, 158, 6_111),
}
# Judged by reading on 0–3, with the unrelated pairs kept as 0; the other sets list only the
# relevant documents of each query.
JUDGED_SETS = {"need-results"}
SEED = "seed/songjiang-sci-tech-plan-2021-2025.txt"
DOCUMENTS = (
    "README.md", "LICENSES.md", "LICENSE-Apache-2.0.txt", "data/README.md", "eval/README.md",
)


def line_count(path: Path) -> int:
    """Newlines, as `wc -l` counts them (the seed text has no final newline)."""
    return path.read_bytes().count(b"\n")


def ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line)["id"] for line in stream if line.strip()]


def qrels(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.reader(stream, delimiter="\t"))


@pytest.mark.parametrize("relative, rows", DATA_ROWS.items())
def test_demo_data_is_in_the_repository(relative: str, rows: int) -> None:
    path = DATASETS / relative
    assert path.is_file(), path
    assert line_count(path) == rows
    with path.open(encoding="utf-8") as stream:
        assert all("abstract" in json.loads(line) for line in stream)


@pytest.mark.parametrize("name", EVAL_SETS)
def test_eval_set_is_whole_and_its_qrels_resolve(name: str) -> None:
    folder = DATASETS / "eval" / name
    documents, queries, judgements = EVAL_SETS[name]
    doc_ids, query_ids = ids(folder / "corpus.jsonl"), ids(folder / "queries.jsonl")
    lines = qrels(folder / "qrels.tsv")
    assert (len(doc_ids), len(query_ids), len(lines)) == (documents, queries, judgements)
    assert len(set(doc_ids)) == documents and len(set(query_ids)) == queries
    assert all(len(line) == 4 for line in lines)
    assert {line[0] for line in lines} <= set(query_ids)
    assert {line[2] for line in lines} <= set(doc_ids)
    if name in JUDGED_SETS:
        assert {int(line[3]) for line in lines} <= {0, 1, 2, 3}
        assert {line[0] for line in lines} == set(query_ids)  # every need has its pool judged
        assert len({(line[0], line[2]) for line in lines}) == judgements
    else:
        assert all(int(line[3]) > 0 for line in lines)


def test_seed_and_documents_are_there() -> None:
    seed = (DATASETS / SEED).read_text(encoding="utf-8")
    assert seed.startswith("关于印发《松江区科技创新“十四五”规划》的通知")
    assert line_count(DATASETS / SEED) == 622
    for relative in DOCUMENTS:
        assert (DATASETS / relative).is_file(), relative
    notices = (DATASETS / "LICENSES.md").read_text(encoding="utf-8")
    assert "Apache License, Version 2.0" in notices and "Copyright (c) 2025 Gongbo Tang" in notices


def test_datasets_are_the_repository_copy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATCHER_SHARED", raising=False)
    assert Settings.from_env().datasets == DATASETS
    monkeypatch.setenv("MATCHER_SHARED", "/elsewhere/shared")
    assert Settings.from_env().datasets == Path("/elsewhere/shared")


def test_nothing_reads_the_folder_beside_the_checkout() -> None:
    # The data's origin is named in datasets/README.md; code and docs must not point there.
    beside = re.compile(r"\.\./shared\b|parent\s*/\s*[\"']shared[\"']")
    folders = ("benchmarks", "corpora", "docs", "embeddings", "matcher", "scripts", "tests", "web")
    files = [path for folder in folders for path in (REPO / folder).rglob("*")
             if path.suffix in {".py", ".md", ".sh", ".html", ".toml"}]
    files += [REPO / name for name in ("README.md", "run.sh", "test.sh", "pyproject.toml")]
    offenders = [str(path.relative_to(REPO)) for path in files
                 if path.is_file() and beside.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
