"""What a file costs the importer is bounded by what it really holds.

What the tests prove:
- an .xlsx whose sheet declares `<dimension ref="A1:XFD60000"/>` around a header and one row
  at row 60,000 is read cell by real cell (a handful of cells, not a billion empty ones), and
  its row is numbered 60,000; rows beyond 1,048,576, columns beyond XFD and rows of more
  than 16,384 cells are refused before openpyxl parses the sheet, with a Chinese message;
- a rejected file keeps the first REJECTED_SHOWN_MAX bad rows in full and counts every bad
  row by reason, in memory that does not grow with the file; a keep_valid import still
  writes every rejected row to its rejects file; `max_rows` refuses a file with more good
  rows as soon as it has them;
- the files under tests/data/hostile/ are refused, or read, as each of these says;
- a CSV quote left open (to the end of the file, or closed further on and followed by text,
  or swallowing lines that are whole rows by themselves) is a bad row at the line it opens
  on, and nothing is imported; a quoted abstract that really spans lines, commas and all,
  still imports.
"""

from __future__ import annotations

import csv
import io
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from corpora.db import session_scope
from corpora.importer import (
    EXCEL_MAX_ROWS,
    REJECTED_SHOWN_MAX,
    ImportFileError,
    RowsRejected,
    import_file,
    xlsx_reader,
)
from corpora.models import Result

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
HEADER = ("成果名称", "摘要", "单位名称")


def _cell(reference: str | None, text: str) -> str:
    at = f' r="{reference}"' if reference else ""
    return f'<c{at} t="inlineStr"><is><t>{text}</t></is></c>'


def _row(number: int | None, cells: list[tuple[str | None, str]]) -> str:
    at = f' r="{number}"' if number is not None else ""
    return f"<row{at}>" + "".join(_cell(ref, text) for ref, text in cells) + "</row>"


def _header_row() -> str:
    return _row(1, [(f"{column}1", text) for column, text in zip("ABC", HEADER, strict=True)])


def _xlsx(rows: str, dimension: str | None = None) -> bytes:
    """A minimal workbook written part by part, its first sheet's rows as given."""
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">{declared}'
             f"<sheetData>{rows}</sheetData></worksheet>")
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.'
            'org/package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
            f'"{RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{RELS}">'
            '<sheets><sheet name="成果" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
            f'"{RELS}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": sheet,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text.encode("utf-8"))
    return buffer.getvalue()


