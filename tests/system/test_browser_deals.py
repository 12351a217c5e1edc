"""From a match to a deal, in a real browser (issue 14): a firm requests 对接 on a match, the
office sees it in 对接与消息 and declines with a reason, the firm reads the reason; a second
request is accepted, the contacts appear to both sides, the firm records the deal signed, and
the officers' dashboard counts it. The office's e-mail reaches a local SMTP server.

Auction outcomes have their own walkthrough (test_browser_outcomes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect

from tests.service.test_email_notifications import Mailbox, free_port
from tests.support.browser import serve
from tests.support.web import Site, make_site

# The fixtures and helpers are test_browser's; importing them by name brings none of its
# tests along.
from tests.system.test_browser import browser, login, shot

pytestmark = pytest.mark.browser
__all__ = ["browser"]

VISION_NEED, VISION = "工业机器人视觉抓取精度提升", "基于深度学习的机器人视觉定位方法"
SERVO_NEED, SERVO = "伺服电机振动抑制", "伺服系统振动抑制控制器"
OFFICE_MAIL = "tto@university.example"
OFFICE_CONTACT = "021-57000000 赵老师"


@pytest.fixture
def mailed_site(tmp_path: Path) -> Iterator[tuple[Site, str, Mailbox]]:
    """The live site, configured to send its e-mail to an SMTP server of the test's own."""
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    site = make_site(f"sqlite:///{tmp_path / 'deals.sqlite'}", tmp_path / "home",
                     SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_TLS="none",
                     SMTP_SENDER="noreply@g60.example")
    try:
        with serve(site.app) as url:
            yield site, url, box
    finally:
        site.app.extensions["matcher.engine"].dispose()
        controller.stop()


def user_page(browser: Browser, url: str, username: str) -> Page:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, url, username)
    return page


def request_on_match(page: Page, url: str, site: Site, need: str, result: str,
                     message: str, wants: list[str]) -> None:
    """From the need's page, 发起对接 on the match with `result`; ends on the request's page."""
    page.goto(f"{url}/needs/{site.ids['need'][need]}")
    # The fake encoder rates the seeded pairs 弱: the matches are folded away.
    weak = page.locator("#weak-matches > summary")
    if weak.count():
        weak.click()
    match = page.locator(".match").filter(has=page.locator("h3", has_text=result))
    match.locator(".connect a", has_text="发起对接").click()
    expect(page.locator("h1")).to_have_text("发起对接")
    page.fill("#f-message", message)
    for want in wants:
        page.check(f"input[name=wants][value='{want}']")
    page.click("main form button[type=submit]")
    expect(page.locator("p.flash")).to_contain_text("对接请求已发出")
    # The match now links to the open request instead of offering a second one.
    page.goto(f"{url}/needs/{site.ids['need'][need]}")
    if weak.count():
        weak.click()
    expect(match.locator(".connect")).to_contain_text("已发起对接（待回复）")
    match.locator(".connect a").click()


def open_from_inbox(page: Page, url: str, need: str) -> None:
    page.goto(f"{url}/inbox")
    page.locator("table tr").filter(has_text=need).locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("对接请求")


def test_a_match_becomes_a_signed_deal(
        browser: Browser, mailed_site: tuple[Site, str, Mailbox]) -> None:
    site, url, box = mailed_site
    firm = user_page(browser, url, "firm_a")
    office = user_page(browser, url, "office_u1")

    # The office asks for its messages by e-mail too.
    office.goto(f"{url}/account/notifications")
    office.fill("#f-email", OFFICE_MAIL)
    office.check("input[name=email_mode][value=immediate]")
    office.click("main form button[type=submit]")
    office.goto(f"{url}/account/notifications")
    expect(office.locator("#f-email")).to_have_value(OFFICE_MAIL)
    expect(office.locator("header .unread-count")).to_have_count(0)

    # First request: declined with a reason, which the firm reads.
    request_on_match(firm, url, site, VISION_NEED, VISION,
                     "希望了解该方法在焊装线上的定位精度与授权方式。", ["会面洽谈", "许可条款"])
    expect(firm.locator("h1 .tag").first).to_have_text("待回复")
    expect(firm.locator("dl.facts")).to_contain_text("会面洽谈")

    office.goto(f"{url}/")
    expect(office.locator("header .unread-count")).to_have_text("1")
    office.click("header >> text=对接与消息")
    expect(office.locator("ul.notifications")).to_contain_text(f"发起对接：《{VISION_NEED}》")
    expect(office.locator("table")).to_contain_text(VISION_NEED)
    shot(office, "office-inbox")

    # The e-mail run (cron's `flask send-notifications`) mails the office the new request.
    sent = site.app.test_cli_runner().invoke(args=["send-notifications"])
    assert sent.exit_code == 0, sent.output
    [mail] = [m for m in box.messages if m["To"] == OFFICE_MAIL]
    assert "发起对接" in mail["Subject"] and VISION_NEED in mail["Subject"]

    open_from_inbox(office, url, VISION_NEED)
    expect(office.locator("dl.facts")).to_contain_text("希望了解该方法在焊装线上的定位精度")
    office.select_option("#f-reason", "非本领域")
    office.fill("#f-note", "该方法只适用于平面工件")
    office.click("button.danger")
    expect(office.locator("p.flash")).to_contain_text("已婉拒")
    firm.reload()
    expect(firm.locator("h1 .tag").first).to_have_text("已婉拒")
    expect(firm.locator(".decline-reason")).to_have_text("非本领域：该方法只适用于平面工件")
    expect(firm.locator(".contacts")).to_have_count(0)
    shot(firm, "firm-connection-declined")

    # Second request: accepted, the contacts appear to both sides, then the deal is signed.
    request_on_match(firm, url, site, SERVO_NEED, SERVO,
                     "希望获得控制器的技术资料并洽谈转让。", ["技术资料"])
    expect(firm.locator(".contacts")).to_have_count(0)
    open_from_inbox(office, url, SERVO_NEED)
    expect(office.locator(".contacts")).to_have_count(0)
    office.fill("#f-contact", OFFICE_CONTACT)
    office.click("main button[type=submit]:text-is('接受')")
    expect(office.locator("p.flash")).to_contain_text("已接受对接请求")
    for page in (office, firm):
        page.reload()
        contacts = page.locator(".contacts")
        expect(contacts).to_contain_text(OFFICE_CONTACT)
        expect(contacts).to_contain_text("13800000002 李工")  # the need's contact

    firm.check("input[name=stage][value=signed]")
    firm.select_option("#f-deal_form", "许可")
    firm.fill("#f-deal_amount", "80")
    firm.click("main form button:text-is('保存进展')")
    expect(firm.locator("p.flash")).to_contain_text("进展已更新")
    expect(firm.locator("h1")).to_contain_text("已签约")
    expect(firm.locator(".deal")).to_contain_text("许可 · 80 万元")
    shot(firm, "deal-signed")

    # The officers' dashboard counts the signed deal in its funnel.
    officer = user_page(browser, url, "officer")
    officer.goto(f"{url}/dashboard")
    funnel = officer.locator("#figure-funnel")
    expect(funnel.locator("img.chart")).to_be_visible()
    signed = funnel.locator("table tr").filter(has=officer.locator("td:text-is('已签约')"))
    expect(signed.locator("td").nth(1)).to_have_text("1")
    requests = funnel.locator("table tr").filter(has=officer.locator("td:text-is('发起对接')"))
    expect(requests.locator("td").nth(1)).to_have_text("2")
    shot(officer, "officer-dashboard")
    for page in (firm, office, officer):
        page.context.close()
