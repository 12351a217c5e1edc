"""Screenshots of each role's main page on the running demo site, for the README.

Usage: start the site (./run.sh), then `python scripts/screenshots.py [--url URL] [--out DIR]`.
Uses Debian's Chromium through Playwright, like the browser tests.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.demo import DEMO_PASSWORD  # noqa: E402

# The same browser and flags as tests/support/browser.py, kept apart on purpose: scripts do not
# import the tests. Without the background-networking flags Chromium keeps trying to reach
# Google's hosts, which this closed network refuses.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def login(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("header .who")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for username, pages in (
            ("firm", [("firm-home", "/"), ("firm-need-matches", "/needs/{need}")]),
            ("office", [("office-home", "/"), ("office-upload", "/results/upload"),
                        ("office-inbox", "/inbox"), ("office-dashboard", "/dashboard")]),
            ("officer", [("officer-home", "/"), ("officer-coverage", "/results/coverage"),
                         ("officer-shortlists", "/shortlists/"),
                         # The funnel (issue 14's figure) sits below the page's first screen.
                         ("officer-dashboard", "/dashboard#figure-funnel")]),
        ):
            context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            login(page, args.url, username)
            for name, path in pages:
                if "{need}" in path:  # the firm's first need, as listed on its home page
                    link = page.locator("main table a[href^='/needs/']").first.get_attribute("href")
                    path = path.format(need=(link or "").rsplit("/", 1)[-1])
                page.goto(args.url + path)
                if "#" in path:  # the charts above it load late and move it: scroll once they have
                    page.locator("#" + path.split("#", 1)[1]).evaluate("e => e.scrollIntoView()")
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=False)
                print(args.out / f"{name}.png")
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
