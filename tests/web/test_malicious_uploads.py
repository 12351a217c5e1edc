"""Hostile files through the upload page and the importer.

What the tests prove:
- a CSV whose titles are spreadsheet formulas (`=cmd|' /C calc'!A0`, `+…`, `-…`, `@…`) is
  stored as text, and when an officer exports a shortlist holding those results, every such
  cell starts with `'` in the CSV and the XLSX (and the XLSX has no formula cell at all);
- a 200 MB request is refused with 413 by a live server before its body is sent: the answer
  comes back while the client has written 64 KB, and the server allocates nothing near it;
- an .xlsx that is a zip bomb (by size or by ratio), a renamed .xlsm (a VBA project, an
  ActiveX control or a macro content type), one with external links or data connections,
  or one with XML entity declarations is refused before openpyxl parses it, with a Chinese
  message saying why and what to do, and the database is unchanged; through the upload
  page the office sees that message.
"""

from __future__ import annotations

import csv
import io
import re
import socket
import threading
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import Engine, func, select
from werkzeug.serving import make_server

from corpora.db import session_scope
from corpora.importer import ImportFileError, RowsRejected, import_file
from corpora.models import Result, Shortlist
from tests.support.web import PASSWORD, Site, make_site
from web.database import sessions

FORMULAS = ["=cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
            "=HYPERLINK(\"http://example.invalid\",\"点击\")"]


def _count(site: Site, model: Any = Result) -> int:
    with site.app.app_context(), sessions()() as db:
        return db.scalar(select(func.count()).select_from(model))


def _upload(client: Any, name: str, data: bytes) -> Any:
    return client.post("/results/upload", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


# --- formula injection: uploaded as text, exported as text ---------------------------------


def test_formula_titles_are_exported_as_text(sqlite_site: Site) -> None:
    site = sqlite_site
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["成果名称", "摘要", "成果类型", "专利号"])
    for number, title in enumerate(FORMULAS):
        writer.writerow([title, f"恶意公式标题测试第 {number} 条：机器人视觉定位", "发明专利",
                         "=1+1" if number == 0 else ""])
    office = site.client("office_u1")
    uploaded = _upload(office, "公式.csv", buffer.getvalue().encode("utf-8"))
    assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
    with site.app.app_context(), sessions()() as db:
        ids = {r.title: r.id for r in db.scalars(select(Result).where(Result.title.in_(FORMULAS)))}
    assert set(ids) == set(FORMULAS)  # stored exactly as typed: text, never evaluated

    officer = site.client("officer")
    created = officer.post("/shortlists/", data={"title": "公式注入测试"})
    assert created.status_code == 302
    shortlist_id = int(created.headers["Location"].rstrip("/").split("/")[-1])
    for title in FORMULAS:
        added = officer.post(f"/shortlists/{shortlist_id}/lots",
                             data={"result_id": str(ids[title])})
        assert added.status_code == 302, added.get_data(as_text=True)

    exported = officer.get(f"/shortlists/{shortlist_id}/export.csv")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.get_data().decode("utf-8-sig"))))
    titles = [row[1] for row in rows[1:]]
    assert titles == ["'" + title for title in FORMULAS]
    assert rows[1][4] == "'=1+1"  # the patent number cell too

    exported = officer.get(f"/shortlists/{shortlist_id}/export.xlsx")
    assert exported.status_code == 200
    sheet = load_workbook(io.BytesIO(exported.get_data())).active
    assert [row[1].value for row in sheet.iter_rows(min_row=2)] == \
        ["'" + title for title in FORMULAS]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    with site.app.app_context(), sessions()() as db:
        assert db.get(Shortlist, shortlist_id) is not None


# --- a 200 MB body is refused before it is sent ---------------------------------------------


