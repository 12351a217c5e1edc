"""Officers' auction shortlists through HTTP: curate, propose, export, audit, and the boundary
that keeps everyone else out."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from corpora.models import AuditEntry, Need, Organisation, Result, Shortlist, ShortlistLot
from matcher.shortlist import propose
from tests.support.web import Site
from web.database import sessions
from web.matching import service

VISION = "基于深度学习的机器人视觉定位方法"
SERVO = "伺服系统振动抑制控制器"
BATTERY = "锂电池正极材料包覆工艺"
ANTIBODY = "抗体制剂稳定配方"
SCREENING = "肿瘤早筛血液检测方法"
ROBOT_NEED = "工业机器人视觉抓取精度提升"

COLUMNS = ["序号", "成果名称", "完成单位", "成果类型", "专利号", "成熟度", "产业领域", "转化方式",
           "意向价格(万元)", "保留价(万元)", "备注", "能较好解决的开放需求数(较强以上)", "相关需求",
           "拍卖结果", "成交价(万元)", "买受人"]


def _create(client: FlaskClient, **fields: str) -> int:
    response = client.post("/shortlists/", data={"title": "G60 成果拍卖会", **fields})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _add(client: FlaskClient, shortlist_id: int, result_id: int) -> None:
    response = client.post(f"/shortlists/{shortlist_id}/lots", data={"result_id": result_id})
    assert response.status_code == 302, response.get_data(as_text=True)


def _lots(site: Site, shortlist_id: int) -> list[tuple[str, int, float | None, str | None]]:
    with site.app.app_context(), sessions()() as db:
        lots = db.scalars(select(ShortlistLot).where(ShortlistLot.shortlist_id == shortlist_id)
                          .order_by(ShortlistLot.position))
        return [(lot.result.title, lot.position, lot.reserve_price, lot.note) for lot in lots]


def _lot_ids(site: Site, shortlist_id: int) -> dict[str, int]:
    with site.app.app_context(), sessions()() as db:
        lots = db.scalars(select(ShortlistLot).where(ShortlistLot.shortlist_id == shortlist_id))
        return {lot.result.title: lot.id for lot in lots}


def _audit(site: Site, shortlist_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with site.app.app_context(), sessions()() as db:
        entries = db.scalars(select(AuditEntry).where(AuditEntry.entity == "shortlist",
                                                      AuditEntry.entity_id == shortlist_id)
                             .order_by(AuditEntry.id))
        return [(e.user.username, e.action, json.loads(e.detail)) for e in entries]


def _count(site: Site, model: type) -> int:
    with site.app.app_context(), sessions()() as db:
        return db.scalar(select(func.count()).select_from(model))


def _csv_rows(client: FlaskClient, shortlist_id: int) -> list[list[str]]:
    response = client.get(f"/shortlists/{shortlist_id}/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8 Chinese
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _xlsx_rows(client: FlaskClient, shortlist_id: int) -> list[list[Any]]:
    response = client.get(f"/shortlists/{shortlist_id}/export.xlsx")
    assert response.status_code == 200
    assert "spreadsheetml" in response.mimetype
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def _as_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell == int(cell):
        return str(int(cell))
    return str(cell)


def _count_every_match(site: Site) -> None:
    """The fake encoder rates every seeded pair 弱: count every top-K pair, as the coverage
    did before strength, for tests about curating rather than about strength."""
    with site.app.app_context():
        service().coverage_min_label = "弱"


def test_full_workflow(site: Site) -> None:
    _count_every_match(site)
    client = site.client("officer")
    ids = site.ids["result"]
    shortlist_id = _create(client, title="2025 G60 成果拍卖会", event_date="2025-09-20",
                           note="松江专场")
    for title in (SERVO, BATTERY, SCREENING):
        _add(client, shortlist_id, ids[title])
    assert [t for t, *_ in _lots(site, shortlist_id)] == [SERVO, BATTERY, SCREENING]

    # The page shows each lot's answered open needs, linked to the need.
    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    assert "2025 G60 成果拍卖会" in page and "2025-09-20" in page and "松江专场" in page
    assert f'href="/needs/{site.ids["need"][ROBOT_NEED]}"' in page
    assert "能较好解决的开放需求" in page

    # Reorder: one place up, then straight to the top by position.
    lot_ids = _lot_ids(site, shortlist_id)
    move = f"/shortlists/{shortlist_id}/lots/{{}}/move"
    assert client.post(move.format(lot_ids[SCREENING]), data={"direction": "up"}).status_code == 302
    assert [t for t, *_ in _lots(site, shortlist_id)] == [SERVO, SCREENING, BATTERY]
    assert client.post(move.format(lot_ids[BATTERY]), data={"position": "1"}).status_code == 302
    assert [(t, p) for t, p, *_ in _lots(site, shortlist_id)] == [
        (BATTERY, 1), (SERVO, 2), (SCREENING, 3)]

    # Reserve price and note.
    edit = f"/shortlists/{shortlist_id}/lots/{lot_ids[SERVO]}/edit"
    assert client.get(edit).status_code == 200
    response = client.post(edit, data={"reserve_price": "80.5", "note": "含样机一台"})
    assert response.status_code == 302
    assert _lots(site, shortlist_id)[1] == (SERVO, 2, 80.5, "含样机一台")

    # Remove: the others close ranks.
    remove = f"/shortlists/{shortlist_id}/lots/{lot_ids[SCREENING]}/remove"
    # First a page that says what will go, with a 确认 form; nothing is removed yet.
    asked = client.post(remove)
    assert asked.status_code == 200 and "确认移除" in asked.get_data(as_text=True)
    assert 'name="confirm" value="1"' in asked.get_data(as_text=True)
    assert len(_lots(site, shortlist_id)) == 3
    assert client.post(remove, data={"confirm": "1"}).status_code == 302
    assert [(t, p) for t, p, *_ in _lots(site, shortlist_id)] == [(BATTERY, 1), (SERVO, 2)]

    # Propose: the page explains the method and lists what the algorithm picks.
    proposal_page = client.get(f"/shortlists/{shortlist_id}/propose",
                               query_string={"n": "2", "balance": "0.5"})
    assert proposal_page.status_code == 200
    text = proposal_page.get_data(as_text=True)
    assert "建议方法" in text and "1/log₂(1+r)" in text and "均衡系数" in text
    proposed = [int(i) for i in re.findall(r'name="result_id" value="(\d+)"', text)]
    with site.app.app_context(), sessions()() as db:
        industry_of = dict(db.execute(select(Result.id, Result.industry)).all())
        expected = propose(service().coverage().needs_of, industry_of, 2,
                           exclude={ids[BATTERY], ids[SERVO]}, balance=0.5)
    assert proposed == [lot.result_id for lot in expected.lots] and len(proposed) == 2
    assert not {ids[BATTERY], ids[SERVO]} & set(proposed)
    accepted = client.post(f"/shortlists/{shortlist_id}/propose",
                           data={"n": "2", "balance": "0.5", "result_id": proposed})
    assert accepted.status_code == 302
    titles = {v: k for k, v in ids.items()}
    final = [BATTERY, SERVO, *(titles[i] for i in proposed)]
    assert [(t, p) for t, p, *_ in _lots(site, shortlist_id)] == [
        (t, p) for p, t in enumerate(final, start=1)]

    # Exports: the same rows in CSV and XLSX, in lot order.
    rows = _csv_rows(client, shortlist_id)
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert [r[1] for r in rows[1:]] == final
    servo = rows[2]
    assert servo[2] == "示例理工大学" and servo[3] == "发明专利" and servo[6] == "高端装备"
    assert servo[7] == "技术转让" and servo[9] == "80.5" and servo[10] == "含样机一台"
    assert int(servo[11]) == len(servo[12].split("；")) >= 1
    assert "伺服电机振动抑制" in servo[12]
    sheet = _xlsx_rows(client, shortlist_id)
    assert sheet[0] == COLUMNS
    assert sheet[2][0] == 2 and sheet[2][9] == 80.5  # numbers stay numbers in XLSX
    assert [[_as_text(c) for c in row] for row in sheet[1:]] == rows[1:]

    # The print view.
    printed = client.get(f"/shortlists/{shortlist_id}/print")
    assert printed.status_code == 200
    text = printed.get_data(as_text=True)
    assert 'class="print-view"' in text and "2025 G60 成果拍卖会" in text
    assert all(title in text for title in final) and "含样机一台" in text

    # Every change is in the audit log, by the officer, and on the page.
    log = _audit(site, shortlist_id)
    assert {user for user, _, _ in log} == {"officer"}
    assert [action for _, action, _ in log] == [
        "create", "add_lot", "add_lot", "add_lot", "move_lot", "move_lot", "update_lot",
        "remove_lot", "accept_proposal"]
    assert log[0][2]["title"] == "2025 G60 成果拍卖会"
    assert log[4][2] == {"result_id": ids[SCREENING], "title": SCREENING, "from": 3, "to": 2}
    assert log[6][2]["changes"] == {"reserve_price": [None, 80.5], "note": [None, "含样机一台"]}
    assert log[7][2]["result_id"] == ids[SCREENING]
    assert [lot["result_id"] for lot in log[8][2]["lots"]] == proposed
    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    history = page[page.index('id="history"'):]
    assert "officer" in history and f"移除拍品《{SCREENING}》" in history
    assert "保留价（万元）：（空） → 80.5" in history and "采纳系统建议" in history


def test_only_strong_matches_count_and_the_rest_is_said(sqlite_site: Site) -> None:
    """Default threshold (较强): the seeded pairs are all 弱, so no lot answers anything and
    nothing is proposed, until a result that answers a need well (a near-copy) is added."""
    site = sqlite_site
    client = site.client("officer")
    ids = site.ids
    shortlist_id = _create(client)
    _add(client, shortlist_id, ids["result"][VISION])
    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    assert f'href="/needs/{ids["need"][ROBOT_NEED]}"' not in page
    assert "暂无（未以较强以上的强度进入任何开放需求的前 10 名）" in page
    proposal = client.get(f"/shortlists/{shortlist_id}/propose", query_string={"n": "2"})
    text = proposal.get_data(as_text=True)
    assert "较强以上" in text[text.index('id="method"'):]
    assert 'name="result_id"' not in text and "没有可建议的成果" in text
    coverage = client.get("/results/coverage").get_data(as_text=True)
    unanswered = coverage[coverage.index('id="unanswered"'):]
    assert all(f'href="/needs/{need}"' in unanswered for need in ids["need"].values())
    assert "最好匹配：弱" in unanswered and "智能制造（1 条）" in unanswered

    with site.app.app_context(), sessions()() as db:
        need = db.get(Need, ids["need"][ROBOT_NEED])
        copy = Result(organisation_id=ids["org"]["示例理工大学"], title="机器人视觉无序抓取定位",
                      abstract=need.description, industry="智能制造", status="active")
        db.add(copy)
        db.commit()
        service().changed(db, "result", [copy.id])
        service().coverage_max_age = 0
        covered = service().refresh_coverage()
        assert covered.needs_of == {copy.id: {need.id: 1}}
    page = client.get(f"/shortlists/{shortlist_id}/propose", query_string={"n": "2"})
    text = page.get_data(as_text=True)
    assert re.findall(r'name="result_id" value="(\d+)"', text) == [str(copy.id)]
    assert "采纳后清单合计能较好解决 <strong>1</strong> 条开放需求" in text
    _add(client, shortlist_id, copy.id)
    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    lots = page[page.index('class="lots"'):]
    assert f'href="/needs/{need.id}"' in lots and re.search(r"第 1 名 · (强|较强)（\d+%）", lots)
    coverage = client.get("/results/coverage").get_data(as_text=True)
    assert "机器人视觉无序抓取定位" in coverage[:coverage.index('id="unanswered"')]
    assert f'href="/needs/{need.id}"' not in coverage[coverage.index('id="unanswered"'):]


def test_edit_and_delete_are_audited(site: Site) -> None:
    client = site.client("officer")
    shortlist_id = _create(client, title="旧名称")
    _add(client, shortlist_id, site.ids["result"][VISION])
    form = client.get(f"/shortlists/{shortlist_id}/edit")
    assert form.status_code == 200 and "旧名称" in form.get_data(as_text=True)
    response = client.post(f"/shortlists/{shortlist_id}/edit",
                           data={"title": "新名称", "event_date": "2025-10-01", "note": ""})
    assert response.status_code == 302
    # Deleting asks for a confirmation first.
    assert client.post(f"/shortlists/{shortlist_id}/delete").status_code == 400
    assert _count(site, Shortlist) == 1
    admin = site.client("admin")  # admins pass every role check, and are recorded as such
    response = admin.post(f"/shortlists/{shortlist_id}/delete", data={"confirm": "yes"})
    assert response.status_code == 302
    assert _count(site, Shortlist) == 0 and _count(site, ShortlistLot) == 0
    log = _audit(site, shortlist_id)
    assert [(user, action) for user, action, _ in log] == [
        ("officer", "create"), ("officer", "add_lot"), ("officer", "update"), ("admin", "delete")]
    assert log[2][2]["changes"] == {"title": ["旧名称", "新名称"],
                                    "event_date": [None, "2025-10-01"]}
    assert log[3][2] == {"title": "新名称", "lots": [site.ids["result"][VISION]]}
    assert client.get(f"/shortlists/{shortlist_id}").status_code == 404
    # A later shortlist (SQLite may reuse the id) shows only its own history.
    later = _create(client, title="后来的清单")
    history = client.get(f"/shortlists/{later}").get_data(as_text=True).split('id="history"')[1]
    assert "创建清单《后来的清单》" in history
    assert "新名称" not in history and "旧名称" not in history


def test_add_from_the_result_page(sqlite_site: Site) -> None:
    site = sqlite_site
    client = site.client("officer")
    vision = site.ids["result"][VISION]
    result_page = client.get(f"/results/{vision}").get_data(as_text=True)
    assert f"/shortlists/?add={vision}" in result_page
    # No shortlist yet: create one with the result as its first lot.
    chooser = client.get("/shortlists/", query_string={"add": vision})
    assert chooser.status_code == 200 and VISION in chooser.get_data(as_text=True)
    response = client.post("/shortlists/", data={"title": "首场", "add": vision})
    first = int(response.headers["Location"].rsplit("/", 1)[-1])
    assert _lots(site, first) == [(VISION, 1, None, None)]
    second = _create(client, title="第二场")
    chooser = client.get("/shortlists/", query_string={"add": vision}).get_data(as_text=True)
    assert 'name="shortlist_id"' in chooser and "已在此清单中" in chooser
    response = client.post("/shortlists/add", data={"shortlist_id": second, "result_id": vision})
    assert response.status_code == 302
    assert _lots(site, second) == [(VISION, 1, None, None)]
    # Again: a duplicate, refused beside the field, nothing added.
    again = client.post("/shortlists/add", data={"shortlist_id": second, "result_id": vision})
    assert again.status_code == 400
    assert 'data-field="shortlist_id"' in again.get_data(as_text=True)
    missing = client.post("/shortlists/add", data={"shortlist_id": "", "result_id": vision})
    assert missing.status_code == 400
    assert 'data-field="shortlist_id"' in missing.get_data(as_text=True)
    assert _count(site, ShortlistLot) == 2
    assert [a for _, a, d in _audit(site, second) if d.get("via") == "result"] == ["add_lot"]
    assert client.get("/shortlists/", query_string={"add": "abc"}).status_code == 400


def _endpoints(shortlist_id: int, lot_id: int, result_id: int) -> list[tuple[str, str]]:
    base = f"/shortlists/{shortlist_id}"
    lot = f"{base}/lots/{lot_id}"
    return [
        ("GET", "/shortlists/"), ("POST", "/shortlists/"),
        ("GET", f"/shortlists/?add={result_id}"), ("POST", "/shortlists/add"),
        ("GET", base), ("GET", f"{base}/edit"), ("POST", f"{base}/edit"),
        ("POST", f"{base}/delete"), ("POST", f"{base}/lots"),
        ("POST", f"{lot}/remove"), ("POST", f"{lot}/move"),
        ("GET", f"{lot}/edit"), ("POST", f"{lot}/edit"),
        ("GET", f"{base}/propose"), ("GET", f"{base}/propose?n=3&balance=0.5"),
        ("POST", f"{base}/propose"),
        ("GET", f"{base}/export.csv"), ("GET", f"{base}/export.xlsx"), ("GET", f"{base}/print"),
    ]


def test_only_officers_touch_shortlists(sqlite_site: Site) -> None:
    site = sqlite_site
    officer = site.client("officer")
    shortlist_id = _create(officer, title="边界测试")
    _add(officer, shortlist_id, site.ids["result"][VISION])
    lot_id = _lot_ids(site, shortlist_id)[VISION]
    battery = site.ids["result"][BATTERY]
    endpoints = _endpoints(shortlist_id, lot_id, battery)
    form = {"title": "篡改", "confirm": "yes", "result_id": battery, "shortlist_id": shortlist_id,
            "direction": "down", "position": "1", "reserve_price": "1", "note": "x", "n": "3",
            "balance": "0.5"}
    before = (_count(site, Shortlist), _count(site, ShortlistLot), _count(site, AuditEntry))
    for username in ("firm_a", "office_u1"):
        client = site.client(username)
        for method, path in endpoints:
            response = client.open(path, method=method, data=form if method == "POST" else None)
            assert response.status_code == 403, (username, method, path)
    anonymous = site.app.test_client()
    for method, path in endpoints:
        response = anonymous.open(path, method=method, data=form if method == "POST" else None)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert (_count(site, Shortlist), _count(site, ShortlistLot)) == before[:2]
    assert _count(site, AuditEntry) == before[2]
    # The nav and the result page offer shortlists to officers only.
    assert "拍卖清单" not in site.client("firm_a").get("/").get_data(as_text=True)
    assert "加入拍卖清单" not in site.client("office_u1").get(
        f"/results/{battery}").get_data(as_text=True)
    assert officer.get("/shortlists/").status_code == 200
    assert site.client("admin").get(f"/shortlists/{shortlist_id}").status_code == 200


def test_unknown_ids_are_404(sqlite_site: Site) -> None:
    site = sqlite_site
    client = site.client("officer")
    shortlist_id = _create(client)
    other_id = _create(client, title="另一场")
    _add(client, other_id, site.ids["result"][VISION])
    foreign_lot = _lot_ids(site, other_id)[VISION]
    for method, path in _endpoints(999, 999, 999):
        if path.startswith("/shortlists/?") or path in ("/shortlists/", "/shortlists/add"):
            continue
        response = client.open(path, method=method, data={"confirm": "yes"})
        assert response.status_code == 404, (method, path)
    # A lot of another shortlist is not this shortlist's.
    for method, suffix in (("GET", "edit"), ("POST", "edit"), ("POST", "remove"),
                           ("POST", "move")):
        path = f"/shortlists/{shortlist_id}/lots/{foreign_lot}/{suffix}"
        assert client.open(path, method=method).status_code == 404, path
    assert client.get("/shortlists/", query_string={"add": 999}).status_code == 404
    missing = client.post(f"/shortlists/{shortlist_id}/lots", data={"result_id": "999"})
    assert missing.status_code == 404 and "不存在" in missing.get_data(as_text=True)
    accept = client.post(f"/shortlists/{shortlist_id}/propose",
                         data={"n": "1", "balance": "0", "result_id": "999"})
    assert accept.status_code == 404
    assert client.post("/shortlists/add",
                       data={"shortlist_id": 999, "result_id": site.ids["result"][SERVO]}
                       ).status_code == 404
    assert _lots(site, shortlist_id) == [] and _lots(site, other_id) == [(VISION, 1, None, None)]


def _withdraw(site: Site, title: str) -> int:
    with site.app.app_context(), sessions()() as db:
        result = db.get(Result, site.ids["result"][title])
        result.status = "withdrawn"
        db.commit()
        return result.id


def test_bad_input_is_400_beside_the_field_and_saves_nothing(site: Site) -> None:
    client = site.client("officer")
    start = _count(site, AuditEntry)
    bad_create = client.post("/shortlists/", data={"title": "", "event_date": "2025/09/20",
                                                   "note": "长" * 2001})
    assert bad_create.status_code == 400
    page = bad_create.get_data(as_text=True)
    for name in ("title", "event_date", "note"):
        assert f'data-field="{name}"' in page
    assert "请填写清单名称" in page and "YYYY-MM-DD" in page
    assert client.post("/shortlists/", data={"title": "标" * 201}).status_code == 400
    impossible = client.post("/shortlists/", data={"title": "x", "event_date": "2025-02-30"})
    assert impossible.status_code == 400 and "不是有效日期" in impossible.get_data(as_text=True)
    assert _count(site, Shortlist) == 0 and _count(site, AuditEntry) == start

    shortlist_id = _create(client, title="校验", event_date="2025-09-20")
    _add(client, shortlist_id, site.ids["result"][VISION])
    lot_id = _lot_ids(site, shortlist_id)[VISION]
    entries = _count(site, AuditEntry)

    bad_edit = client.post(f"/shortlists/{shortlist_id}/edit",
                           data={"title": "改名", "event_date": "明天"})
    assert bad_edit.status_code == 400
    assert 'data-field="event_date"' in bad_edit.get_data(as_text=True)

    edit = f"/shortlists/{shortlist_id}/lots/{lot_id}/edit"
    for price, message in (("-1", "不能为负数"), ("abc", "须为数字"), ("1e3", "须为数字"),
                           ("10000001", "不超过"), ("nan", "须为数字")):
        response = client.post(edit, data={"reserve_price": price, "note": "好"})
        text = response.get_data(as_text=True)
        assert response.status_code == 400 and 'data-field="reserve_price"' in text, price
        assert message in text, price
    long_note = client.post(edit, data={"reserve_price": "5", "note": "注" * 1001})
    assert long_note.status_code == 400 and 'data-field="note"' in long_note.get_data(as_text=True)

    propose_url = f"/shortlists/{shortlist_id}/propose"
    for n, balance, fields in (("0", "0.5", ["n"]), ("51", "0.5", ["n"]), ("abc", "1", ["n"]),
                               ("3", "-1", ["balance"]), ("", "x", ["n", "balance"])):
        response = client.get(propose_url, query_string={"n": n, "balance": balance})
        assert response.status_code == 400, (n, balance)
        text = response.get_data(as_text=True)
        assert all(f'data-field="{name}"' in text for name in fields), (n, balance)
        assert "建议结果" not in text

    lots = f"/shortlists/{shortlist_id}/lots"
    for raw, message in (("abc", "正整数"), ("", "请填写成果编号"),
                         (str(site.ids["result"][VISION]), "已在本清单中")):
        response = client.post(lots, data={"result_id": raw})
        text = response.get_data(as_text=True)
        assert response.status_code == 400 and 'data-field="result_id"' in text, raw
        assert message in text, raw
    withdrawn = _withdraw(site, SCREENING)
    response = client.post(lots, data={"result_id": withdrawn})
    assert response.status_code == 400 and "已撤回" in response.get_data(as_text=True)
    assert client.get("/shortlists/", query_string={"add": withdrawn}).status_code == 400
    # Accepting a proposal that has gone stale adds none of it.
    response = client.post(propose_url, data={
        "n": "2", "balance": "0.5", "result_id": [site.ids["result"][SERVO], withdrawn]})
    assert response.status_code == 400
    assert client.post(propose_url, data={"n": "2", "balance": "0.5"}).status_code == 400
    assert client.post(propose_url, data={"n": "99", "balance": "0.5",
                                          "result_id": site.ids["result"][SERVO]}
                       ).status_code == 400

    move = f"/shortlists/{shortlist_id}/lots/{lot_id}/move"
    bad_move = client.post(move, data={"position": "9"})
    assert bad_move.status_code == 400 and 'data-field="position"' in bad_move.get_data(
        as_text=True)
    assert client.post(move, data={"direction": "sideways"}).status_code == 400

    assert _lots(site, shortlist_id) == [(VISION, 1, None, None)]
    with site.app.app_context(), sessions()() as db:
        shortlist = db.get(Shortlist, shortlist_id)
        assert shortlist.title == "校验" and shortlist.event_date.isoformat() == "2025-09-20"
    assert _count(site, AuditEntry) == entries


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_sheet_text_guards_every_formula_start(prefix: str) -> None:
    from web.exports import sheet_text

    assert sheet_text(f"{prefix}1+1") == f"'{prefix}1+1"
    assert sheet_text("基于深度学习") == "基于深度学习"
    assert sheet_text("") == ""


def test_exports_are_safe_against_formula_injection(sqlite_site: Site) -> None:
    site = sqlite_site
    evil = "=cmd|' /C calc'!A0"
    with site.app.app_context(), sessions()() as db:
        org = db.scalar(select(Organisation).where(Organisation.name == "示例理工大学"))
        result = Result(organisation=org, title=evil, abstract="恶意标题测试：机器人视觉定位",
                        result_type="发明专利", patent_number="@SUM(1+1)", industry="智能制造",
                        transfer_modes="技术转让", asking_price=12.5, status="active")
        db.add(result)
        db.commit()
        evil_id = result.id
    client = site.client("officer")
    shortlist_id = _create(client, title="<script>alert(1)</script>")
    _add(client, shortlist_id, evil_id)
    _add(client, shortlist_id, site.ids["result"][VISION])
    lot_id = _lot_ids(site, shortlist_id)[evil]
    client.post(f"/shortlists/{shortlist_id}/lots/{lot_id}/edit",
                data={"reserve_price": "10", "note": "+86 021-0000"})

    rows = _csv_rows(client, shortlist_id)
    assert rows[1][1] == "'" + evil and rows[1][4] == "'@SUM(1+1)"
    assert rows[1][10] == "'+86 021-0000" and rows[1][8] == "12.5"
    assert rows[2][1] == VISION  # ordinary text is untouched
    sheet = _xlsx_rows(client, shortlist_id)
    assert sheet[1][1] == "'" + evil and sheet[1][4] == "'@SUM(1+1)"
    assert sheet[1][10] == "'+86 021-0000" and sheet[1][8] == 12.5
    assert sheet[2][1] == VISION
    response = client.get(f"/shortlists/{shortlist_id}/export.xlsx")
    workbook = load_workbook(io.BytesIO(response.get_data()))
    assert all(cell.data_type != "f" for row in workbook.active.iter_rows() for cell in row)

    # Pages escape what officers and offices type.
    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_every_form_carries_a_csrf_token_and_pages_use_no_inline_code(sqlite_site: Site) -> None:
    site = sqlite_site
    client = site.client("officer")
    shortlist_id = _create(client, note="说明")
    _add(client, shortlist_id, site.ids["result"][VISION])
    lot_id = _lot_ids(site, shortlist_id)[VISION]
    base = f"/shortlists/{shortlist_id}"
    pages = ["/shortlists/", f"/shortlists/?add={site.ids['result'][SERVO]}", base,
             f"{base}/edit", f"{base}/lots/{lot_id}/edit", f"{base}/propose?n=3&balance=1",
             f"{base}/print"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        forms = [form for form in re.findall(r"<form[^>]*>.*?</form>", html, re.S)
                 if 'method="post"' in form]
        assert forms, path
        assert all('name="csrf_token"' in form for form in forms), path
        assert "<script" not in html and "style=" not in html, path


def test_csrf_is_enforced_on_shortlist_forms(tmp_path: Path) -> None:
    from tests.support.web import PASSWORD, make_site

    site = make_site(f"sqlite:///{tmp_path / 'csrf.sqlite'}", tmp_path / "home")
    try:
        client = site.app.test_client()

        def token(path: str) -> str:
            page = client.get(path).get_data(as_text=True)
            return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

        login = {"username": "officer", "password": PASSWORD, "csrf_token": token("/login")}
        assert client.post("/login", data=login).status_code == 302
        assert client.post("/shortlists/", data={"title": "无令牌"}).status_code == 400
        assert _count(site, Shortlist) == 0
        form = {"title": "有令牌", "csrf_token": token("/shortlists/")}
        assert client.post("/shortlists/", data=form).status_code == 302
        assert _count(site, Shortlist) == 1
    finally:
        site.app.extensions["matcher.engine"].dispose()
