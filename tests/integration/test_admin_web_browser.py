"""What an administrator sees on the admin pages in real Chromium, in Japanese and in English (issue 19):
refusals in the page's language next to the form with a link to the page that shows what they name, the
rule preset as a choice of the presets the review service knows, length limits on the fields, and each
action answered with what it did. Real app (a subprocess), real store; screenshots go to SCREENSHOTS."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_admin_web import FACILITY, RESEARCHER, server, snapshot  # noqa: F401  (server is a fixture)
from test_review_web_protection_browser import CHROMIUM, CHROMIUM_ARGS

from access_control.models import MAX_NAME, MAX_PURPOSE
from disclosure_review.sdc.rules import preset_names

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path("/tmp/onsite-admin-screens")
SEEN = {
    "ja": {"problem": "入力に問題があります。何も変更していません。",
           "zone": "端末アドレス「fe80::1%eth0」にゾーン ID(「%」以降)が付いています",
           "exists": "利用者「alice」はすでに登録されています", "see": "確認する: 利用者 › alice",
           "member": f"{RESEARCHER} をプロジェクト p1 のメンバーに追加しました", "preset": "審査基準",
           "terminal": "端末 192.0.2.200/32 を施設 東京オンサイト施設 に登録しました"},
    "en": {"problem": "There is a problem with the input; nothing was changed.",
           "zone": "terminal address 'fe80::1%eth0' carries a zone id (after '%')",
           "exists": "person 'alice' already exists", "see": "See: People › alice",
           "member": f"added {RESEARCHER} to project p1", "preset": "Rule preset",
           "terminal": "added terminal 192.0.2.200/32 at 東京オンサイト施設"},
}


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium at /usr/bin/chromium")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_an_administrator_sees_refusals_choices_limits_and_what_was_done(server, language):
    from playwright.sync_api import sync_playwright

    base, settings = server
    seen = SEEN[language]
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ja-JP" if language == "ja" else "en-US", viewport={"width": 1100, "height": 900})
            page.goto(base + "test-login?user=kato")

            # a terminal address no client can have: refused in the page's language, nothing changed
            before = snapshot(settings.db_url)
            page.goto(base + "terminals")
            page.locator("#terminal-add-facility").select_option(FACILITY)
            page.locator("#terminal-add-address").fill("fe80::1%eth0")
            page.locator("#terminal-add button[type=submit]").click()
            alert = page.locator("#error-terminal-add")
            alert.wait_for()
            assert seen["problem"] in alert.inner_text() and seen["zone"] in alert.inner_text()
            assert page.locator("#terminal-add-address").input_value() == "fe80::1%eth0"  # kept to correct
            assert page.locator("#terminal-add-label").get_attribute("maxlength") == str(MAX_NAME)
            alert.screenshot(path=str(SCREENSHOTS / f"terminal-refused-{language}.png"))
            assert snapshot(settings.db_url) == before

            page.locator("#terminal-add-address").fill("192.0.2.200")
            page.locator("#terminal-add button[type=submit]").click()
            page.locator("#done").wait_for()
            assert page.locator("#done").inner_text() == seen["terminal"]

            # a person who exists: the refusal links the person's page, and the link leads there
            page.goto(base + "people")
            page.locator("#person-add-username").fill("alice")
            page.locator("#person-add-display_name").fill("Alice again")
            page.locator("#person-add button[type=submit]").click()
            page.locator("#error-person-add").wait_for()
            assert seen["exists"] in page.locator("#error-person-add").inner_text()
            assert "onsite admin" not in page.locator("#error-person-add").inner_text()
            link = page.locator("#see-person-add")
            assert link.inner_text() == seen["see"]
            page.locator("#error-person-add").screenshot(path=str(SCREENSHOTS / f"person-exists-{language}.png"))
            link.click()
            page.wait_for_url(base + "people/alice")

            # the rule preset is a choice among the review service's presets; the purpose has its limit
            page.goto(base + "projects")
            preset = page.locator("#project-add-preset")
            assert page.locator("label[for=project-add-preset]").inner_text() == seen["preset"]
            assert preset.locator("option").all_inner_texts() == preset_names() and preset.input_value() == "acro-default"
            assert page.locator("#project-add-purpose").get_attribute("maxlength") == str(MAX_PURPOSE)

            # adding a member says so, not "the project was changed"
            page.goto(base + "projects/p1")
            page.locator("#members-username").fill(RESEARCHER)
            page.locator("#member-add button[type=submit]").click()
            page.locator("#done").wait_for()
            assert page.locator("#done").inner_text() == seen["member"]
            page.screenshot(path=str(SCREENSHOTS / f"member-added-{language}.png"), full_page=True)

            # a link made elsewhere cannot make a page claim a change (what was done is signed)
            page.goto(base + "people?done=done_person_added&name=mallory")
            assert page.locator("#done").count() == 0
        finally:
            browser.close()
