"""After the auction: an officer records each lot 成交 or 流拍 over HTTP, the page and the
exports show it, and the page warns of a reserve price out of line with the result's asking
price or the budgets of the needs the lot answers."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from corpora.models import AuditEntry, Need, Result, ShortlistLot
from tests.support.web import PASSWORD, Site, csrf_token, make_site
from web.database import sessions
from web.matching import service
from web.shortlists.prices import FAR_ABOVE, FAR_BELOW

SERVO = "伺服系统振动抑制控制器"
VISION = "基于深度学习的机器人视觉定位方法"


def _shortlist(site: Site, client: FlaskClient, *titles: str, **fields: str) -> int:
    response = client.post("/shortlists/", data={"title": "智能制造专场", **fields})
    assert response.status_code == 302, response.get_data(as_text=True)
    shortlist_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    for title in titles:
        added = client.post(f"/shortlists/{shortlist_id}/lots",
                            data={"result_id": site.ids["result"][title]})
        assert added.status_code == 302
    return shortlist_id


def _lot(site: Site, shortlist_id: int, title: str) -> ShortlistLot:
    with site.app.app_context(), sessions()() as db:
        lot = db.scalar(select(ShortlistLot).where(
            ShortlistLot.shortlist_id == shortlist_id,
            ShortlistLot.result_id == site.ids["result"][title]))
        db.expunge(lot)
        return lot


def _outcome_url(site: Site, shortlist_id: int, title: str) -> str:
    return f"/shortlists/{shortlist_id}/lots/{_lot(site, shortlist_id, title).id}/outcome"


def _audit(site: Site, shortlist_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with site.app.app_context(), sessions()() as db:
        entries = db.scalars(select(AuditEntry).where(AuditEntry.entity == "shortlist",
                                                      AuditEntry.entity_id == shortlist_id)
                             .order_by(AuditEntry.id))
        return [(e.user.username, e.action, json.loads(e.detail)) for e in entries]


def _entries(site: Site) -> int:
    with site.app.app_context(), sessions()() as db:
        return db.scalar(select(func.count()).select_from(AuditEntry))


def _set_prices(site: Site, asking: float | None, budgets: tuple[float | None, float | None]
                ) -> None:
    """The servo result's asking price, and the same budget on every open need."""
    with site.app.app_context(), sessions()() as db:
        db.get(Result, site.ids["result"][SERVO]).asking_price = asking
        for need in db.scalars(select(Need)):
            need.budget_min, need.budget_max = budgets
        db.commit()


def _set_reserve(client: FlaskClient, site: Site, shortlist_id: int, reserve: str) -> None:
    lot_id = _lot(site, shortlist_id, SERVO).id
    response = client.post(f"/shortlists/{shortlist_id}/lots/{lot_id}/edit",
                           data={"reserve_price": reserve, "note": ""})
    assert response.status_code == 302


def _row(page: str, lot_id: int) -> str:
    start = page.index(f'id="lot-{lot_id}"')
    return page[start:page.index("</tr>", start)]


