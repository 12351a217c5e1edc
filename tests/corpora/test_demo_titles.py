"""Titles a firm can read: derived from the abstract's own opening, flagged (never marked),
cleaned of OCR'd page counts; over the whole demo corpus, in the database and on the page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.command import downgrade
from sqlalchemy import Engine, select, text

from corpora.db import alembic_config, create_engine_for, session_scope, upgrade
from corpora.demo import (
    DERIVED_TITLE_MARK,
    PAPERS_FILE,
    PATENTS_FILE,
    build_demo,
    demo_title,
)
from corpora.demo_titles import (
    DERIVED_TITLE_MAX,
    HOW_KEYWORDS,
    HOW_UNNAMED,
    clean_source_title,
    derive_title,
)
from corpora.models import Result, content_hash_of, dedup_key_of
from corpora.schema import TITLE_MAX
from settings import Settings
from tests.support.web import Site
from web.database import sessions

SHARED = Settings.from_env().datasets

# Written here, not imported: what no title may start with.
PAGE_COUNT = re.compile(r"^\s*(权利要求书|说明书|附图|摘要)\s*\d+\s*页")
CLAIM_NUMBER = re.compile(r"^\s*(\d+\s*[.．、]|根据权利要求|如权利要求)")
REFERENCE_NUMERAL = re.compile(r"^\s*([(（]\s*[A-Za-z]?\d+|\d+\s*、)")
# ... and what no derived title may start with either: a bracket, punctuation, or a word that
# continues a sentence.
FRAGMENT_START = re.compile(
    r"^([\s(（\[【〔<《“\"‘'\-‑—_,，.。、;；:：!?！？·…/]|的|所述|其中|其|该|并|且|和|与|及|或|以|为"
    r"|是|被|上述|包括)"
)
# A figure label anywhere in a derived title: "存储部(41)".
LABEL_INSIDE = re.compile(r"[(（]\s*[A-Za-z]?\d+[A-Za-z]?\s*[)）]")


def _sources(relative: Path) -> list[dict[str, Any]]:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not there")
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


@pytest.mark.parametrize(
    ("abstract", "title"),
    [
        ("本发明公开了一种薄矿体智能掘进机开采方法，包括如下步骤：1)划分盘区",
         "一种薄矿体智能掘进机开采方法"),
        ("本发明的课题为提供一种高耐久性的管接头。", "一种高耐久性的管接头"),
        ("一种制造多隔室内管的方法包含以下步骤：将粘合剂条安置在织物上",
         "一种制造多隔室内管的方法"),
        ("提供了防雾涂料和其制备。所述防雾涂料包括", "防雾涂料和其制备"),
        ("本申请涉及使用近红外光谱法评估牙齿表面的方法，从而提供",
         "使用近红外光谱法评估牙齿表面的方法"),
        # The subject that opens the sentence, its figure label dropped.
        ("高压气体容器(100)包括：内层(11)，其内部填充有高压气体；", "高压气体容器"),
        ("设定数据存储部(41)存储有设定数据。控制装置(40)具备：设定数据存储部(41)，",
         "控制装置"),
        # Past the field of the invention to what it is.
        ("本发明属于洗衣机技术领域，具体提供一种用于洗衣机的开盖组件和洗衣机。",
         "一种用于洗衣机的开盖组件和洗衣机"),
        ("本发明涉及冰箱领域，尤其涉及具有制冰功能的冰箱门体，包括", "具有制冰功能的冰箱门体"),
        # "至少一种" is not the subject.
        ("公开了用于制备环状碳酸酯的催化剂和方法。催化剂可包括至少一种聚合物季铵盐",
         "用于制备环状碳酸酯的催化剂和方法"),
        # A later sentence names it when the first does not.
        ("目的在于提供稳定地射出激光的光源。本发明的激光光源装置具有：半导体激光元件",
         "激光光源装置"),
    ],
)
def test_derived_titles_take_the_abstracts_own_subject(abstract: str, title: str) -> None:
    derived = derive_title(abstract)
    assert derived is not None and derived.text == title


@pytest.mark.parametrize(
    "abstract",
    [
        "在栓塞疗法期间，通过施用拮抗剂治疗各种类型的癌症的方法。",  # starts mid-sentence
        "将包括采用正弦信号调制的过程信号的输入信号从模拟形式转换成数字形式。",
        "所述第一壳体(41)与第二壳体(42)相连，其中该连接件",
        # A later sentence's means is not the subject either.
        "将输入信号从模拟形式转换成数字形式。通过第一数字滤波器对输入信号进行滤波。",
    ],
)
def test_a_sentence_is_not_a_title_the_keywords_are_said_as_such(abstract: str) -> None:
    derived = derive_title(abstract, ["过程信号", "壳体", "拮抗剂"])
    assert derived is not None and derived.how == HOW_KEYWORDS
    assert derived.text.startswith("涉及") and derived.text.endswith("的发明专利")


def test_no_abstract_gives_none_and_no_keywords_an_honest_name() -> None:
    assert derive_title("") is None and derive_title("   ") is None
    unnamed = derive_title("在此展示的是，其中所述。")
    assert unnamed is not None and unnamed.how == HOW_UNNAMED
    assert unnamed.text == "一项未具名的发明专利"


def test_an_over_long_subject_is_cut_at_its_list_never_mid_word() -> None:
    modifier = "基于多源异构数据融合与深度强化学习的"
    listed = f"一种{modifier * 2}智能电网负荷预测方法、装置、电子设备及计算机可读存储介质"
    assert len(listed) > DERIVED_TITLE_MAX
    derived = derive_title(f"本发明公开了{listed}，包括")
    assert derived is not None
    assert derived.text == f"一种{modifier * 2}智能电网负荷预测方法、装置、电子设备"
    # No list short enough: the head of the phrase, its modifiers dropped, never "…".
    long = f"一种{modifier * 3}智能电网负荷预测方法"
    derived = derive_title(f"本发明公开了{long}，包括")
    assert derived is not None and derived.text == "一种智能电网负荷预测方法"


@pytest.mark.parametrize(
    ("title", "abstract", "clean"),
    [
        ("权利要求书3页说明书8页附图7页自动烟雾/一氧化碳排放方法和系统", "",
         "自动烟雾/一氧化碳排放方法和系统"),
        ("权利要求书1页说明书3页一种水分散性短切碳纤维及其制备方法", "",
         "一种水分散性短切碳纤维及其制备方法"),
        ("权利要求书11页说明书24页附图1页链可有效提高激子利用率和辐射效率。"
         "一种以三芳胺为核心的有机化合物", "", "一种以三芳胺为核心的有机化合物"),
        ("权利要求书2页说明书6页附图1页获取衣物的图像信息洗衣机控制方法及装置",
         "本发明公开了一种洗衣机控制方法及装置。其中，该方法包括：获取衣物的图像信息；",
         "洗衣机控制方法及装置"),
        ("一种近水平薄矿体智能掘进机机械开采方法", "", "一种近水平薄矿体智能掘进机机械开采方法"),
    ],
)
def test_source_titles_lose_the_front_pages_page_counts(title: str, abstract: str,
                                                        clean: str) -> None:
    assert clean_source_title(title, abstract) == clean


def test_every_demo_title_reads_as_a_title() -> None:
    """The whole demo corpus, without a database: what the demo import would write."""
    checked = derived_count = 0
    for relative, result_type in ((PAPERS_FILE, "论文"), (PATENTS_FILE, "发明专利")):
        for source in _sources(relative):
            title, derived = demo_title(source, result_type)
            assert title, source["id"]
            checked += 1
            where = f"{source['id']}: {title!r}"
            assert not PAGE_COUNT.match(title), where
            assert not CLAIM_NUMBER.match(title), where
            assert not REFERENCE_NUMERAL.match(title), where
            assert DERIVED_TITLE_MARK not in title and "〔" not in title, where
            assert len(title) <= TITLE_MAX, where
            assert derived == (not (source.get("title") or "").strip()), where
            if derived:
                derived_count += 1
                assert not FRAGMENT_START.match(title), where
                assert not LABEL_INSIDE.search(title), where
                assert len(title) <= DERIVED_TITLE_MAX, where
    assert checked > 4000 and derived_count > 2900


def test_derived_titles_are_the_abstracts_words() -> None:
    """Nothing invented: a derived title (less a leading "一种") is a piece of its abstract,
    once figure labels are out; only the two honest fallbacks say something else."""
    labels = re.compile(r"\s*[(（]\s*[A-Za-z]?\d+[A-Za-z]?"
                        r"(?:\s*[-‑–~～、,，]\s*[A-Za-z]?\d+[A-Za-z]?)*\s*[)）]|[(（][A-Za-z]['′]?[)）]")
    for source in _sources(PATENTS_FILE):
        if (source.get("title") or "").strip():
            continue
        derived = derive_title(source["abstract"], source["keywords"])
        assert derived is not None
        if derived.how in (HOW_KEYWORDS, HOW_UNNAMED):
            continue
        abstract = " ".join(labels.sub("", source["abstract"]).split()).replace("‑", "-")
        words = derived.text.removeprefix("一种")
        assert words in abstract or words.split("的")[-1] in abstract, source["id"]


# --- the database -------------------------------------------------------------------------

MARKED = DERIVED_TITLE_MARK + "一种高压气体容器"


def _insert_old_rows(engine: Engine) -> None:
    """Two results as the code before revision 0006 wrote them: one derived (marked)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO organisations (id, name, kind, is_sample, created_at, updated_at) "
            "VALUES (1, '示例大学甲（演示数据）', 'university', :t, :now, :now)"),
            {"t": True, "now": now})
        for number, title in ((1, MARKED), (2, "自有标题的成果")):
            connection.execute(text(
                "INSERT INTO results (id, external_id, title, abstract, status, organisation_id,"
                " content_hash, dedup_key, created_at, updated_at) VALUES (:id, :ext, :title,"
                " '本发明公开了一种高压气体容器，包括内层。', 'active', 1, :h, :d, :now, :now)"),
                {"id": number, "ext": f"kpp-a{number}", "title": title, "now": now,
                 "h": content_hash_of("result", title, "本发明公开了一种高压气体容器，包括内层。"),
                 "d": dedup_key_of(title, "本发明公开了一种高压气体容器，包括内层。")})


