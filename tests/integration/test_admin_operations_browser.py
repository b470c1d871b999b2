"""The operations view in real Chromium, in Japanese and in English (issue 16): the page updates a figure by
itself when the ledger changes (no reload), and the overview, a facility and the usage statistics are laid out
at 1280 and 760 px without horizontal overflow and with their tables readable; a facility manager's view of her
facility alone too. Screenshots in SCREENSHOTS."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_admin_operations import facility_number, start_session, write
from test_admin_web import FACILITY, OTHER_FACILITY, RESEARCHER, server  # noqa: F401  (server is a fixture)

from access_control import policy
from functional.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path("/tmp/onsite-operations-screens")
HEADING = {"ja": "全施設の運用状況", "en": "Every facility now"}
MANAGED_HEADING = {"ja": "担当施設の運用状況", "en": "Your facilities now"}
USAGE = {"ja": "施設・月別の利用統計", "en": "Usage by facility and month"}
WIDTHS = (1280, 760)
NAV_OPERATIONS = {"ja": "運用状況", "en": "Operations"}
AS_OF_PENDING = {"ja": "集計中(初回)", "en": "being tallied for the first time"}


@pytest.fixture
def settings(settings, monkeypatch):
    monkeypatch.setenv("ONSITE_OPERATIONS_REFRESH_SECONDS", "5")  # the app's process reads it at start (its environment)
    return settings


def more_facilities(session) -> None:
    """A network's worth of long names, so that the layout is tried with real widths."""
    for i in range(8):
        name = f"国立大学法人 第{i + 1}地区 統計データ利活用センター オンサイト施設"
        policy.add_facility(session, name=name, actor="test")
        policy.add_terminal(session, facility=name, address=f"198.51.100.{i + 10}", label=f"席 {i + 1}", actor="test")


def layout_problems(page) -> list[str]:
    """What makes the page hard to use at this width: the page scrolls sideways, text too small, squeezed cells."""
    return page.evaluate("""() => {
        const problems = [];
        const root = document.scrollingElement;
        if (root.scrollWidth > window.innerWidth) problems.push(`page ${root.scrollWidth}px wide in ${window.innerWidth}px`);
        for (const cell of document.querySelectorAll("main table th, main table td")) {
            if (cell.getClientRects().length === 0) continue;  // in a hidden table (no refusal to list): not shown
            const style = getComputedStyle(cell);
            if (parseFloat(style.fontSize) < 12) problems.push(`text ${style.fontSize} in ${cell.textContent.trim().slice(0, 20)}`);
            const box = cell.getBoundingClientRect();
            if (cell.textContent.trim() && box.width < 24) problems.push(`cell ${box.width}px wide: ${cell.textContent.trim().slice(0, 20)}`);
        }
        return problems;
    }""")


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_operations_view_refreshes_itself_and_fits_1280_and_760(server, language):
    from playwright.sync_api import expect, sync_playwright

    base, settings = server
    write(settings.db_url, more_facilities)
    tokyo = facility_number(settings.db_url, FACILITY)
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ja-JP" if language == "ja" else "en-US", viewport={"width": 1280, "height": 900})
            page.goto(base + "test-login?user=kato")
            page.goto(base + "operations")
            assert page.locator("h1").inner_text() == HEADING[language]
            in_use = page.locator(f'[data-live="f{tokyo}.in_use"]')
            assert in_use.inner_text() == "0"

            # a session starts at Tokyo: the figure changes by itself, the page is not loaded again
            page.evaluate("window.notReloaded = true")
            start_session(settings.db_url, RESEARCHER, "192.0.2.3")
            expect(in_use).to_have_text("1", timeout=20_000)  # polled from here: the page's CSP allows no eval
            assert page.evaluate("window.notReloaded") is True
            assert page.locator("#refresh-error").is_hidden()

            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for name, path in (("operations", "operations"), ("facility", f"operations/{tokyo}"), ("usage", "usage")):
                    page.goto(base + path)
                    if name == "usage":
                        assert page.locator("h1").inner_text() == USAGE[language]
                        assert page.locator("svg.chart").is_visible()
                    page.screenshot(path=str(SCREENSHOTS / f"{name}-{language}-{width}.png"), full_page=True)
                    assert layout_problems(page) == [], f"{name} at {width}px"
        finally:
            browser.close()


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_facility_managers_operations_view_shows_her_facility_only_and_fits(server, language):
    """mika manages Osaka: her menu leads to the operations view and usage of Osaka alone (Tokyo's live session
    nowhere), which refresh by themselves and are laid out at 1280 and 760 px."""
    from playwright.sync_api import expect, sync_playwright

    base, settings = server
    write(settings.db_url, lambda s: (more_facilities(s), policy.add_person(s, username="mika", display_name="Mika", actor="test"),
                                      policy.grant_facility_manager(s, "mika", OTHER_FACILITY, actor="test")))
    osaka = facility_number(settings.db_url, OTHER_FACILITY)
    start_session(settings.db_url, RESEARCHER, "192.0.2.3")  # at Tokyo
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ja-JP" if language == "ja" else "en-US", viewport={"width": 1280, "height": 900})
            page.goto(base + "test-login?user=mika")
            page.goto(base + "facilities")
            page.locator("nav a", has_text=NAV_OPERATIONS[language]).click()
            assert page.locator("h1").inner_text() == MANAGED_HEADING[language]
            assert page.locator("tr[id^='facility-']").count() == 1 and page.locator(f"#facility-{osaka}").is_visible()
            expect(page.locator("#as-of")).not_to_have_text(AS_OF_PENDING[language], timeout=20_000)  # refreshed in place
            assert FACILITY not in page.content() and RESEARCHER not in page.content()
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for name, path in (("operations", "operations"), ("facility", f"operations/{osaka}"), ("usage", "usage")):
                    page.goto(base + path)
                    assert FACILITY not in page.content(), f"{name}: Tokyo shown"
                    page.screenshot(path=str(SCREENSHOTS / f"manager-{name}-{language}-{width}.png"), full_page=True)
                    assert layout_problems(page) == [], f"manager's {name} at {width}px"
        finally:
            browser.close()
