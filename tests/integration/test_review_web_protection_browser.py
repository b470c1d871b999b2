"""A reviewer previews and saves a protection on the review page in real Chromium (real app, database, DuckDB).

The table has two row variables and no column variable (region × sex), the shape
sdc.protect once could not protect. Screenshots go to SCREENSHOTS for a person to look at.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_review_web import server, submit  # noqa: F401  (server is a fixture)
from workflow_factories import table_output

from functional.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path("/tmp/onsite-review-screens")


def no_horizontal_overflow(page) -> None:
    """Nothing on the page is wider than the window (a form or table that forces sideways scrolling)."""
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px window"


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("width", [1280, 760])
def test_preview_then_save_a_suppression_in_chromium(server, width):
    from playwright.sync_api import sync_playwright

    base, _ = server
    answer = submit(base, table_output("region_sex", rows=("region", "sex")))
    assert answer.status_code == 201 and answer.json()["outputs"][0]["verdict"] == "fail"
    request_id = answer.json()["id"]
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ja-JP", viewport={"width": width, "height": 900})
            page.goto(base + "test-login?user=bob")
            page.goto(base + f"requests/{request_id}")
            form = page.locator("form.protect-form")
            assert form.locator("legend").first.inner_text() == "秘匿の方法"
            no_horizontal_overflow(page)
            page.locator("section.protect").screenshot(path=str(SCREENSHOTS / f"form-ja-{width}.png"))

            form.get_by_label("セル秘匿(一次・二次秘匿)").check()
            form.locator("button[value=preview]").click()
            preview = page.locator(".protection-preview")
            preview.wait_for(timeout=60_000)
            assert "合格" in preview.locator(".preview-verdict").inner_text()
            rows = preview.locator("table.intervals tbody tr")
            suppressed = {tuple(rows.nth(i).locator("td").all_inner_texts()[:2]) for i in range(rows.count())}
            assert {("C", "F"), ("C", "M")} < suppressed  # the small cells, and at least one secondary cell
            # the service's facts in the page's language, not the raw sdc values
            assert "セル秘匿" in preview.locator(".protection-method").inner_text()
            assert set(rows.locator("td:last-child").all_inner_texts()) == {"保護されている"}
            assert "合格" in preview.locator("table.intervals caption").inner_text()
            messages = preview.locator("td.check-message").all_inner_texts()  # the checks' messages, Japanese too
            assert any(m.startswith("合格: 秘匿セル") for m in messages)
            assert all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", m) for m in messages), messages
            no_horizontal_overflow(page)
            preview.screenshot(path=str(SCREENSHOTS / f"preview-ja-{width}.png"))

            page.locator("form.protect-save button[value=save]").click()
            applied = page.locator(".applied")
            applied.wait_for(timeout=60_000)
            record = applied.locator("tr.protection-record.current")
            assert record.locator(".applied-by").inner_text() == "bob"
            assert "セル秘匿" in record.inner_text()
            released = page.locator("section.output table.cells").first.locator("tbody tr")
            values = {tuple(released.nth(i).locator("th").all_inner_texts()): released.nth(i).locator("td").inner_text()
                      for i in range(released.count())}
            assert values[("C", "F")] == values[("C", "M")] == "" and values[("Total", "Total")] == "57"
            no_horizontal_overflow(page)
            page.screenshot(path=str(SCREENSHOTS / f"saved-ja-{width}.png"), full_page=True)
        finally:
            browser.close()