def test_migration_takes_the_mark_off_and_sets_the_flag(db_url: str) -> None:
    upgrade(db_url, "0005")
    engine = create_engine_for(db_url)
    try:
        _insert_old_rows(engine)
        upgrade(db_url)
        with session_scope(engine) as session:
            derived, own = session.get(Result, 1), session.get(Result, 2)
            assert derived.title == "一种高压气体容器" and derived.title_derived is True
            assert own.title == "自有标题的成果" and own.title_derived is False
            # The title is hashed: the hashes follow it, so the indexers re-encode the row.
            assert derived.content_hash == content_hash_of(
                "result", derived.title, derived.abstract, [])
            assert derived.dedup_key == dedup_key_of(derived.title, derived.abstract)
        downgrade(alembic_config(db_url), "0005")
        with engine.connect() as connection:
            titles = connection.execute(text("SELECT title FROM results ORDER BY id")).scalars()
            assert list(titles) == [MARKED, "自有标题的成果"]
    finally:
        engine.dispose()


def _write_patents(shared: Path, ids: set[str]) -> list[dict[str, Any]]:
    chosen = [source for source in _sources(PATENTS_FILE) if source["id"] in ids]
    path = shared / PATENTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in chosen), "utf-8")
    return chosen


def test_setup_demo_gives_an_old_database_the_new_titles(sqlite_engine: Engine,
                                                         tmp_path: Path) -> None:
    # kpp-a35 has no title ("高压气体容器(100)包括…"), kpp-t233 one with page counts.
    sources = _write_patents(tmp_path, {"kpp-a35", "kpp-a6", "kpp-t233", "kpp-t0"})
    no_needs = tmp_path / "none.jsonl"
    with session_scope(sqlite_engine) as session:
        build_demo(session, tmp_path, progress=False, needs_path=no_needs)
    with session_scope(sqlite_engine) as session:
        # What the old builder left: the mark in the title, no flag, the raw OCR title.
        for row in session.scalars(select(Result)):
            source = next(s for s in sources if s["id"] == row.external_id)
            row.title = (source["title"] if source["title"]
                         else DERIVED_TITLE_MARK + source["abstract"][:20])
            row.title_derived = False
    with session_scope(sqlite_engine) as session:
        report = build_demo(session, tmp_path, progress=False, needs_path=no_needs)
        assert report.reports["patents"].updated == 3  # kpp-t0's own title was right
        rows = {row.external_id: row for row in session.scalars(select(Result))}
        assert rows["kpp-a35"].title == "高压气体容器" and rows["kpp-a35"].title_derived
        assert rows["kpp-t233"].title == "自动烟雾/一氧化碳排放方法和系统"
        assert not rows["kpp-t233"].title_derived and not rows["kpp-t0"].title_derived
        assert all(DERIVED_TITLE_MARK not in row.title for row in rows.values())
    with session_scope(sqlite_engine) as session:
        again = build_demo(session, tmp_path, progress=False, needs_path=no_needs)
        assert again.reports["patents"].updated == 0 and again.reports["patents"].created == 0


