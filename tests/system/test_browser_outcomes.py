"""After the auction, in a real browser: the officer records a lot 成交 and another 流拍 and
sees the outcomes, the tally and the history on the shortlist's page."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from tests.support.web import Site

# The fixtures (`browser`, `live`, `page`) and helpers are test_browser's; importing them by
# name brings none of its tests along.
from tests.system.test_browser import browser, live, login, page, shot

pytestmark = pytest.mark.browser
__all__ = ["browser", "live", "page"]

VISION = "基于深度学习的机器人视觉定位方法"
SERVO = "伺服系统振动抑制控制器"


def add_lot(page: Page, result_id: int) -> None:
    page.fill("#f-result_id", str(result_id))
    page.click("form.filters button[type=submit]")
    expect(page.locator("p.flash")).to_contain_text("已加入拍品")


def test_officer_records_an_auction_outcome_and_sees_it(
        live: tuple[Site, str], page: Page, tmp_path: Path) -> None:
    site, url = live
    login(page, url, "officer")
    page.click("header >> text=拍卖清单")
    page.fill("#f-title", "智能制造专场")
    page.fill("#f-event_date", "2026-12-18")
    page.click("main form.card button[type=submit]")
    expect(page.locator("h1")).to_have_text("智能制造专场")
    add_lot(page, site.ids["result"][VISION])
    add_lot(page, site.ids["result"][SERVO])
    expect(page.locator("#tally")).to_contain_text("尚未记录")

    vision = page.locator("table.lots tr[id^=lot-]").filter(has_text=VISION)
    # A price of 0 is refused beside the field, and nothing is recorded.
    vision.locator("input[name=sold_price]").fill("0")
    vision.locator("input[name=buyer]").fill("甲智能装备有限公司")
    vision.locator("button[value=sold]").click()
    vision = page.locator("table.lots tr[id^=lot-]").filter(has_text=VISION)
    expect(vision.locator('[data-field="sold_price"]')).to_contain_text("须大于 0")
    expect(vision.locator("input[name=buyer]")).to_have_value("甲智能装备有限公司")
    vision.locator("input[name=sold_price]").fill("120")
    vision.locator("button[value=sold]").click()

    vision = page.locator("table.lots tr[id^=lot-]").filter(has_text=VISION)
    expect(vision.locator("td.outcome")).to_contain_text("成交")
    expect(vision.locator("td.outcome")).to_contain_text("120 万元")
    expect(vision.locator("td.outcome")).to_contain_text("买受人：甲智能装备有限公司")
    servo = page.locator("table.lots tr[id^=lot-]").filter(has_text=SERVO)
    servo.locator("button[value=unsold]").click()
    servo = page.locator("table.lots tr[id^=lot-]").filter(has_text=SERVO)
    expect(servo.locator("td.outcome strong")).to_have_text("流拍")
    expect(page.locator("#tally")).to_contain_text("成交 1 件，流拍 1 件，成交总额 120 万元")
    expect(page.locator("#history")).to_be_visible()
    history = page.locator("#history + table")
    expect(history).to_contain_text(f"记录拍品《{VISION}》的拍卖结果：成交")
    expect(history).to_contain_text(f"记录拍品《{SERVO}》的拍卖结果：流拍")
    shot(page, "officer-outcomes")

    with page.expect_download() as download_info:
        page.click("text=导出 XLSX")
    download = download_info.value
    assert download.suggested_filename == "拍卖清单-2026-12-18-智能制造专场.xlsx"
    saved = tmp_path / "outcomes.xlsx"
    download.save_as(saved)
    rows = list(load_workbook(saved)["拍卖清单"].iter_rows(values_only=True))
    assert rows[1][-3:] == ("成交", 120, "甲智能装备有限公司")
    assert rows[2][-3:] == ("流拍", None, None)
