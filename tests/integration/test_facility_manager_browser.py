"""A facility manager's pages in real Chromium, in Japanese and in English (issue 16): she closes her facility on
the year's public holidays and books a seat through the forms, sees the free seats go down, and every page she
has — facilities, terminals, bookings, entry log, sessions — is laid out at 1280 and 760 px without horizontal
overflow and with readable tables. Screenshots in SCREENSHOTS."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_admin_operations_browser import layout_problems
from test_facility_manager_web import DAY, MANAGER, OSAKA, RESEARCHER, TOKYO, server  # noqa: F401  (server is a fixture)

from admin_service.i18n import MESSAGES
from functional.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path("/tmp/onsite-facility-manager-screens")
WIDTHS = (1280, 760)
PAGES = ("facilities", "terminals", "bookings", "entries", "sessions")
HEADINGS = ("facilities_heading", "terminals_heading", "bookings_heading", "entries_heading", "sessions_heading")
BOOKED = {"ja": "予約 ", "en": "booking "}


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_managers_pages_work_and_fit_1280_and_760(server, language):
    from playwright.sync_api import sync_playwright

    base, settings, _ = server
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ja-JP" if language == "ja" else "en-US", viewport={"width": 1280, "height": 900})
            page.goto(base + f"test-login?user={MANAGER}")
            page.goto(base)
            assert page.url.endswith("facilities")
            nav = page.locator("header nav").inner_text()
            assert ("利用者" if language == "ja" else "People") not in nav  # the administrators' pages are not offered

            page.fill("#facility-holidays-year", str(DAY.year))
            page.click("#facility-holidays button[type=submit]")
            assert page.locator("#done").is_visible()
            assert "元日" in page.locator("#facilities").inner_text()  # the holiday's Japanese name, in both languages
            page.fill("#facility-change-seats", "2")
            page.click("#facility-change button[type=submit]")
            assert page.locator("#done").is_visible()

            page.goto(base + "bookings")
            row = page.locator("#seats-1 tr", has_text=DAY.isoformat())
            assert row.locator("td").nth(1).inner_text() == "2"  # free seats that day
            page.fill("#booking-add-username", RESEARCHER)
            page.fill("#booking-add-starts_at", f"{DAY} 09:00")
            page.fill("#booking-add-ends_at", f"{DAY} 12:00")
            page.click("#booking-add button[type=submit]")
            assert BOOKED[language] in page.locator("#done").inner_text()
            assert page.locator("#seats-1 tr", has_text=DAY.isoformat()).locator("td").nth(1).inner_text() == "1"

            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for name, heading in zip(PAGES, HEADINGS):
                    page.goto(base + name)
                    assert page.locator("h1").inner_text() == MESSAGES[heading][language]
                    assert TOKYO not in page.content()
                    page.screenshot(path=str(SCREENSHOTS / f"{name}-{language}-{width}.png"), full_page=True)
                    assert layout_problems(page) == [], f"{name} at {width}px"
        finally:
            browser.close()