def test_record_sold_unsold_and_clear(site: Site) -> None:
    client = site.client("officer")
    shortlist_id = _shortlist(site, client, SERVO, VISION, event_date="2026-12-18")
    _set_reserve(client, site, shortlist_id, "80")
    servo_url = _outcome_url(site, shortlist_id, SERVO)
    sold = client.post(servo_url, data={"outcome": "sold", "sold_price": "100",
                                        "buyer": "甲智能装备有限公司"})
    assert sold.status_code == 302
    lot = _lot(site, shortlist_id, SERVO)
    assert (lot.outcome, lot.sold_price, lot.buyer) == ("sold", 100.0, "甲智能装备有限公司")
    assert lot.outcome_by_id == site.ids["user"]["officer"] and lot.outcome_at is not None
    vision_url = _outcome_url(site, shortlist_id, VISION)
    # 流拍 keeps no price or buyer, whatever the form carried.
    unsold = client.post(vision_url, data={"outcome": "unsold", "sold_price": "9", "buyer": "x"})
    assert unsold.status_code == 302
    lot = _lot(site, shortlist_id, VISION)
    assert (lot.outcome, lot.sold_price, lot.buyer) == ("unsold", None, None)

    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    servo_row = _row(page, _lot(site, shortlist_id, SERVO).id)
    assert "成交" in servo_row and "100 万元" in servo_row
    assert "买受人：甲智能装备有限公司" in servo_row
    assert "officer 记录于" in servo_row
    assert "流拍" in _row(page, _lot(site, shortlist_id, VISION).id)
    tally = page[page.index('id="tally"'):]
    tally = tally[:tally.index("</dd>")]
    assert "成交 1 件，流拍 1 件，成交总额 100 万元，成交价/保留价 1.25" in tally

    # The same outcome again changes nothing and writes nothing.
    entries = _entries(site)
    again = client.post(servo_url, data={"outcome": "sold", "sold_price": "100.0",
                                         "buyer": "甲智能装备有限公司"})
    assert again.status_code == 302 and _entries(site) == entries

    cleared = client.post(servo_url, data={"outcome": "clear"})
    assert cleared.status_code == 302
    lot = _lot(site, shortlist_id, SERVO)
    assert (lot.outcome, lot.sold_price, lot.buyer, lot.outcome_at, lot.outcome_by_id) == (
        None, None, None, None, None)

    log = _audit(site, shortlist_id)
    outcomes = [(user, action, detail) for user, action, detail in log if "outcome" in action]
    assert [(user, action) for user, action, _ in outcomes] == [
        ("officer", "record_outcome"), ("officer", "record_outcome"),
        ("officer", "clear_outcome")]
    assert outcomes[0][2]["changes"] == {"outcome": [None, "sold"], "sold_price": [None, 100.0],
                                         "buyer": [None, "甲智能装备有限公司"]}
    assert outcomes[2][2]["changes"]["outcome"] == ["sold", None]
    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    history = page[page.index('id="history"'):]
    sold = "成交（成交价 100 万元，买受人 甲智能装备有限公司）"
    assert f"记录拍品《{SERVO}》的拍卖结果：{sold}" in history
    assert f"记录拍品《{VISION}》的拍卖结果：流拍" in history
    assert f"清除拍品《{SERVO}》的拍卖结果（原为：成交（成交价 100 万元" in history
    tally = page[page.index('id="tally"'):]
    assert tally[:tally.index("</dd>")].startswith(
        'id="tally">成交 0 件，流拍 1 件，成交总额 0 万元')


def test_bad_outcomes_are_400_naming_the_field_and_save_nothing(site: Site) -> None:
    client = site.client("officer")
    shortlist_id = _shortlist(site, client, SERVO)
    url = _outcome_url(site, shortlist_id, SERVO)
    client.post(url, data={"outcome": "sold", "sold_price": "10", "buyer": "原买受人"})
    entries = _entries(site)
    cases = [
        ({"outcome": "sold", "sold_price": "", "buyer": "某公司"}, {"sold_price": "请填写成交价"}),
        ({"outcome": "sold", "sold_price": "0", "buyer": "某公司"}, {"sold_price": "须大于 0"}),
        ({"outcome": "sold", "sold_price": "-5", "buyer": "某公司"}, {"sold_price": "须大于 0"}),
        ({"outcome": "sold", "sold_price": "abc", "buyer": "某公司"}, {"sold_price": "须为数字"}),
        ({"outcome": "sold", "sold_price": "nan", "buyer": "某公司"}, {"sold_price": "须为数字"}),
        ({"outcome": "sold", "sold_price": "10000001", "buyer": "某公司"},
         {"sold_price": "不超过"}),
        ({"outcome": "sold", "sold_price": "50", "buyer": ""}, {"buyer": "请填写买受人"}),
        ({"outcome": "sold", "sold_price": "50", "buyer": "买" * 201}, {"buyer": "不超过 200 字"}),
        ({"outcome": "sold", "sold_price": "x", "buyer": ""},
         {"sold_price": "须为数字", "buyer": "请填写买受人"}),
        ({"outcome": "maybe"}, {"outcome": "拍卖结果须为"}),
        ({}, {"outcome": "拍卖结果须为"}),
    ]
    for form, expected in cases:
        response = client.post(url, data=form)
        text = response.get_data(as_text=True)
        assert response.status_code == 400, form
        for name, message in expected.items():
            assert f'data-field="{name}"' in text and message in text, (form, name)
        if form.get("buyer"):  # what was typed is kept in the form, escaped
            assert f'value="{form["buyer"]}"' in text, form
    # 200 characters is the limit, not over it.
    assert client.post(url, data={"outcome": "sold", "sold_price": "50",
                                  "buyer": "买" * 200}).status_code == 302
    lot = _lot(site, shortlist_id, SERVO)
    assert (lot.sold_price, lot.buyer) == (50.0, "买" * 200)
    assert _entries(site) == entries + 1
    # An unknown lot, or another shortlist's lot, is 404.
    assert client.post(f"/shortlists/{shortlist_id}/lots/99999/outcome",
                       data={"outcome": "unsold"}).status_code == 404
    other = _shortlist(site, client, VISION)
    foreign = _lot(site, other, VISION).id
    assert client.post(f"/shortlists/{shortlist_id}/lots/{foreign}/outcome",
                       data={"outcome": "unsold"}).status_code == 404


