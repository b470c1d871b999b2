"""The ingress reviewer pages in real Chromium (real app and database): list and request page in Japanese at
1280 and 760 px, a wide CSV's preview scrolling inside its box, approval through the form.

Screenshots go to SCREENSHOTS for a person to look at.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from integration.test_review_web import server  # noqa: F401  (server is a fixture)
from integration.test_review_web_ingress import bring_in
from integration.test_review_web_protection_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, no_horizontal_overflow

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# 30 columns of long Japanese labels: far wider than any window
COLUMNS = [f"市区町村名称_{i:02d}" for i in range(30)]
WIDE = ("code," + ",".join(COLUMNS) + "\n" + "".join(
    f"{r:05d}," + ",".join(f"北海道札幌市中央区大通西{r}丁目{i}" for i in range(30)) + "\n" for r in range(1, 26))).encode()


def box_scrolls_sideways(page, selector: str) -> bool:
    """The element is narrower than its content and scrolls it (overflow-x auto or scroll)."""
    return page.evaluate(
        """s => { const e = document.querySelector(s); const o = getComputedStyle(e).overflowX;
                  return e.scrollWidth > e.clientWidth && (o === 'auto' || o === 'scroll'); }""", selector)


def cells_on_one_line(page, selector: str) -> bool:
    """Every th/td under `selector` is one line high (Japanese text is not broken character by character)."""
    return page.evaluate(
        """s => [...document.querySelectorAll(s + ' th, ' + s + ' td')].every(c => {
                  const st = getComputedStyle(c);
                  const inner = c.clientHeight - parseFloat(st.paddingTop) - parseFloat(st.paddingBottom);
                  return inner < 1.5 * parseFloat(st.lineHeight); })""", selector)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium at /usr/bin/chromium")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("width", [1280, 760])
def test_ingress_list_and_request_page_in_japanese_then_approve_in_chromium(server, width):
    from playwright.sync_api import sync_playwright

    base, _ = server
    answer = bring_in(base, content=WIDE, filename="municipalities.csv", name="municipality_names")
    assert answer.status_code == 201, answer.text
    request_id = answer.json()["id"]
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for reviewer, decided in (("bob", "審査待ち"), ("carol", "承認済み(利用可能)")):
                page = browser.new_page(locale="ja-JP", viewport={"width": width, "height": 900})
                page.goto(base + f"test-login?user={reviewer}")
                page.goto(base + "ingress")
                assert page.locator("h1").inner_text() == "持込みデータの申請"
                link = page.locator("#ingress-queue a", has_text="reference.municipality_names")
                assert link.count() == 1
                assert cells_on_one_line(page, "#ingress-queue")
                no_horizontal_overflow(page)
                page.screenshot(path=str(SCREENSHOTS / f"ingress-list-ja-{width}-{reviewer}.png"), full_page=True)

                link.click()
                page.wait_for_url(f"**/ingress/{request_id}")
                assert page.locator("#ingress-rows").inner_text() == "25"
                assert page.locator("#ingress-preview th").first.inner_text() == "code"
                assert page.locator("#ingress-preview tbody tr").count() == 20
                assert box_scrolls_sideways(page, "#ingress-preview .scroll")  # the wide table scrolls in its box
                assert cells_on_one_line(page, "#ingress-preview")
                no_horizontal_overflow(page)  # ... and does not widen the page
                page.screenshot(path=str(SCREENSHOTS / f"ingress-request-ja-{width}-{reviewer}.png"), full_page=True)

                form = page.locator("form.vote")
                form.get_by_label("承認").check()
                form.locator("button[type=submit]").click()
                page.locator("p.message").wait_for()
                assert page.locator("p.message").inner_text() == "投票を記録しました。"
                assert page.locator("#ingress-status").inner_text() == decided
                assert page.locator("form.vote").count() == (1 if decided != "審査待ち" else 0)  # the retire form
                no_horizontal_overflow(page)
                page.close()
            page = browser.new_page(locale="ja-JP", viewport={"width": width, "height": 900})
            page.goto(base + "test-login?user=carol")
            page.goto(base + f"ingress/{request_id}")
            retire = page.locator("#ingress-retire")
            assert retire.locator("h2").inner_text() == "利用を終了する"
            no_horizontal_overflow(page)
            page.screenshot(path=str(SCREENSHOTS / f"ingress-approved-ja-{width}.png"), full_page=True)
        finally:
            browser.close()