# --- the pages ----------------------------------------------------------------------------

TAG = '<span class="tag derived"'


def test_the_tag_stands_beside_a_derived_title_and_an_edit_clears_it(sqlite_site: Site) -> None:
    title = "伺服系统振动抑制控制器"
    result_id = sqlite_site.ids["result"][title]
    with sqlite_site.app.app_context(), sessions()() as db:
        db.get(Result, result_id).title_derived = True
        db.commit()
    office = sqlite_site.client("office_u1")
    page = office.get(f"/results/{result_id}").get_data(as_text=True)
    assert f"<h1>{title} {TAG}" in page
    assert f"<title>{title}" in page and "据摘要拟题</title>" not in page
    firm = sqlite_site.client("firm_a")
    need_id = sqlite_site.ids["need"]["伺服电机振动抑制"]
    matches = firm.get(f"/needs/{need_id}").get_data(as_text=True)
    link = re.search(rf'href="/results/{result_id}">(.*?)</a>( {TAG})?', matches)
    assert link is not None and link.group(2), "the tag beside the matched title"
    assert "据摘要拟题" not in link.group(1)
    # A title the office writes is its own: the tag goes.
    form = {"title": "伺服系统振动抑制控制器（第二版）", "abstract": "一种伺服电机振动抑制控制器。",
            "result_type": "发明专利", "maturity": "小试"}
    assert office.post(f"/results/{result_id}/edit", data=form).status_code == 302
    with sqlite_site.app.app_context(), sessions()() as db:
        assert db.get(Result, result_id).title_derived is False
    assert TAG not in office.get(f"/results/{result_id}").get_data(as_text=True)


def test_an_own_title_has_no_tag(sqlite_site: Site) -> None:
    result_id = sqlite_site.ids["result"]["伺服系统振动抑制控制器"]
    page = sqlite_site.client("office_u1").get(f"/results/{result_id}").get_data(as_text=True)
    assert TAG not in page and "据摘要拟题" not in page