def test_only_officers_record_outcomes(sqlite_site: Site) -> None:
    site = sqlite_site
    officer = site.client("officer")
    shortlist_id = _shortlist(site, officer, SERVO)
    url = _outcome_url(site, shortlist_id, SERVO)
    entries = _entries(site)
    form = {"outcome": "sold", "sold_price": "10", "buyer": "某公司"}
    for username in ("firm_a", "office_u1"):
        assert site.client(username).post(url, data=form).status_code == 403, username
    anonymous = site.app.test_client().post(url, data=form)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert _lot(site, shortlist_id, SERVO).outcome is None and _entries(site) == entries
    assert site.client("admin").post(url, data=form).status_code == 302
    assert _audit(site, shortlist_id)[-1][:2] == ("admin", "record_outcome")


def test_the_outcome_form_needs_its_csrf_token(tmp_path: Path) -> None:
    site = make_site(f"sqlite:///{tmp_path / 'csrf.sqlite'}", tmp_path / "home")
    try:
        client = site.app.test_client()
        login = client.get("/login").get_data(as_text=True)
        assert client.post("/login", data={"username": "officer", "password": PASSWORD,
                                           "csrf_token": csrf_token(login)}).status_code == 302
        token = csrf_token(client.get("/shortlists/").get_data(as_text=True))
        created = client.post("/shortlists/", data={"title": "令牌", "csrf_token": token})
        shortlist_id = int(created.headers["Location"].rsplit("/", 1)[-1])
        client.post(f"/shortlists/{shortlist_id}/lots",
                    data={"result_id": site.ids["result"][SERVO], "csrf_token": token})
        page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
        form = re.search(r'<form[^>]*action="([^"]*/outcome)".*?</form>', page, re.S)
        assert form and 'name="csrf_token"' in form.group(0)
        data = {"outcome": "unsold"}
        assert client.post(form.group(1), data=data).status_code == 400
        assert _lot(site, shortlist_id, SERVO).outcome is None
        assert client.post(form.group(1), data=data | {"csrf_token": token}).status_code == 302
        assert _lot(site, shortlist_id, SERVO).outcome == "unsold"
    finally:
        site.app.extensions["matcher.engine"].dispose()


def _download_name(disposition: str) -> tuple[str, str]:
    fallback = re.search(r'filename="([^"]+)"', disposition).group(1)
    encoded = re.search(r"filename\*=UTF-8''(\S+)", disposition).group(1)
    return fallback, unquote(encoded)


