"""Import of needs and results: validation per format, all-or-nothing, rejects, upserts, items."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from openpyxl import Workbook
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from corpora.db import (
    alembic_config,
    create_engine_for,
    current_revision,
    session_scope,
    upgrade,
)
from corpora.importer import (
    ImportFileError,
    RowsRejected,
    import_file,
    import_records,
)
from corpora.items import content_hashes, load_items
from corpora.models import Need, Organisation, Result
from corpora.schema import NEED_SCHEMA, RESULT_SCHEMA, TEXT_MAX, TITLE_MAX

REPO_ROOT = Path(__file__).resolve().parents[2]

# Column names used in CSV and XLSX files (Chinese, as an office would write them); JSONL
# files use the English names.
ZH_COLUMNS = {
    "external_id": "编号",
    "title": "标题",
    "abstract": "摘要",
    "result_type": "成果类型",
    "maturity": "成熟度",
    "industry": "产业领域",
    "keywords": "关键词",
    "transfer_modes": "转化方式",
    "asking_price": "意向价格（万元）",
    "published_on": "公开日期",
    "institution": "单位名称",
}


def good_results() -> list[dict[str, Any]]:
    return [
        {
            "external_id": "R-001",
            "title": "一种锂电池极片缺陷视觉检测方法",
            # Two lines: in CSV this cell spans two file lines, which line numbers must count.
            "abstract": (
                "本成果提出基于深度学习的锂电池极片表面缺陷检测方法。\n检出率达到99%，误报率低于1%。"
            ),
            "result_type": "发明专利",
            "maturity": "中试",
            "industry": "人工智能",
            "keywords": ["缺陷检测", "深度学习", "锂电池"],
            "transfer_modes": ["技术转让", "许可"],
            "asking_price": 120.5,
            "published_on": date(2023, 5, 17),
            "institution": "测试大学",
        },
        {
            "external_id": "R-002",
            "title": "低温等离子体处理印染废水技术",
            "abstract": (
                "利用介质阻挡放电产生的低温等离子体降解印染废水中的偶氮染料，COD去除率70%以上。"
            ),
            "result_type": "实用新型",
            "maturity": "小试",
            "industry": "低碳技术",
            "keywords": ["等离子体", "印染废水"],
            "transfer_modes": ["合作开发"],
            "asking_price": 45,
            "published_on": date(2022, 11, 3),
            "institution": "测试大学",
        },
        {
            "external_id": "R-003",
            "title": "高导热氮化硼复合材料",
            "abstract": (
                "通过表面改性使氮化硼在环氧树脂中定向排布，复合材料导热系数提升至5 W/(m·K)。"
            ),
            "result_type": "论文",
            "maturity": "实验室",
            "industry": "新材料",
            "keywords": ["氮化硼", "导热"],
            "transfer_modes": ["技术咨询"],
            "asking_price": None,
            "published_on": date(2021, 1, 8),
            "institution": "测试大学",
        },
    ]


def _cell_text(value: Any, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return separator.join(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _excel_escape(value: Any) -> Any:
    # Excel writes characters XML cannot hold (control characters) as _xHHHH_.
    if not isinstance(value, str):
        return value
    return "".join(
        f"_x{ord(c):04X}_" if unicodedata.category(c) == "Cc" and c not in "\t\n\r" else c
        for c in value
    )


def write_rows(fmt: str, path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows (canonical field names) as a file in `fmt`; CSV/XLSX get Chinese headers."""
    fields = list(dict.fromkeys(name for row in rows for name in row))
    if fmt == "jsonl":
        # A blank first line: line numbers must still be file lines.
        lines = [""]
        for row in rows:
            record = {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
            lines.append(json.dumps(record, ensure_ascii=False))
        # Lone surrogates survive as \udXXX escapes, as a JSON producer would write them.
        path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="backslashreplace"))
    elif fmt == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow([ZH_COLUMNS.get(name, name) for name in fields])
        for row in rows:
            writer.writerow([_cell_text(row.get(name), "；") for name in fields])
        path.write_bytes(buffer.getvalue().encode("utf-8"))
    else:
        workbook = Workbook()
        sheet = workbook.active
        sheet.append([ZH_COLUMNS.get(name, name) for name in fields])
        sheet.append([])  # a blank row: skipped, but it still counts in sheet row numbers
        for row in rows:
            values = []
            for name in fields:
                value = row.get(name)
                values.append("、".join(value) if isinstance(value, list) else _excel_escape(value))
            sheet.append(values)
        workbook.save(path)
    return path


