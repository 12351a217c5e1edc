"""The upload page and `POST /api/v1/results/import` answer any file in bounded size.

What the tests prove:
- a file of thousands of bad rows gets a page (and an API answer) with the first
  REJECTED_SHOWN_MAX bad rows in full and the rest counted by reason, not one line per row;
- the API imports an office's file exactly as the page does (same checks, same counts, same
  audit), answers a rejected file with `rejected.shown / total / by_reason`, and names the
  field `file` for a missing file, a wrong type or a file refused as a whole; other accounts
  get 403, no account 401; a rejected upload leaves the database as it was;
- more good rows than UPLOAD_MAX_ROWS are refused as a whole, on the page and the API;
- a CSV with an unclosed quote is refused at its line through the page, nothing imported.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from corpora.importer import REJECTED_SHOWN_MAX
from corpora.models import AuditEntry, Result
from tests.support.api import API, bearer, error_of
from tests.support.web import Site
from web.database import sessions

IMPORT = f"{API}/results/import"
BAD_ROWS = 5_000


def _count(site: Site, model: Any = Result) -> int:
    with site.app.app_context(), sessions()() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


def _files(data: bytes, name: str = "成果.csv") -> dict[str, Any]:
    return {"file": (io.BytesIO(data), name)}


def _empty_abstracts(rows: int = BAD_ROWS) -> bytes:
    return ("成果名称,摘要\n" + "没有摘要的成果,\n" * rows).encode()


def _good(rows: int = 3) -> bytes:
    return ("成果名称,摘要,成果类型\n" + "".join(
        f"批量成果第{n}号,一种批量导入的涂层工艺第{n}号,发明专利\n" for n in range(rows))).encode()


def test_the_page_lists_the_first_rows_and_counts_the_rest(sqlite_site: Site) -> None:
    before = _count(sqlite_site)
    response = sqlite_site.client("office_u1").post(
        "/results/upload", data=_files(_empty_abstracts()), content_type="multipart/form-data")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f"有 {BAD_ROWS:,} 行不合格" in page
    table = page[page.index('id="rejected-rows"'):page.index("</table>", page.index(
        'id="rejected-rows"'))]
    assert table.count("<tr><td>第 ") == REJECTED_SHOWN_MAX
    more = re.search(r'id="rejected-more">([^<]*)<', page).group(1)
    hidden = BAD_ROWS - REJECTED_SHOWN_MAX
    assert f"另有 {hidden:,} 行未逐行列出" in more and f"摘要：必填，不能为空 {hidden:,} 行" in more
    # One line per row was 80 bytes of page a row: 5,000 rows, 400 KB; 600,000 rows, 46 MB.
    assert len(page) < 100_000
    assert _count(sqlite_site) == before


def test_the_api_imports_like_the_page(sqlite_site: Site) -> None:
    headers = bearer(sqlite_site, "office_u1")
    client = sqlite_site.app.test_client()
    before = _count(sqlite_site)
    response = client.post(IMPORT, data=_files(_good()), headers=headers,
                           content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"created": 3, "updated": 0, "unchanged": 0, "total_rows": 3,
                                   "unknown_columns": []}
    assert _count(sqlite_site) == before + 3
    again = client.post(IMPORT, data=_files(_good()), headers=headers,
                        content_type="multipart/form-data")
    assert again.get_json()["unchanged"] == 3
    with sqlite_site.app.app_context(), sessions()() as db:
        details = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "upload"))
        assert sum('"via": "api"' in detail for detail in details) == 2
        owners = {result.organisation.name for result in db.scalars(
            select(Result).where(Result.title.startswith("批量成果")))}
    assert owners == {"示例理工大学"}


def test_the_api_reports_rejected_rows_in_bounded_form(sqlite_site: Site) -> None:
    before = _count(sqlite_site)
    data = ("成果名称,摘要,成果类型\n" + "没有摘要的成果,,发明专利\n" * 300
            + "类型不对的成果,摘要,不存在的类型\n" * 10).encode()
    response = sqlite_site.app.test_client().post(
        IMPORT, data=_files(data), headers=bearer(sqlite_site, "office_u1"),
        content_type="multipart/form-data")
    error_of(response, 400)
    rejected = response.get_json()["rejected"]
    assert rejected["total"] == 310
    assert len(rejected["shown"]) == REJECTED_SHOWN_MAX
    assert rejected["shown"][0] == {"line": 2, "row": "《没有摘要的成果》", "field": "abstract",
                                    "message": "必填，不能为空"}
    assert rejected["by_reason"]["摘要：必填，不能为空"] == 300
    [(reason, count)] = [(r, n) for r, n in rejected["by_reason"].items() if "成果类型" in r]
    assert count == 10 and "「" not in reason
    assert _count(sqlite_site) == before


@pytest.mark.parametrize("files, fragment", [
    ({}, "请选择"),
    (_files(b"a,b\n", "results.xls"), "不支持的文件类型"),
    (_files(b"\xef\xbb\xbf", "空.csv"), "文件为空"),
    (_files(b"foo,bar\n1,2\n", "表头.csv"), "表头"),
])
def test_the_api_names_the_file_field(sqlite_site: Site, files: dict[str, Any],
                                      fragment: str) -> None:
    response = sqlite_site.app.test_client().post(
        IMPORT, data=files, headers=bearer(sqlite_site, "office_u1"),
        content_type="multipart/form-data")
    error = error_of(response, 400)
    assert fragment in error["message"] and fragment in error["fields"]["file"], error


def test_the_api_is_for_offices_only(sqlite_site: Site) -> None:
    client = sqlite_site.app.test_client()
    for username in ("firm_a", "officer", "admin"):
        response = client.post(IMPORT, data=_files(_good()), headers=bearer(sqlite_site, username),
                               content_type="multipart/form-data")
        error_of(response, 403)
    error_of(client.post(IMPORT, data=_files(_good()), content_type="multipart/form-data"), 401)


def test_too_many_good_rows_are_refused(sqlite_site: Site,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("web.results.UPLOAD_MAX_ROWS", 5)
    before = _count(sqlite_site)
    page = sqlite_site.client("office_u1").post(
        "/results/upload", data=_files(_good(6)), content_type="multipart/form-data")
    assert page.status_code == 400 and "超过单次导入的上限 5 行" in page.get_data(as_text=True)
    response = sqlite_site.app.test_client().post(
        IMPORT, data=_files(_good(6)), headers=bearer(sqlite_site, "office_u1"),
        content_type="multipart/form-data")
    assert "上限 5 行" in error_of(response, 400)["fields"]["file"]
    assert _count(sqlite_site) == before


def test_an_unclosed_quote_is_refused_at_its_line(sqlite_site: Site) -> None:
    before = _count(sqlite_site)
    data = ("成果名称,摘要\n甲成果,\"第一行摘要，引号没有闭合\n"
            "乙成果,第二条摘要\n丙成果,第三条摘要\n")
    response = sqlite_site.client("office_u1").post(
        "/results/upload", data=_files(data.encode()), content_type="multipart/form-data")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "有 1 行不合格" in page and "<td>第 2 行</td>" in page and "引号没有闭合" in page
    assert "新增" not in page
    assert _count(sqlite_site) == before


def test_an_import_that_loses_a_race_is_a_409_and_keeps_nothing(
        sqlite_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two uploads of the same 编号 at once: the second meets the first's row on the unique
    (organisation, 编号) constraint when it writes. That is a conflict to retry (409), with
    nothing of the file kept, never a 500. The race is played by the audit write, which runs
    after the importer's rows and before the commit, raising what the database would."""
    import web.results as results

    def lost_race(*args: object, **kwargs: object) -> None:
        raise IntegrityError("INSERT INTO results …", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(results, "record", lost_race)
    before = _count(sqlite_site)
    client = sqlite_site.app.test_client()
    response = client.post(IMPORT, data=_files(_good()), headers=bearer(sqlite_site, "office_u1"),
                           content_type="multipart/form-data")
    assert "相同编号" in error_of(response, 409)["message"]
    page = sqlite_site.client("office_u1").post("/results/upload", data=_files(_good()),
                                                content_type="multipart/form-data")
    assert page.status_code == 409 and "请稍后重新上传" in page.get_data(as_text=True)
    assert _count(sqlite_site) == before
