"""The three main workflows in a real browser: a firm, an office and an officer at work.

Each test leaves screenshots of the pages it saw (see tests/support/browser.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshots_dir, serve
from tests.support.web import PASSWORD, Site, make_site

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
                    "(.ci/run does) or set CHROMIUM_PATH")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Site, str]]:
    site = make_site(f"sqlite:///{tmp_path / 'browser.sqlite'}", tmp_path / "home")
    with serve(site.app) as url:
        yield site, url
    site.app.extensions["matcher.engine"].dispose()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def login(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(username)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(screenshots_dir() / f"{name}.png"), full_page=True)


def test_firm_posts_a_need_and_sees_explained_matches(live: tuple[Site, str], page: Page) -> None:
    _site, url = live
    login(page, url, "firm_a")
    shot(page, "firm-home")
    page.click("text=发布需求")
    page.fill("#f-title", "焊装线机器人视觉抓取")
    page.fill("#f-description", "需要深度学习视觉定位算法，提升工业机器人无序抓取精度到0.5毫米。")
    page.select_option("#f-industry", "智能制造")
    page.select_option("#f-cooperation_mode", "合作开发")
    page.fill("#f-budget_min", "abc")
    page.click("main button[type=submit]")
    # A bad field is reported beside the field, and nothing is saved.
    expect(page.locator('[data-field="budget_min"]')).to_be_visible()
    page.fill("#f-budget_min", "50")
    page.fill("#f-budget_max", "100")
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("焊装线机器人视觉抓取")
    # The test site's fake encoder rates every match of this need 弱: the page says nothing
    # answers it well and folds the matches away until the firm opens them.
    expect(page.locator(".notice")).to_contain_text("当前平台暂无较强匹配的成果")
    first = page.locator(".match").first
    expect(first).to_be_hidden()
    page.locator("#weak-matches > summary").click()
    expect(first).to_be_visible()
    expect(first.locator("h3")).to_contain_text("基于深度学习的机器人视觉定位方法")
    expect(first.locator(".why")).to_contain_text("都涉及")
    first.locator("summary", has_text="对照两段文字").click()
    expect(first.locator("mark").first).to_be_visible()
    first.locator("input[name=relevant][value=true]").check()
    first.locator("input[name=reason]").fill("精度满足，希望洽谈")
    first.locator("button", has_text="提交标记").click()
    expect(page.locator(".match").first.locator(".mark-state")).to_contain_text("已标记：相关")
    shot(page, "firm-need-matches")


def post_need(page: Page, url: str, title: str, description: str) -> None:
    page.goto(f"{url}/needs/new")
    page.fill("#f-title", title)
    page.fill("#f-description", description)
    page.select_option("#f-industry", "智能制造")
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text(title)


def test_fresh_needs_the_corpus_cannot_answer_are_told_so(
        live: tuple[Site, str], page: Page) -> None:
    """The walkthrough of issue 13: fresh needs the corpus has nothing for get a plain notice
    and no list that looks like answers; a need a result does answer gets no such notice."""
    _site, url = live
    login(page, url, "firm_a")
    unanswerable = [
        ("纺织面料疵点在线检测", "我司织造车间需要对坯布表面的断经、断纬、油污等疵点进行在线识别，"
         "布速每分钟60米，希望漏检率低于1%，可与现有验布机对接。"),
        ("多品种小批量车间排产优化", "机加工车间有40台设备、300种零件，订单插单频繁，"
         "希望有排产算法在10分钟内给出交期最优的作业计划。"),
    ]
    for n, (title, description) in enumerate(unanswerable):
        post_need(page, url, title, description)
        expect(page.locator(".notice")).to_contain_text("当前平台暂无较强匹配的成果")
        expect(page.locator(".notice")).to_contain_text("放宽筛选条件")
        # Near misses are there for whoever wants them, folded away and marked 弱.
        expect(page.locator("#weak-matches > summary")).to_contain_text("弱匹配")
        expect(page.locator(".match").first).to_be_hidden()
        if n == 0:
            shot(page, "firm-need-no-strong-match")
    post_need(page, url, "引进深度学习机器人视觉定位方法",
              "希望引进一种基于深度学习的工业机器人视觉定位方法，用于无序抓取，定位误差小于0.3毫米。")
    expect(page.locator(".notice")).to_have_count(0)
    first = page.locator(".match").first
    expect(first).to_be_visible()
    expect(first.locator(".strength")).to_contain_text("较强")
    expect(first.locator("h3")).to_contain_text("基于深度学习的机器人视觉定位方法")


def test_office_uploads_a_csv_with_one_bad_row(live: tuple[Site, str], page: Page) -> None:
    _site, url = live
    login(page, url, "office_u1")
    shot(page, "office-home")
    page.click("header >> text=批量上传")
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["成果名称", "摘要", "成果类型", "成熟度"])
    writer.writerow(["柔性钙钛矿电池封装", "一种柔性钙钛矿太阳能电池封装方法", "发明专利", "小试"])
    writer.writerow(["缺少摘要的成果", "", "发明专利", "小试"])
    page.set_input_files("input[name=file]", files=[{
        "name": "成果清单.csv", "mimeType": "text/csv",
        "buffer": rows.getvalue().encode("utf-8")}])
    page.click("main button[type=submit]")
    expect(page.locator("#upload-error")).to_contain_text("整个文件未导入")
    expect(page.locator("#rejected-rows")).to_contain_text("第 3 行")
    expect(page.locator("#rejected-rows")).to_contain_text("摘要")
    shot(page, "office-upload-error")
    page.goto(f"{url}/search?q=钙钛矿")
    expect(page.locator("main")).not_to_contain_text("柔性钙钛矿电池封装")


def answer_a_need_well(site: Site, need_title: str) -> int:
    """Add an active result restating a seeded need, so that the pair is rated 较强 or better,
    and bring the coverage up to date at once."""
    from corpora.models import Need, Result
    from web.database import sessions
    from web.matching import service

    with site.app.app_context(), sessions()() as db:
        need = db.get(Need, site.ids["need"][need_title])
        assert need is not None
        result = Result(organisation_id=site.ids["org"]["示例理工大学"],
                        title="机器人视觉无序抓取定位", abstract=need.description,
                        industry=need.industry, result_type="发明专利", maturity="中试",
                        status="active")
        db.add(result)
        db.commit()
        service().changed(db, "result", [result.id])
        service().coverage_max_age = 0
        assert result.id in service().refresh_coverage().needs_of
        return result.id


def test_officer_builds_a_shortlist_with_the_proposal_and_exports_it(
        live: tuple[Site, str], page: Page, tmp_path: Path) -> None:
    site, url = live
    # Proposals count only matches rated 较强 or better, and the test site's fake encoder rates
    # its seeded pairs 弱: a university lists a result that answers the robot-vision need.
    answer_a_need_well(site, "工业机器人视觉抓取精度提升")
    login(page, url, "officer")
    shot(page, "officer-home")
    page.click("header >> text=拍卖清单")
    page.fill("#f-title", "2026 G60 科创走廊成果拍卖会（智能制造专场）")
    page.fill("#f-event_date", "2026-12-18")
    page.click("main form.card button[type=submit]")
    expect(page.locator("h1")).to_contain_text("智能制造专场")
    page.click("text=系统建议拍品")
    page.fill("#f-n", "3")
    page.click("main form.filters button[type=submit]")
    expect(page.locator("#method")).to_contain_text("1 − 1/e")
    proposed = page.locator("table tr").count() - 1
    assert proposed >= 1
    shot(page, "officer-proposal")
    page.click("text=采纳建议")
    expect(page.locator("table.lots tr[id^=lot-]")).to_have_count(proposed)
    expect(page.locator("#history")).to_be_visible()
    shot(page, "officer-shortlist")
    with page.expect_download() as download_info:
        page.click("text=导出 CSV")
    saved = tmp_path / "shortlist.csv"
    download_info.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert rows[0][:2] == ["序号", "成果名称"] and len(rows) == proposed + 1
    with page.expect_download() as download_info:
        page.click("text=导出 XLSX")
    assert download_info.value.suggested_filename.endswith(".xlsx")
    page.click("text=打印视图")
    expect(page.locator("main")).to_contain_text("智能制造专场")