def patch_bytes(path: Path, marker: str, replacement: bytes) -> None:
    data = path.read_bytes()
    assert marker.encode() in data
    path.write_bytes(data.replace(marker.encode(), replacement))


# Where the second data row lands, as a user would count: JSONL has a blank first line; CSV
# has the header and a first row spanning two lines; XLSX has the header and a blank row.
SECOND_ROW_LINE = {"jsonl": 3, "csv": 4, "xlsx": 4}
FORMATS = ("jsonl", "csv", "xlsx")


def _wrong_type(fmt: str, row: dict[str, Any]) -> None:
    if fmt == "jsonl":
        row["asking_price"] = True  # a JSON boolean where a number belongs
    elif fmt == "xlsx":
        row["published_on"] = 45000  # a number cell where a date belongs
    else:
        row["asking_price"] = "一百万"  # CSV is all text: a text that is no number


# kind → (formats it applies to, mutation, expected field, fragment of the message)
BAD_ROW_KINDS: dict[str, tuple[tuple[str, ...], Any, str, str]] = {
    "missing title": (FORMATS, lambda f, r: r.update(title=""), "title", "必填"),
    "title key absent": (("jsonl",), lambda f, r: r.pop("title"), "title", "必填"),
    "empty text": (FORMATS, lambda f, r: r.update(abstract="  \n "), "abstract", "必填"),
    "wrong type": (
        FORMATS, _wrong_type, "asking_price|published_on", "类型错误|不是数字"
    ),
    "non-number price": (
        FORMATS, lambda f, r: r.update(asking_price="12万"), "asking_price", "不是数字"
    ),
    "negative price": (
        FORMATS, lambda f, r: r.update(asking_price=-3), "asking_price", "负数"
    ),
    "bad date": (
        FORMATS, lambda f, r: r.update(published_on="2024-02-30"), "published_on", "不是有效日期"
    ),
    "unknown enum": (
        FORMATS, lambda f, r: r.update(result_type="专著"), "result_type", "不是允许的取值"
    ),
    "unknown transfer mode": (
        FORMATS, lambda f, r: r.update(transfer_modes=["许可", "赠送"]), "transfer_modes",
        "不是允许的取值",
    ),
    "unknown industry": (
        FORMATS, lambda f, r: r.update(industry="房地产"), "industry", "不是允许的取值"
    ),
    "oversized title": (
        FORMATS, lambda f, r: r.update(title="长" * (TITLE_MAX + 1)), "title", "超过上限"
    ),
    "oversized text": (
        FORMATS, lambda f, r: r.update(abstract="字" * (TEXT_MAX + 1)), "abstract", "超过上限"
    ),
    "replacement character": (
        FORMATS, lambda f, r: r.update(abstract="等离子体\ufffd降解"), "abstract", r"U\+FFFD"
    ),
    "control character": (
        FORMATS, lambda f, r: r.update(title="等离子体\x07废水"), "title", "控制字符"
    ),
    "bidi override": (
        FORMATS, lambda f, r: r.update(title="废水\u202e处理"), "title", "双向文本"
    ),
    "lone surrogate": (
        ("jsonl",), lambda f, r: r.update(abstract="降解\ud800染料"), "abstract", "代理字符"
    ),
    "invalid UTF-8 bytes": (
        ("jsonl", "csv"), lambda f, r: r.update(abstract="降解BADBYTES染料"), "abstract", r"U\+FFFD"
    ),
}

BAD_ROW_CASES = [
    pytest.param(fmt, kind, id=f"{fmt}-{kind}")
    for kind, (formats, *_rest) in BAD_ROW_KINDS.items()
    for fmt in formats
]