def test_exports_carry_the_shortlist_and_the_outcomes(sqlite_site: Site) -> None:
    site = sqlite_site
    client = site.client("officer")
    shortlist_id = _shortlist(site, client, SERVO, VISION, title='智能制造/专场:"秋季"?',
                              event_date="2026-12-18", note="=SUM(A1) 松江会场")
    _set_reserve(client, site, shortlist_id, "40")
    client.post(_outcome_url(site, shortlist_id, SERVO),
                data={"outcome": "sold", "sold_price": "50", "buyer": "@某公司"})
    client.post(_outcome_url(site, shortlist_id, VISION), data={"outcome": "unsold"})

    response = client.get(f"/shortlists/{shortlist_id}/export.csv")
    fallback, name = _download_name(response.headers["Content-Disposition"])
    assert name == "拍卖清单-2026-12-18-智能制造 专场 秋季.csv"
    assert fallback == f"shortlist-{shortlist_id}-2026-12-18.csv" and fallback.isascii()
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0][-3:] == ["拍卖结果", "成交价(万元)", "买受人"]
    assert rows[1][1] == SERVO and rows[1][-3:] == ["成交", "50", "'@某公司"]
    assert rows[2][1] == VISION and rows[2][-3:] == ["流拍", "", ""]

    response = client.get(f"/shortlists/{shortlist_id}/export.xlsx")
    _, name = _download_name(response.headers["Content-Disposition"])
    assert name == "拍卖清单-2026-12-18-智能制造 专场 秋季.xlsx"
    workbook = load_workbook(io.BytesIO(response.get_data()))
    assert workbook.sheetnames == ["拍卖清单", "清单信息"]
    lots = [list(row) for row in workbook["拍卖清单"].iter_rows(values_only=True)]
    assert lots[0][-3:] == ["拍卖结果", "成交价(万元)", "买受人"]
    assert lots[1][-3:] == ["成交", 50, "'@某公司"] and lots[2][-3:] == ["流拍", None, None]
    info = {row[0]: row[1] for row in workbook["清单信息"].iter_rows(values_only=True)}
    assert info["清单名称"] == '智能制造/专场:"秋季"?' and info["拍卖会日期"] == "2026-12-18"
    assert info["说明"] == "'=SUM(A1) 松江会场"  # formula-looking text stays text
    assert info["拍品数"] == 2
    assert info["拍卖结果"] == "成交 1 件，流拍 1 件，成交总额 50 万元，成交价/保留价 1.25"
    assert all(cell.data_type != "f" for sheet in workbook for row in sheet.iter_rows()
               for cell in row)

    printed = client.get(f"/shortlists/{shortlist_id}/print").get_data(as_text=True)
    assert "智能制造/专场:&#34;秋季&#34;?" in printed and "2026-12-18" in printed
    assert "=SUM(A1) 松江会场" in printed
    assert "成交 50 万元" in printed and "@某公司" in printed and "流拍" in printed
    assert "成交 1 件，流拍 1 件" in printed

    # No date: the name says only what it is; the fallback stays ASCII.
    undated = _shortlist(site, client, title="春季专场")
    response = client.get(f"/shortlists/{undated}/export.xlsx")
    fallback, name = _download_name(response.headers["Content-Disposition"])
    assert (name, fallback) == ("拍卖清单-春季专场.xlsx", f"shortlist-{undated}.xlsx")


def _warnings(client: FlaskClient, site: Site, shortlist_id: int) -> str:
    page = client.get(f"/shortlists/{shortlist_id}").get_data(as_text=True)
    return _row(page, _lot(site, shortlist_id, SERVO).id)


def test_reserve_price_warnings_on_each_side_of_each_threshold(sqlite_site: Site) -> None:
    site = sqlite_site
    with site.app.app_context():
        service().coverage_min_label = "弱"  # the fake encoder rates every seeded pair 弱
    client = site.client("officer")
    shortlist_id = _shortlist(site, client, SERVO)
    above, below, over_asking = "远高于对应需求的预算", "远低于对应需求的预算", "保留价高于成果报价"
    # Asking 100, every need 10–30 万元: far above is over 60, far below is under 5.
    _set_prices(site, 100, (10, 30))
    assert (FAR_ABOVE, FAR_BELOW) == (2.0, 0.5)
    for reserve, expected in (("60", set()), ("60.01", {above}), ("5", set()),
                              ("4.99", {below}), ("100", {above}),
                              ("100.5", {above, over_asking})):
        _set_reserve(client, site, shortlist_id, reserve)
        row = _warnings(client, site, shortlist_id)
        shown = {text for text in (above, below, over_asking) if text in row}
        assert shown == expected, reserve
        assert "对应需求预算 10–30 万元" in row and "成果报价 100 万元" in row, reserve
        assert ('data-check="warn"' in row) == bool(expected), reserve
    row = _warnings(client, site, shortlist_id)
    assert "保留价 100.5 万元 · 成果报价 100 万元 · 对应需求预算 10–30 万元" in row
    # Reserve over the asking price, within the budgets.
    _set_prices(site, 20, (10, 30))
    _set_reserve(client, site, shortlist_id, "20")
    assert over_asking not in _warnings(client, site, shortlist_id)
    _set_reserve(client, site, shortlist_id, "21")
    row = _warnings(client, site, shortlist_id)
    assert over_asking in row and above not in row and below not in row
    # Nothing to compare against: no asking price, no budgets, no warning.
    _set_prices(site, None, (None, None))
    _set_reserve(client, site, shortlist_id, "100000")
    row = _warnings(client, site, shortlist_id)
    assert "price-warning" not in row and "对应需求预算" not in row
    # A need with only a floor, or only a ceiling, is judged by what it states.
    _set_prices(site, None, (10, None))
    _set_reserve(client, site, shortlist_id, "100000")
    assert above not in _warnings(client, site, shortlist_id)
    _set_reserve(client, site, shortlist_id, "4")
    assert below in _warnings(client, site, shortlist_id)
    # No reserve: nothing to check.
    _set_prices(site, 1, (10, 30))
    _set_reserve(client, site, shortlist_id, "")
    assert "price-check" not in _warnings(client, site, shortlist_id)