@contextmanager
def _serve(app: Any) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return _read_response(sock)


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    while match and len(body) < int(match.group(1)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _cookie(response: bytes) -> str:
    return "; ".join(m.decode() for m in re.findall(rb"(?im)^set-cookie:\s*([^;\r\n]+)",
                                                       response))


def test_a_200_mb_upload_is_refused_before_its_body_is_sent(tmp_path: Path) -> None:
    # The real configuration: CSRF on, so the form needs a token and a session first.
    site = make_site(f"sqlite:///{tmp_path / 'big.sqlite'}", tmp_path / "home")
    try:
        with _serve(site.app) as port:
            page = _exchange(port, b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
            cookie = _cookie(page)
            form = f"username=office_u1&password={PASSWORD}&csrf_token={token}".encode()
            login = _exchange(port, (
                "POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                f"Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(form)}\r\n\r\n").encode() + form)
            assert login.startswith(b"HTTP/1.1 302"), login[:300]
            cookie = _cookie(login) or cookie
            before = _count(site)

            declared = 200 * 1024 * 1024
            boundary = "bigBOUNDARY"
            head = (f"POST /results/upload HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n"
                    f"X-CSRFToken: {token}\r\nContent-Length: {declared}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
            first_part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                          f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
            tracemalloc.start()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    sock.sendall(head + first_part)
                    sent = len(first_part)
                    chunk = b"a" * 65536
                    sock.sendall(chunk)  # 64 KB of the 200 MB, then wait for the answer
                    sent += len(chunk)
                    answer = _read_response(sock)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        status = answer.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.1 413"), answer[:500]
        assert "过大" in answer.decode("utf-8", errors="replace")
        assert sent < declared / 1000
        # Far below the 200 MB declared (werkzeug's dev server alone may take a 10 MB read
        # buffer when it drains what the client sent before closing).
        assert peak < 50 * 1024 * 1024, f"server allocated {peak / 1e6:.0f} MB"
        assert _count(site) == before
    finally:
        site.app.extensions["matcher.engine"].dispose()


# --- hostile .xlsx files ----------------------------------------------------------------------


def _plain_xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["成果名称", "摘要", "单位名称"])
    sheet.append(["氢燃料电池双极板", "一种金属双极板的涂层工艺", "示例理工大学"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _rezip(change: Callable[[dict[str, bytes]], None],
           extra: Callable[[zipfile.ZipFile], None] | None = None) -> bytes:
    """The plain workbook with its parts changed by `change` (name → bytes), plus whatever
    `extra` streams into the new zip."""
    with zipfile.ZipFile(io.BytesIO(_plain_xlsx())) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    change(parts)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
        if extra is not None:
            extra(target)
    return buffer.getvalue()


def _zeros(name: str, megabytes: int) -> Callable[[zipfile.ZipFile], None]:
    def write(target: zipfile.ZipFile) -> None:
        block = bytes(1024 * 1024)
        with target.open(name, "w", force_zip64=True) as handle:
            for _ in range(megabytes):
                handle.write(block)
    return write


def _with(name: str, data: bytes) -> Callable[[dict[str, bytes]], None]:
    return lambda parts: parts.update({name: data})


def _content_type(fragment: str) -> Callable[[dict[str, bytes]], None]:
    def change(parts: dict[str, bytes]) -> None:
        parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
            b"</Types>", fragment.encode() + b"</Types>")
    return change


def _external_link(parts: dict[str, bytes]) -> None:
    parts["xl/externalLinks/externalLink1.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8"?><externalLink xmlns="http://schemas.'
        b'openxmlformats.org/spreadsheetml/2006/main"><ddeLink ddeService="cmd" '
        b'ddeTopic="/C calc"/></externalLink>')
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>",
        b'<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/'
        b'2006/relationships/externalLink" Target="externalLinks/externalLink1.xml"/>'
        b"</Relationships>")


def _entities(parts: dict[str, bytes]) -> None:
    laughs = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    parts["xl/sharedStrings.xml"] = b'<?xml version="1.0"?>' + laughs + (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        b'uniqueCount="1"><si><t>&lol2;</t></si></sst>')


def _comment_hides_doctype(parts: dict[str, bytes]) -> None:
    parts["xl/workbook.xml"] = (b'<?xml version="1.0"?><!-- <a> -->' + b" " * 70_000 +
                                b"<!DOCTYPE x>" + parts["xl/workbook.xml"])


HOSTILE_XLSX: dict[str, tuple[Callable[[], bytes], str]] = {
    "zip bomb by size": (lambda: _rezip(lambda p: None, _zeros("xl/media/fill.bin", 101)),
                         "压缩炸弹"),
    "zip bomb by ratio": (lambda: _rezip(lambda p: None, _zeros("xl/media/fill.bin", 8)),
                          "压缩比异常"),
    "vba project": (lambda: _rezip(_with("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0" * 64)), "宏"),
    "macro content type": (lambda: _rezip(_content_type(
        '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.ms-excel.sheet.macroEnabled.main+xml"/>')), "宏"),
    "activex control": (lambda: _rezip(_with("xl/activeX/activeX1.bin", b"\x00" * 64)), "ActiveX"),
    "external link": (lambda: _rezip(_external_link), "外部链接"),
    "data connection": (lambda: _rezip(_with(
        "xl/connections.xml", b'<?xml version="1.0"?><connections xmlns="http://schemas.'
        b'openxmlformats.org/spreadsheetml/2006/main"><connection id="1" name="q" type="4">'
        b'<webPr url="http://example.invalid/x"/></connection></connections>')), "数据连接"),
    "entity expansion": (lambda: _rezip(_entities), "实体声明"),
    "doctype hidden after a comment": (lambda: _rezip(_comment_hides_doctype), "XML"),
}


@pytest.mark.parametrize("case", HOSTILE_XLSX)
def test_hostile_xlsx_is_refused_before_parsing(sqlite_engine: Engine, tmp_path: Path,
                                                 case: str, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    build, fragment = HOSTILE_XLSX[case]
    path = tmp_path / "成果.xlsx"
    path.write_bytes(build())
    assert path.stat().st_size < 5 * 1024 * 1024  # each fits under the upload limit

    def never(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("openpyxl must not open a refused file")

    monkeypatch.setattr("openpyxl.load_workbook", never)
    with session_scope(sqlite_engine) as session, pytest.raises(ImportFileError) as caught:
        import_file(session, path, "result")
    message = str(caught.value)
    assert fragment in message and "《成果.xlsx》" in message, message
    with session_scope(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(Result)) == 0


def test_plain_xlsx_still_imports(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "成果.xlsx"
    path.write_bytes(_rezip(lambda parts: None))
    with session_scope(sqlite_engine) as session:
        report = import_file(session, path, "result")
    assert report.created == 1


def test_xlsx_formula_cells_are_never_imported_as_formulas(sqlite_engine: Engine,
                                                           tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["成果名称", "摘要", "单位名称"])
    sheet.append(["=1+1", "一种涂层工艺", "示例理工大学"])  # a real formula cell, no cached value
    path = tmp_path / "公式.xlsx"
    book.save(path)
    with session_scope(sqlite_engine) as session, pytest.raises(RowsRejected) as caught:
        import_file(session, path, "result")
    assert [error.field for error in caught.value.report.errors] == ["title"]


def test_office_sees_why_a_macro_workbook_is_refused(sqlite_site: Site) -> None:
    before = _count(sqlite_site)
    response = _upload(sqlite_site.client("office_u1"), "成果.xlsx",
                       _rezip(_with("xl/vbaProject.bin", b"\x00" * 64)))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "含有宏" in page and "另存为" in page
    assert _count(sqlite_site) == before