def count(engine: Engine, model: type) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(("fmt", "kind"), BAD_ROW_CASES)
def test_one_bad_row_rejects_the_whole_file(
    sqlite_engine: Engine, tmp_path: Path, fmt: str, kind: str
) -> None:
    _formats, mutate, field, fragment = BAD_ROW_KINDS[kind]
    rows = good_results()
    mutate(fmt, rows[1])
    path = write_rows(fmt, tmp_path / f"results.{fmt}", rows)
    if kind == "invalid UTF-8 bytes":
        patch_bytes(path, "BADBYTES", b"\xe4\xb8\xff")

    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result")

    report = caught.value.report
    line = SECOND_ROW_LINE[fmt]
    assert [row.line for row in report.rejected] == [line]
    [error] = report.errors
    assert re.fullmatch(field, error.field), error
    assert re.search(fragment, error.message), error
    assert not report.written
    assert f"第 {line} 行" in report.summary() and "未导入任何数据" in report.summary()
    assert count(sqlite_engine, Result) == 0
    assert count(sqlite_engine, Organisation) == 0


def test_every_bad_row_is_listed_and_nothing_is_imported(engine: Engine, tmp_path: Path) -> None:
    rows = good_results() + good_results()
    for index, row in enumerate(rows):
        row["external_id"] = f"R-{index}"
    rows[0]["title"] = ""
    rows[2]["published_on"] = "昨天"
    rows[2]["maturity"] = "量产"  # a second error in the same row
    rows[4]["abstract"] = "字" * (TEXT_MAX + 5)
    path = write_rows("csv", tmp_path / "results.csv", rows)

    with session_scope(engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result")

    report = caught.value.report
    # Header on line 1; each first-of-pair row spans two lines (its abstract has a newline).
    assert [row.line for row in report.rejected] == [2, 5, 8]
    assert [(e.line, e.field) for e in report.errors] == [
        (2, "title"), (5, "maturity"), (5, "published_on"), (8, "abstract"),
    ]
    assert all(e.message and e.label for e in report.errors)
    assert "「昨天」" in report.summary()
    assert count(engine, Result) == 0 and count(engine, Organisation) == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_keep_valid_imports_good_rows_and_writes_rejects(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    rows = good_results()
    rows[1]["asking_price"] = "面议"
    path = write_rows(fmt, tmp_path / f"results.{fmt}", rows)

    with session_scope(engine) as session:
        report = import_file(session, path, "result", keep_valid=True)

    assert report.created == 2 and len(report.rejected) == 1
    assert count(engine, Result) == 2
    rejects = report.rejects_path
    assert rejects == tmp_path / f"results.rejects.{'jsonl' if fmt == 'jsonl' else 'csv'}"
    line = SECOND_ROW_LINE[fmt]
    if fmt == "jsonl":
        [record] = [json.loads(x) for x in rejects.read_text("utf-8").splitlines()]
        assert record["行号"] == line
        assert record["asking_price"] == "面议" and record["title"] == rows[1]["title"]
        assert "意向价格" in record["错误原因"][0] and "不是数字" in record["错误原因"][0]
    else:
        data = rejects.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")  # BOM, so Excel shows the Chinese
        [record] = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert record["行号"] == str(line)
        assert record["意向价格（万元）"] == "面议" and record["标题"] == rows[1]["title"]
        assert "不是数字" in record["错误原因"]
    assert str(rejects) in report.summary()


def test_rejects_file_keeps_unencodable_values_visible(sqlite_engine: Engine, tmp_path: Path):
    rows = good_results()
    rows[0]["abstract"] = "降解\ud800染料"
    path = write_rows("jsonl", tmp_path / "results.jsonl", rows)
    target = tmp_path / "out" / "bad.jsonl"
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result", keep_valid=True, rejects_path=target)
    assert report.rejects_path == target and report.created == 2
    [record] = [json.loads(x) for x in target.read_text("utf-8").splitlines()]
    assert record["abstract"] == "降解\ud800染料"


@pytest.mark.parametrize("fmt", FORMATS)
def test_reimporting_the_same_file_creates_nothing(
    engine: Engine, tmp_path: Path, fmt: str
) -> None:
    path = write_rows(fmt, tmp_path / f"results.{fmt}", good_results())
    with session_scope(engine) as session:
        first = import_file(session, path, "result")
    with session_scope(engine) as session:
        second = import_file(session, path, "result")

    assert first.created == 3 and first.organisations_created == ["测试大学"]
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    assert sorted(second.unchanged_ids) == sorted(first.created_ids)
    assert second.changed_ids == [] and second.organisations_created == []
    assert count(engine, Result) == 3 and count(engine, Organisation) == 1


def test_rows_without_external_id_are_matched_by_title_and_content(
    engine: Engine, tmp_path: Path
) -> None:
    rows = good_results()
    for row in rows:
        del row["external_id"]
    path = write_rows("csv", tmp_path / "results.csv", rows)
    with session_scope(engine) as session:
        import_file(session, path, "result")

    # Width, case and spacing of the title do not make a new record; a new price updates it.
    rows[2]["title"] = "  高导热 氮化硼复合材料 "
    rows[2]["asking_price"] = 30
    # Other text is another record: without an id there is nothing else to match it by.
    rows[1]["abstract"] += "已在示范线验证。"
    path = write_rows("csv", tmp_path / "results.csv", rows)
    with session_scope(engine) as session:
        report = import_file(session, path, "result")
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    assert count(engine, Result) == 4


def test_changed_row_updates_in_place_and_its_hash_changes(
    engine: Engine, tmp_path: Path
) -> None:
    rows = good_results()
    path = write_rows("jsonl", tmp_path / "results.jsonl", rows)
    with session_scope(engine) as session:
        first = import_file(session, path, "result")
        hashes_before = content_hashes(session, "result")
    ids = dict(zip([r["external_id"] for r in rows], first.created_ids, strict=True))

    rows[0]["abstract"] += "已在两家电池厂中试验证。"  # embedded text changes
    rows[1]["asking_price"] = 60  # only metadata changes
    path = write_rows("jsonl", tmp_path / "results.jsonl", rows)
    with session_scope(engine) as session:
        report = import_file(session, path, "result")
        hashes_after = content_hashes(session, "result")
        updated = session.get(Result, ids["R-001"])
        assert updated.abstract.endswith("中试验证。")

    assert report.created == 0
    assert sorted(report.updated_ids) == sorted([ids["R-001"], ids["R-002"]])
    assert report.unchanged_ids == [ids["R-003"]]
    assert hashes_after[ids["R-001"]] != hashes_before[ids["R-001"]]
    assert hashes_after[ids["R-002"]] == hashes_before[ids["R-002"]]
    assert count(engine, Result) == 3


def test_blank_status_never_reopens_a_closed_need(engine: Engine, tmp_path: Path) -> None:
    need = {
        "编号": "N-1",
        "需求名称": "印染废水深度脱色",
        "需求描述": "现有工艺出水色度偏高，需要低成本深度脱色方案。",
        "企业名称": "测试印染有限公司",
        "所在城市": "嘉兴市",
        "状态": "",
    }
    path = tmp_path / "needs.csv"
    path.write_text(",".join(need) + "\n" + ",".join(need.values()) + "\n", encoding="utf-8-sig")
    with session_scope(engine) as session:
        created = import_file(session, path, "need")
        session.get(Need, created.created_ids[0]).status = "closed"
    with session_scope(engine) as session:
        report = import_file(session, path, "need")
        assert report.unchanged == 1
        assert session.get(Need, created.created_ids[0]).status == "closed"
        organisation = session.scalars(select(Organisation)).one()
        assert (organisation.kind, organisation.city) == ("firm", "嘉兴")


def test_duplicate_ids_within_a_file_are_bad_rows(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = good_results()
    rows[2]["external_id"] = "R-001"
    path = write_rows("csv", tmp_path / "results.csv", rows)
    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result")
    [error] = caught.value.report.errors
    assert (error.line, error.field) == (5, "external_id") and "第 2 行" in error.message


def test_organisation_defaults_and_locking(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = good_results()
    rows[0]["institution"] = None
    rows[1]["institution"] = "别的大学"
    path = write_rows("jsonl", tmp_path / "results.jsonl", rows)

    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result")
    assert [(e.line, e.field) for e in caught.value.report.errors] == [(2, "institution")]

    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result", organisation="测试大学", lock_organisation=True)
    [error] = caught.value.report.errors
    assert (error.line, error.field) == (3, "institution") and "别的大学" in error.message

    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result", organisation="测试大学")
        owners = sorted(session.get(Result, i).organisation.name for i in report.created_ids)
    assert owners == ["别的大学", "测试大学", "测试大学"]


def test_values_are_normalised(sqlite_engine: Engine, tmp_path: Path) -> None:
    header = "id,title,text,type,maturity,field,keywords,transfer_modes,价格,date,单位,状态,备注"
    row = (
        "X1, 一种  芯片 封装方法 ,正文,发明,中试阶段,半导体,\"封装；芯片, 键合、封装\","
        "技术许可;转让,\"1,200\",2024年3月5日,测试大学,有效,内部备注"
    )
    path = tmp_path / "results.csv"
    path.write_bytes(("\ufeff" + header + "\n" + row + "\n").encode("utf-8"))
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result")
        result = session.get(Result, report.created_ids[0])
        assert result.title == "一种 芯片 封装方法"
        assert result.result_type == "发明专利" and result.maturity == "中试"
        assert result.industry == "集成电路"
        assert result.keyword_list == ["封装", "芯片", "键合"]
        assert result.transfer_mode_list == ["许可", "技术转让"]
        assert result.asking_price == 1200.0
        assert result.published_on == date(2024, 3, 5)
        assert result.status == "active"
    assert report.unknown_columns == ["备注"]
    assert "未识别的列（已忽略）：备注" in report.summary()


# What Excel on Chinese Windows saves as "CSV": GBK, or GB18030 for characters GBK lacks.
CHINESE_CSV = ("成果名称,成果简介,单位,发明人\n"
               "芯片封装,一种新的封装方法，键合良率提升,测试大学,张三;李四\n")
# 䶮 (U+4DAE) and 𠀀 (U+20000) are in GB18030 but not in GBK.
GB18030_ONLY = "成果名称,成果简介,单位\n刘䶮芯片封装,𠀀字摘要：一种新的封装方法,测试大学\n"


@pytest.mark.parametrize(("text", "encoding"), [
    (CHINESE_CSV, "gbk"), (CHINESE_CSV, "gb2312"), (CHINESE_CSV, "gb18030"),
    (GB18030_ONLY, "gb18030"),
])
def test_gb_encoded_csv_is_read(sqlite_engine: Engine, tmp_path: Path, text: str,
                                encoding: str) -> None:
    path = tmp_path / "results.csv"
    data = text.encode(encoding)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the case under test: not UTF-8 at all
    path.write_bytes(data)
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result")
        [result] = session.scalars(select(Result)).all()
        title, abstract = text.splitlines()[1].split(",")[:2]
        assert (result.title, result.abstract) == (title, abstract)
        assert result.organisation.name == "测试大学"
    assert report.created == 1


def test_gbk_file_with_a_damaged_byte_is_refused(sqlite_engine: Engine,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    # 0x81 0x20 is no GB18030 character: the file is neither UTF-8 nor readable GB.
    path.write_bytes(CHINESE_CSV.encode("gbk") + "另一项,内容\n".encode("gbk") + b"\x81\x20x\n")
    with session_scope(sqlite_engine) as session, pytest.raises(
            ImportFileError, match="UTF-8 或 GBK/GB18030"):
        import_file(session, path, "result")


def test_an_encoding_that_is_not_chinese_is_refused(sqlite_engine: Engine,
                                                    tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(bytes(range(0x80, 0x100)) * 40)
    with session_scope(sqlite_engine) as session, pytest.raises(ImportFileError,
                                                                match="另存为“CSV UTF-8"):
        import_file(session, path, "result")


BAD_FILES: dict[str, tuple[str, bytes | None, str]] = {
    "unknown extension": ("results.txt", b"title\nx\n", "不支持的文件类型"),
    "old excel": ("results.xls", b"\xd0\xcf\x11\xe0", "另存为 .xlsx"),
    "empty file": ("results.csv", b"", "空文件"),
    "blank lines only": ("results.jsonl", b"\n\n  \n", "文件为空"),
    "header only": ("results.csv", "标题,摘要\n".encode(), "没有数据行"),
    "no header": ("results.csv", "芯片封装,一种新的封装方法\n".encode(), "表头"),
    "required column missing": ("results.csv", "标题,单位\n芯片,测试大学\n".encode(), "摘要"),
    "two columns for one field": (
        "results.csv", "标题,title,摘要\na,b,c\n".encode(), "都对应字段「标题」"
    ),
    "not really xlsx": ("results.xlsx", b"this is not a zip file", "不是有效的 XLSX"),
    "utf-16": ("results.csv", "标题,摘要\n".encode("utf-16"), "UTF-16"),
    "missing file": ("nowhere.csv", None, "找不到文件"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_get_a_clear_error(sqlite_engine: Engine, tmp_path: Path, case: str) -> None:
    name, data, fragment = BAD_FILES[case]
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with session_scope(sqlite_engine) as session, pytest.raises(ImportFileError) as caught:
        import_file(session, path, "result")
    assert fragment in str(caught.value)


def test_bad_json_lines_are_bad_rows(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "needs.jsonl"
    good = {"title": "需求", "description": "描述", "firm": "测试公司"}
    path.write_text(
        json.dumps(good, ensure_ascii=False) + "\n{broken\n[1, 2]\n", encoding="utf-8"
    )
    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "need")
    errors = caught.value.report.errors
    assert [(e.line, e.field) for e in errors] == [(2, None), (3, None)]
    assert "JSON" in errors[0].message and "JSON 对象" in errors[1].message


def test_needs_import_checks_budget_and_city(sqlite_engine: Engine) -> None:
    records = [
        {"title": "需求一", "description": "描述", "firm": "测试公司", "budget_min": 50,
         "budget_max": 20},
        {"title": "需求二", "description": "描述", "firm": "测试公司", "firm_city": "北京"},
        {"title": "需求三", "description": "描述", "firm": "测试公司", "deadline": "2026/7/1",
         "cooperation_mode": "技术入股", "firm_tier": "专精特新"},
    ]
    with session_scope(sqlite_engine) as session:
        report = import_records(session, "need", records, keep_valid=True)
        need = session.get(Need, report.created_ids[0])
        assert (need.deadline, need.cooperation_mode) == (date(2026, 7, 1), "作价入股")
        assert need.organisation.tier == "专精特新"
    assert [(e.line, e.field) for e in report.errors] == [(1, "budget_max"), (2, "firm_city")]


def test_an_import_is_one_transaction(engine: Engine, tmp_path: Path) -> None:
    path = write_rows("csv", tmp_path / "results.csv", good_results())
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        import_file(session, path, "result")
        raise RuntimeError("the caller fails after the import")
    assert count(engine, Result) == 0 and count(engine, Organisation) == 0


# --- items ---------------------------------------------------------------------------------


def test_items_carry_text_facets_and_hashes(engine: Engine, tmp_path: Path) -> None:
    path = write_rows("xlsx", tmp_path / "results.xlsx", good_results())
    with session_scope(engine) as session:
        report = import_file(session, path, "result")
        first, second, third = report.created_ids
        session.get(Result, third).status = "withdrawn"
        session.get(Result, second).organisation.city = "苏州"  # all three share it

    with session_scope(engine) as session:
        items = load_items(session, "result")
        hashes = content_hashes(session, "result")
        everything = load_items(session, "result", matchable_only=False)
        only_first = load_items(session, "result", ids=[first, third, 999])

    assert [item.id for item in items] == [first, second]
    assert [item.id for item in everything] == [first, second, third]
    assert [item.id for item in only_first] == [first]
    item = items[0]
    assert item.side == "result" and item.title == "一种锂电池极片缺陷视觉检测方法"
    assert item.text.startswith("本成果提出")
    assert item.keywords == ("缺陷检测", "深度学习", "锂电池")
    assert item.facets == {
        "industry": "人工智能", "result_type": "发明专利", "maturity": "中试",
        "institution": "测试大学", "city": "苏州", "region": "苏州",
        "cooperation_mode": "技术转让;许可", "date": "2023-05-17", "asking_price": "120.5",
        "status": "active",
    }
    assert set(hashes) == {first, second}
    for each in items:
        assert hashes[each.id] == hashlib.sha256(each.full_text.encode("utf-8")).hexdigest()


def test_need_items(sqlite_engine: Engine) -> None:
    record = {
        "title": "冷链车厢温度均匀性",
        "description": "果蔬冷链运输中车厢前后温差大，需要优化气流组织。",
        "industry": "现代农业",
        "cooperation_mode": "委托开发",
        "region": "长三角",
        "deadline": "2027-01-31",
        "firm": "示例冷链公司",
        "firm_city": "嘉兴",
        "firm_tier": "高新技术企业",
    }
    with session_scope(sqlite_engine) as session:
        report = import_records(session, "need", [record], sample=True)
        [item] = load_items(session, "need", ids=report.created_ids)
    assert item.keywords == () and item.text == record["description"]
    assert item.facets == {
        "industry": "现代农业", "institution": "示例冷链公司", "city": "嘉兴",
        "tier": "高新技术企业", "region": "长三角", "cooperation_mode": "委托开发",
        "date": "2027-01-31", "status": "open", "sample": "1",
    }


# --- schema, docs, migrations -------------------------------------------------------------


def test_column_names_are_unambiguous_and_documented() -> None:
    doc = (REPO_ROOT / "docs" / "import-format.md").read_text(encoding="utf-8")
    for schema in (NEED_SCHEMA, RESULT_SCHEMA):
        seen: dict[str, str] = {}
        for spec in schema.fields:
            for alias in spec.aliases:
                assert schema.field_for_column(alias) is spec
                assert seen.setdefault(alias, spec.name) == spec.name, alias
                assert f"`{alias}`" in doc, f"{schema.side}.{spec.name}: {alias} not documented"


def test_migrations_run_on_both_databases(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)  # a second upgrade is a no-op
    engine = create_engine_for(db_url)
    try:
        head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
        assert current_revision(engine) == head
        assert {"organisations", "needs", "results", "alembic_version"} <= set(
            inspect(engine).get_table_names()
        )
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        # Foreign keys hold on both databases.
        with pytest.raises(IntegrityError), session_scope(engine) as session:
            orphan = Need(title="孤儿", description="无主", organisation_id=999, content_hash="x")
            session.add(orphan)
    finally:
        engine.dispose()


def test_upgrade_accepts_an_engine(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nested' / 'db.sqlite'}")
    try:
        upgrade(engine)
        assert {"organisations", "needs", "results"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_edits_outside_the_importer_keep_hashes_right(sqlite_engine: Engine) -> None:
    record = {"title": "需求", "description": "原来的描述", "firm": "测试公司"}
    with session_scope(sqlite_engine) as session:
        [need_id] = import_records(session, "need", [record]).created_ids
        before = session.get(Need, need_id).content_hash
    with session_scope(sqlite_engine) as session:
        session.get(Need, need_id).description = "修改后的描述"  # as the site would
    with session_scope(sqlite_engine) as session:
        [item] = load_items(session, "need")
        after = content_hashes(session, "need")[need_id]
    assert after != before
    assert after == hashlib.sha256(item.full_text.encode("utf-8")).hexdigest()


def test_numbers_beyond_float_range_are_row_errors(sqlite_engine: Engine) -> None:
    record = {"title": "需求", "description": "描述", "firm": "测试公司", "budget_min": 10**400}
    with pytest.raises(RowsRejected) as rejected, session_scope(sqlite_engine) as session:
        import_records(session, "need", [record])
    [error] = rejected.value.report.errors
    assert error.field == "budget_min" and "超过上限" in error.message