def test_lots_that_answer_no_need_are_checked_against_the_asking_price_only(
        sqlite_site: Site) -> None:
    """At the default threshold (较强) the seeded pairs answer nothing: no budgets apply."""
    site = sqlite_site
    client = site.client("officer")
    shortlist_id = _shortlist(site, client, SERVO)
    _set_prices(site, 100, (10, 30))
    _set_reserve(client, site, shortlist_id, "1000")
    row = _warnings(client, site, shortlist_id)
    assert "保留价高于成果报价" in row and "对应需求" not in row


def test_the_proposal_checks_the_asking_price_against_the_budgets(sqlite_site: Site) -> None:
    site = sqlite_site
    with site.app.app_context():
        service().coverage_min_label = "弱"
    client = site.client("officer")
    shortlist_id = _shortlist(site, client, VISION)
    _set_prices(site, 61, (10, 30))
    with site.app.app_context(), sessions()() as db:
        for result in db.scalars(select(Result).where(Result.title != SERVO)):
            result.asking_price = 30
        db.commit()
    page = client.get(f"/shortlists/{shortlist_id}/propose",
                      query_string={"n": "4", "balance": "0"}).get_data(as_text=True)
    table = page[page.index("建议结果"):]
    servo = table[table.index(SERVO):]
    servo = servo[:servo.index("</tr>")]
    assert "成果报价远高于对应需求的预算" in servo
    assert "成果报价 61 万元 · 对应需求预算 10–30 万元" in servo
    others = table.replace(servo, "")
    assert "远高于" not in others and "成果报价 30 万元" in others


def _match(page: str, row_id: int) -> str:
    start = page.index(f'id="match-{row_id}"')
    end = page.find('class="match"', start + 1)
    return page[start:end if end > 0 else len(page)]


def test_every_match_shows_the_budget_against_the_asking_price(sqlite_site: Site) -> None:
    site = sqlite_site
    need_id = site.ids["need"]["伺服电机振动抑制"]
    with site.app.app_context(), sessions()() as db:
        for need in db.scalars(select(Need)):
            need.budget_min, need.budget_max = (None, None)
        db.get(Need, need_id).budget_min, db.get(Need, need_id).budget_max = 10, 30
        prices = {SERVO: 50, VISION: 20, "锂电池正极材料包覆工艺": 5}
        for title, price in prices.items():
            db.get(Result, site.ids["result"][title]).asking_price = price
        db.commit()
    client = site.client("firm_a")
    page = client.get(f"/needs/{need_id}").get_data(as_text=True)
    expected = {SERVO: "成果报价 50 万元 <span class=\"tag\">报价高于预算上限",
                VISION: "成果报价 20 万元 <span class=\"tag ok\">报价在预算内",
                "锂电池正极材料包覆工艺": "成果报价 5 万元 <span class=\"tag\">报价低于预算下限"}
    for title, shown in expected.items():
        match = _match(page, site.ids["result"][title])
        assert "需求预算 10–30 万元 · " + shown in match, title
    # A result with no asking price has nothing to compare.
    assert "需求预算" not in _match(page, site.ids["result"]["肿瘤早筛血液检测方法"])
    # From the result's side: the needs with a budget, and only those.
    page = site.client("office_u1").get(f"/results/{site.ids['result'][SERVO]}"
                                        ).get_data(as_text=True)
    assert "需求预算 10–30 万元 · 成果报价 50 万元" in _match(page, need_id)
    other = site.ids["need"]["工业机器人视觉抓取精度提升"]
    assert "需求预算" not in _match(page, other)
    # A text search has no need and no result of its own to compare with.
    search = client.get("/search", query_string={"q": "伺服电机振动抑制", "side": "result"})
    text = search.get_data(as_text=True)
    assert search.status_code == 200 and f'id="match-{site.ids["result"][SERVO]}"' in text
    assert "需求预算" not in text