@pytest.fixture
def cells_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many cell values the XLSX reader handled; past 10,000 the test stops at once
    (the dense reading of a declared A1:XFD60000 would handle a billion)."""
    count = [0]
    original = xlsx_reader._xlsx_cell

    def counted(value: Any) -> Any:
        count[0] += 1
        if count[0] > 10_000:
            raise AssertionError("the reader visits cells the file does not hold")
        return original(value)

    monkeypatch.setattr(xlsx_reader, "_xlsx_cell", counted)
    return count


def _results(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(Result)) or 0


# --- fault 1: a sheet is read by the cells it holds -------------------------------------------


def test_a_declared_dimension_is_not_read_cell_by_cell(sqlite_engine: Engine, tmp_path: Path,
                                                        cells_read: list[int]) -> None:
    path = tmp_path / "成果.xlsx"
    far_row = _row(60_000, [("A60000", "稀疏的成果"), ("B60000", "第六万行的摘要"),
                            ("C60000", "示例理工大学")])
    path.write_bytes(_xlsx(_header_row() + far_row, dimension="A1:XFD60000"))
    assert path.stat().st_size < 2048  # the file of the report: 1.6 KB
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result")
    assert report.created == 1 and report.total_rows == 1
    assert cells_read[0] == 6  # the header's three cells and the row's three


def test_a_far_row_keeps_its_line_number(sqlite_engine: Engine, tmp_path: Path,
                                         cells_read: list[int]) -> None:
    path = tmp_path / "成果.xlsx"
    bad = _row(60_000, [("A60000", "没有摘要的成果"), ("C60000", "示例理工大学")])
    path.write_bytes(_xlsx(_header_row() + bad, dimension="A1:XFD60000"))
    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result")
    assert [(e.line, e.field) for e in caught.value.report.errors] == [(60_000, "abstract")]


BEYOND_EXCEL = {
    "a row number past 1,048,576": (
        _row(EXCEL_MAX_ROWS + 1, [(None, "越界的成果"), (None, "摘要"), (None, "示例理工大学")]),
        "1,048,576 行"),
    "a cell reference past row 1,048,576": (
        _row(None, [(f"A{EXCEL_MAX_ROWS + 1}", "越界的成果")]), "1,048,576 行"),
    "a column past XFD": (_row(2, [("A2", "越界的成果"), ("XFE2", "摘要")]), "16,384 列"),
    "a four-letter column": (_row(2, [("AAAA2", "越界的成果")]), "16,384 列"),
    "a row of more than 16,384 cells": (_row(2, [(None, "")] * 16_385), "16,384 列"),
    "a row number that is no number": ('<row r="x1">' + _cell(None, "成果") + "</row>", "无效"),
}


@pytest.mark.parametrize("case", BEYOND_EXCEL)
def test_rows_and_columns_beyond_excel_are_refused(sqlite_engine: Engine, tmp_path: Path,
                                                   cells_read: list[int], case: str) -> None:
    rows, fragment = BEYOND_EXCEL[case]
    path = tmp_path / "成果.xlsx"
    path.write_bytes(_xlsx(_header_row() + rows))
    with session_scope(sqlite_engine) as session, pytest.raises(ImportFileError) as caught:
        import_file(session, path, "result")
    message = str(caught.value)
    assert "《成果.xlsx》" in message and "已拒绝" in message, message
    assert fragment in message, message
    assert cells_read[0] == 0  # refused before openpyxl parsed the sheet
    assert _results(sqlite_engine) == 0


def test_the_last_excel_row_and_column_are_accepted(sqlite_engine: Engine, tmp_path: Path,
                                                     cells_read: list[int]) -> None:
    path = tmp_path / "成果.xlsx"
    last = _row(EXCEL_MAX_ROWS, [(f"A{EXCEL_MAX_ROWS}", "最后一行的成果"),
                                 (f"B{EXCEL_MAX_ROWS}", "摘要"),
                                 (f"C{EXCEL_MAX_ROWS}", "示例理工大学"),
                                 (f"XFD{EXCEL_MAX_ROWS}", "最后一列")])
    path.write_bytes(_xlsx(_header_row() + last))
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result")
    assert report.created == 1 and report.unknown_columns == ["(第16384列)（无表头）"]


# --- fault 2: a rejected file is reported in bounded memory ----------------------------------


def _empty_abstracts(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "空摘要.csv"
    path.write_bytes(("成果名称,摘要,单位名称\n" + "成果,,示例理工大学\n" * rows).encode())
    return path


def test_a_rejected_file_keeps_the_first_rows_and_counts_the_rest(sqlite_engine: Engine,
                                                                 tmp_path: Path) -> None:
    rows = 50_000
    path = _empty_abstracts(tmp_path, rows)
    tracemalloc.start()
    try:
        with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
            import_file(session, path, "result")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    report = caught.value.report
    assert report.rejected_total == rows == report.total_rows
    assert len(report.rejected) == REJECTED_SHOWN_MAX
    assert [row.line for row in report.rejected] == list(range(2, 2 + REJECTED_SHOWN_MAX))
    assert dict(report.rejected_by_reason) == {"摘要：必填，不能为空": rows}
    assert report.hidden_by_reason() == [("摘要：必填，不能为空", rows - REJECTED_SHOWN_MAX)]
    summary = report.summary()
    assert f"拒绝 {rows} 行" in summary and "另有 49,800 行未逐行列出" in summary
    # Every row held as a SourceRow and a RejectedRow took 60 MB; streamed, about the text.
    assert peak < 20 * 1024 * 1024, f"{peak / 1e6:.0f} MB"
    assert _results(sqlite_engine) == 0


def test_reasons_leave_out_the_values_that_differ(sqlite_engine: Engine,
                                                  tmp_path: Path) -> None:
    path = tmp_path / "类型.csv"
    rows = "".join(f"成果{n},摘要{n},类型{n}\n" for n in range(300))
    path.write_bytes(("成果名称,摘要,成果类型\n" + rows).encode())
    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result", organisation="示例理工大学")
    [(reason, count)] = caught.value.report.rejected_by_reason.items()
    assert count == 300 and reason.startswith("成果类型：不是允许的取值；可选：发明专利")


def test_keep_valid_still_writes_every_rejected_row(sqlite_engine: Engine,
                                                    tmp_path: Path) -> None:
    rows = REJECTED_SHOWN_MAX * 3
    path = tmp_path / "混合.csv"
    good = "好成果{n},一种涂层工艺第{n}号,示例理工大学\n"
    body = "".join(good.format(n=n) + "坏成果,,示例理工大学\n" for n in range(rows))
    path.write_bytes(("成果名称,摘要,单位名称\n" + body).encode())
    rejects = tmp_path / "rejects.csv"
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result", keep_valid=True, rejects_path=rejects)
    assert report.created == rows and report.rejected_total == rows == len(report.rejected)
    written = list(csv.DictReader(io.StringIO(rejects.read_text(encoding="utf-8-sig"))))
    assert len(written) == rows and {row["成果名称"] for row in written} == {"坏成果"}


def test_max_rows_refuses_a_file_with_more_good_rows(sqlite_engine: Engine,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "多.csv"
    path.write_bytes(("成果名称,摘要\n" + "".join(f"成果{n},摘要{n}\n" for n in range(50))
                      ).encode())
    with session_scope(sqlite_engine) as session, pytest.raises(ImportFileError) as caught:
        import_file(session, path, "result", organisation="示例理工大学", max_rows=20)
    assert "超过单次导入的上限 20 行" in str(caught.value)
    with session_scope(sqlite_engine) as session:
        assert import_file(session, path, "result", organisation="示例理工大学",
                           max_rows=50).created == 50


# --- fault 5: an unclosed CSV quote is a bad row ----------------------------------------------


UNCLOSED = {
    "open to the end of the file": (
        "成果名称,摘要\n甲成果,\"第一行摘要，引号没有闭合\n乙成果,第二条摘要\n丙成果,第三条摘要\n",
        2, "引号没有闭合"),
    "closed by the next quoted cell": (
        "成果名称,摘要\n甲成果,\"第一行摘要，引号没有闭合\n乙成果,\"第二条摘要\"\n丙成果,第三条摘要\n",
        2, "引号没有闭合"),
    "swallowing whole rows": (
        "成果名称,摘要,成果类型\n甲成果,\"第一行摘要，引号没有闭合,论文\n乙成果,第二条摘要,论文\n"
        "丙成果,屏幕 6\",论文\n丁成果,第四条摘要,论文\n",
        2, "第 3 行本身就是完整的一行数据"),
}


@pytest.mark.parametrize("case", UNCLOSED)
def test_an_unclosed_quote_is_a_bad_row(sqlite_engine: Engine, tmp_path: Path,
                                        case: str) -> None:
    text, line, fragment = UNCLOSED[case]
    path = tmp_path / "引号.csv"
    path.write_bytes(text.encode())
    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result", organisation="示例理工大学")
    errors = caught.value.report.errors
    assert [(e.line, e.field) for e in errors][:1] == [(line, None)], errors
    assert fragment in errors[0].message
    assert _results(sqlite_engine) == 0


def test_keep_valid_puts_the_unclosed_record_in_the_rejects_file(sqlite_engine: Engine,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "引号.csv"
    path.write_bytes("成果名称,摘要\n好成果,好摘要\n甲成果,\"没有闭合\n乙成果,乙摘要\n".encode())
    rejects = tmp_path / "rejects.csv"
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result", organisation="示例理工大学",
                             keep_valid=True, rejects_path=rejects)
    assert report.created == 1 and [row.line for row in report.rejected] == [3]
    [written] = csv.DictReader(io.StringIO(rejects.read_text(encoding="utf-8-sig")))
    assert written["原始内容"] == "甲成果,\"没有闭合\n乙成果,乙摘要\n"
    assert "引号没有闭合" in written["错误原因"]


LEGITIMATE = {
    "two columns, commas on every line": (
        "成果名称,摘要\n甲成果,\"第一段, 含逗号\n第二段, 也含逗号\n第三段。\"\n乙成果,乙摘要\n",
        "第一段, 含逗号\n第二段, 也含逗号\n第三段。"),
    "three columns, a comma on a middle line": (
        "成果名称,摘要,成果类型\n甲成果,\"第一步，准备\n第二步, 加工\n第三步\",论文\n"
        "乙成果,乙摘要,论文\n",
        "第一步，准备\n第二步, 加工\n第三步"),
    "a quoted line break, CRLF file": (
        "成果名称,摘要\r\n甲成果,\"上一行\r\n下一行\"\r\n乙成果,乙摘要\r\n", "上一行\n下一行"),
    "doubled quotes inside": (
        "成果名称,摘要\n甲成果,\"所谓\"\"双引号\"\"，\n换行\"\n乙成果,乙摘要\n",
        "所谓\"双引号\"，\n换行"),
}


@pytest.mark.parametrize("case", LEGITIMATE)
def test_a_quoted_abstract_that_spans_lines_imports(sqlite_engine: Engine, tmp_path: Path,
                                                    case: str) -> None:
    text, abstract = LEGITIMATE[case]
    path = tmp_path / "多行.csv"
    path.write_bytes(text.encode())
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result", organisation="示例理工大学")
    assert report.created == 2
    with session_scope(sqlite_engine) as session:
        assert session.scalar(select(Result.abstract).where(Result.title == "甲成果")) == abstract


# --- the committed hostile files (seeds for the fuzz run, files for load tests) --------------


HOSTILE_DIR = Path(__file__).resolve().parent.parent / "data" / "hostile"
HOSTILE_FILES = {
    "declared-dimension.xlsx": (None, ""),  # read by its cells: one result
    "row-beyond-excel.xlsx": (ImportFileError, "1,048,576 行"),
    "column-beyond-excel.xlsx": (ImportFileError, "16,384 列"),
    "unclosed-quote.csv": (RowsRejected, "引号没有闭合"),
    "unclosed-quote-closed-later.csv": (RowsRejected, "引号没有闭合"),
    "unclosed-quote-swallowing-rows.csv": (RowsRejected, "引号可能没有闭合"),
}


def test_every_hostile_file_is_listed() -> None:
    assert sorted(path.name for path in HOSTILE_DIR.iterdir()) == sorted(HOSTILE_FILES)


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_committed_hostile_files(sqlite_engine: Engine, tmp_path: Path, name: str,
                                 cells_read: list[int]) -> None:
    error, fragment = HOSTILE_FILES[name]
    path = tmp_path / name
    path.write_bytes((HOSTILE_DIR / name).read_bytes())
    with session_scope(sqlite_engine) as session:
        if error is None:
            assert import_file(session, path, "result").created == 1
            return
        with pytest.raises(error) as caught:
            import_file(session, path, "result", organisation="示例理工大学")
    assert fragment in str(caught.value)
    assert _results(sqlite_engine) == 0
