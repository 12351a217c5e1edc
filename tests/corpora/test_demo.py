"""The demo corpus: sample institutions, honest titles, deterministic metadata, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, func, select

from corpora.db import session_scope
from corpora.demo import (
    DEMO_NEEDS_PATH,
    DERIVED_TITLE_MARK,
    PAPER_MATURITY,
    PATENT_MATURITY,
    PATENT_TRANSFER_MODES,
    PATENTS_FILE,
    SAMPLE_INSTITUTIONS,
    build_demo,
    institution_for,
    pick,
)
from corpora.demo_titles import clean_source_title
from corpora.importer import import_file
from corpora.industries import G60_CITIES, G60_INDUSTRIES, classify_industry
from corpora.items import load_items
from corpora.models import Need, Organisation, Result
from settings import Settings

SHARED = Settings.from_env().datasets
SLICE = 30


def tiny_needs(tmp_path: Path) -> Path:
    needs = [
        {
            "external_id": f"T-{number}",
            "title": title,
            "description": description,
            "industry": industry,
            "cooperation_mode": "合作开发",
            "firm": "示例测试科技有限公司（演示）",
            "firm_city": "苏州",
        }
        for number, (title, description, industry) in enumerate(
            [
                ("注塑件缩痕在线检测", "人工抽检缩痕漏检率高，求机器视觉方案。", "智能制造"),
                ("电池包液冷板减重", "液冷板占电池包重量4%，希望减重三成。", "新能源汽车"),
                ("果蔬冷链保鲜", "冷链运输中果蔬损耗约8%，求低成本保鲜方案。", "现代农业"),
            ]
        )
    ]
    path = tmp_path / "needs.jsonl"
    path.write_text("".join(json.dumps(n, ensure_ascii=False) + "\n" for n in needs), "utf-8")
    return path


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Organisation, Need, Result)
        )


def source_records(relative: Path, limit: int) -> list[dict]:
    with (SHARED / relative).open(encoding="utf-8") as stream:
        return [json.loads(line) for _, line in zip(range(limit), stream, strict=False)]


def test_demo_build_is_idempotent(engine: Engine, tmp_path: Path) -> None:
    needs = tiny_needs(tmp_path)
    with session_scope(engine) as session:
        first = build_demo(session, SHARED, limit=SLICE, progress=False, needs_path=needs)
    assert first.missing == []
    assert first.reports["papers"].created == SLICE
    patents = first.reports["patents"]
    assert patents.created + len(patents.rejected) == SLICE and patents.created > 0
    assert first.reports["needs"].created == 3
    after_first = counts(engine)
    assert after_first == (len(SAMPLE_INSTITUTIONS) + 1, 3, first.created - 3)

    with session_scope(engine) as session:
        second = build_demo(session, SHARED, limit=SLICE, progress=False, needs_path=needs)
    assert (second.created, second.updated) == (0, 0)
    assert second.changed_ids("result") == [] and second.changed_ids("need") == []
    assert counts(engine) == after_first


def test_demo_records_are_sample_data_with_honest_titles(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with session_scope(sqlite_engine) as session:
        report = build_demo(
            session, SHARED, limit=SLICE, progress=False, needs_path=tiny_needs(tmp_path)
        )
    sources = {r["id"]: r for r in source_records(PATENTS_FILE, SLICE)}
    sample_names = {institution.name for institution in SAMPLE_INSTITUTIONS}

    with session_scope(sqlite_engine) as session:
        organisations = session.scalars(select(Organisation)).all()
        assert all(o.is_sample and "示例" in o.name for o in organisations)
        results = session.scalars(select(Result)).all()
        for result in results:
            assert result.organisation.name in sample_names
            assert "演示数据" in result.organisation.name
            assert result.organisation == session.scalars(
                select(Organisation).where(
                    Organisation.name == institution_for(result.external_id).name
                )
            ).one()
            # Nothing is invented beyond the documented demo metadata.
            assert result.patent_number is None and result.asking_price is None
            assert result.inventors is None and result.published_on is None
        patents = [r for r in results if r.result_type == "发明专利"]
        papers = [r for r in results if r.result_type == "论文"]
        assert len(papers) == SLICE and len(patents) == report.reports["patents"].created
        for patent in patents:
            source = sources[patent.external_id]
            # Derived titles are flagged, never marked (tests/corpora/test_demo_titles.py).
            assert DERIVED_TITLE_MARK not in patent.title
            if source.get("title"):
                assert patent.title == clean_source_title(source["title"], source["abstract"])
                assert not patent.title_derived
            else:
                assert patent.title_derived
            assert patent.maturity == pick(patent.external_id, "maturity", PATENT_MATURITY)
            assert patent.transfer_mode_list == list(
                pick(patent.external_id, "transfer", PATENT_TRANSFER_MODES)
            )
            assert patent.keyword_list == source["keywords"]
        assert {p.maturity for p in papers} <= {value for value, _ in PAPER_MATURITY}
        items = load_items(session, "result")
    assert all(item.facets["sample"] == "1" for item in items)
    assert {item.facets.get("industry") for item in items} - {None} <= set(G60_INDUSTRIES)


def test_project_needs_file_imports_cleanly(sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as session:
        report = import_file(session, DEMO_NEEDS_PATH, "need", sample=True)
        needs = session.scalars(select(Need)).all()
        assert all(n.organisation.is_sample and n.organisation.kind == "firm" for n in needs)
        assert {n.organisation.city for n in needs} <= set(G60_CITIES)
    assert report.created >= 60 and not report.rejected and not report.unknown_columns
    assert {need.industry for need in needs} == set(G60_INDUSTRIES)


def test_assignment_depends_only_on_the_record_id() -> None:
    ids = [f"kpp-a{number}" for number in range(300)]
    assert [institution_for(i) for i in ids] == [institution_for(i) for i in ids]
    # Spread over every sample institution and every maturity, not stuck on one.
    assert {institution_for(i) for i in ids} == set(SAMPLE_INSTITUTIONS)
    assert {pick(i, "maturity", PATENT_MATURITY) for i in ids} == {v for v, _ in PATENT_MATURITY}
    # Different purposes draw independently.
    coin = [(0, 1), (1, 1)]
    assert [pick(i, "a", coin) for i in ids] != [pick(i, "b", coin) for i in ids]


def test_industry_classifier_is_a_transparent_keyword_table() -> None:
    guess = classify_industry("基于深度学习的图像识别方法", "", ["卷积神经网络"])
    assert guess.industry == "人工智能" and {"深度学习", "图像识别", "卷积"} <= set(guess.matched)
    assert classify_industry("水稻抗倒伏栽培技术", "", []).industry == "现代农业"
    assert classify_industry("一种方法", "本方法涉及数据。", []).industry is None  # too weak
    # A discipline alone can decide; a humanities discipline never gets an industry.
    assert classify_industry("某方法研究", "", [], discipline="药学").industry == "生物医药"
    social = classify_industry("网络舆论的法律规制", "网络 通信", [], discipline="法学")
    assert social.industry is None
    assert G60_INDUSTRIES == (
        "人工智能", "集成电路", "生物医药", "新能源汽车", "新材料",
        "智能制造", "低碳技术", "新一代信息技术", "高端装备", "现代农业",
    )