def test_the_api_records_outcomes_as_the_page_does(sqlite_site: Site) -> None:
    site = sqlite_site
    officer = site.client("officer")
    shortlist_id = _shortlist(site, officer, SERVO)
    servo = site.ids["result"][SERVO]
    url = f"/api/v1/shortlists/{shortlist_id}/lots/{servo}/outcome"
    entries = _entries(site)
    for body, fields in (({"outcome": "sold", "sold_price": 0, "buyer": "某公司"}, {"sold_price"}),
                         ({"outcome": "sold", "sold_price": "50", "buyer": "某公司"},
                          {"sold_price"}),
                         ({"outcome": "sold", "sold_price": True, "buyer": "某公司"},
                          {"sold_price"}),
                         ({"outcome": "sold", "sold_price": 10 ** 400, "buyer": "某公司"},
                          {"sold_price"}),
                         ({"outcome": "sold", "sold_price": 50}, {"buyer"}),
                         ({"outcome": "sold", "sold_price": 50, "buyer": "买" * 201}, {"buyer"}),
                         ({"outcome": "maybe"}, {"outcome"}), ({}, {"outcome"}),
                         ({"outcome": ["sold"]}, {"outcome"}), ({"outcome": 1}, {"outcome"}),
                         ({"outcome": "sold", "sold_price": 5, "buyer": 7}, {"buyer"}),
                         ({"outcome": "unsold", "price": 1}, {"price"})):
        response = officer.put(url, json=body)
        assert response.status_code == 400, body
        assert set(response.get_json()["error"]["fields"]) == fields, body
    assert _entries(site) == entries and _lot(site, shortlist_id, SERVO).outcome is None

    response = officer.put(url, json={"outcome": "sold", "sold_price": 88.5, "buyer": "某公司"})
    assert response.status_code == 200
    answer = response.get_json()
    assert {k: answer[k] for k in ("outcome", "sold_price", "buyer", "outcome_by")} == {
        "outcome": "sold", "sold_price": 88.5, "buyer": "某公司", "outcome_by": "officer"}
    assert answer["outcome_at"] is not None
    # Reading the shortlist shows the lot's outcome too.
    lots = officer.get(f"/api/v1/shortlists/{shortlist_id}").get_json()["lots"]
    read = next(lot for lot in lots if lot["result_id"] == servo)
    assert {k: read[k] for k in ("outcome", "sold_price", "buyer")} == {
        "outcome": "sold", "sold_price": 88.5, "buyer": "某公司"}
    assert read["outcome_at"] is not None
    assert officer.put(url, json={"outcome": "unsold", "buyer": "x"}).get_json()["buyer"] is None
    cleared = officer.put(url, json={"outcome": None}).get_json()
    assert cleared["outcome"] is None and cleared["outcome_at"] is None
    assert [a for _, a, _ in _audit(site, shortlist_id)][-3:] == [
        "record_outcome", "record_outcome", "clear_outcome"]

    for username in ("firm_a", "office_u1"):
        assert site.client(username).put(url, json={"outcome": "unsold"}).status_code == 403
    assert officer.put(f"/api/v1/shortlists/{shortlist_id}/lots/{site.ids['result'][VISION]}"
                       "/outcome", json={"outcome": "unsold"}).status_code == 404
    assert officer.put(f"/api/v1/shortlists/99999/lots/{servo}/outcome",
                       json={"outcome": "unsold"}).status_code == 404
    assert _lot(site, shortlist_id, SERVO).outcome is None
