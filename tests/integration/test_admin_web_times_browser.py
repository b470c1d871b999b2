"""Times on the admin pages in real Chromium, in Japanese and in English (#19): one rule — the facility network's
zone (`Settings.timezone`, here Europe/London to tell it from the default), shown with the zone; a booking in
its facility's own zone, as it was typed; the entry log's days read in the zone the log is shown in."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_admin_web import FACILITY, RESEARCHER, record_decisions, server  # noqa: F401  (server is a fixture)

from functional.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path("/tmp/onsite-admin-screens")
ZONE = "Europe/London"
HINT = {"ja": f"日付と時刻は施設のタイムゾーン({ZONE})です。", "en": f"Dates and times are in the facility's time zone ({ZONE})."}


@pytest.fixture
def settings(settings):
    settings.timezone = ZONE  # the admin app's subprocess reads it from $ONSITE_TIMEZONE (settings.environ())
    return settings


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_times_are_in_the_facility_zone_with_the_zone(server, language):
    from playwright.sync_api import sync_playwright

    base, settings = server
    written = record_decisions(settings.db_url)
    abbreviation = datetime.now(ZoneInfo(ZONE)).strftime("%Z")  # GMT or BST
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ja-JP" if language == "ja" else "en-US", viewport={"width": 1100, "height": 900})
            page.goto(base + "test-login?user=kato")

            # the entry log: every time in the configured zone, with it; the hint names the zone
            page.goto(base + "entries")
            assert page.locator("#f-dates-hint").inner_text() == HINT[language]
            shown = [row.locator("td").first.inner_text() for row in page.locator("tr[id^=entry-]").all()]
            assert len(shown) == len(written)
            for text in shown:
                moment = datetime.strptime(text, f"%Y-%m-%d %H:%M:%S {abbreviation}").replace(tzinfo=ZoneInfo(ZONE))
                assert abs((datetime.now(ZoneInfo(ZONE)) - moment).total_seconds()) < 600, text
            # a day typed in the filter is a day in the same zone
            today = datetime.now(ZoneInfo(ZONE)).date()
            page.locator("#f-since").fill(today.isoformat())
            page.locator("#f-until").fill(today.isoformat())
            page.locator("#f-since").press("Enter")
            page.wait_for_url(re.compile(r".*since=.*"))
            assert page.locator("tr[id^=entry-]").count() == len(written)
            page.screenshot(path=str(SCREENSHOTS / f"entries-times-{language}.png"))

            # a booking: typed in the facility's own zone (Asia/Tokyo), shown in it, with it
            day = (datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(days=2)).date()
            page.goto(base + "bookings")
            page.locator("#booking-add-username").select_option(RESEARCHER)
            page.locator("#booking-add-facility").select_option(FACILITY)
            page.locator("#booking-add-starts_at").fill(f"{day} 10:00")
            page.locator("#booking-add-ends_at").fill(f"{day} 12:00")
            page.locator("#booking-add button[type=submit]").click()
            row = page.locator("#bookings tbody tr").first
            row.wait_for()
            cells = row.locator("td").all_inner_texts()
            assert cells[3:5] == [f"{day} 10:00 JST", f"{day} 12:00 JST"], cells
            page.screenshot(path=str(SCREENSHOTS / f"bookings-times-{language}.png"))
        finally:
            browser.close()
