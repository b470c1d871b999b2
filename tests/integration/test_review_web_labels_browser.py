"""What a reviewer reads on the review pages in real Chromium, in Japanese and in English (#19): codes with their
labels in the cells, the checks and the extract's risky combinations; check parameters as a list; times in the
facility's zone with the zone; a released request's package (files, SHA-256, votes; names to reviewers,
pseudonyms to the researcher). Real app (a subprocess), real store and DuckDB; screenshots go to SCREENSHOTS
(docs/images/review-labels-ja.png is the Japanese request page at 1100 px)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from test_review_web import login, output_ids, server, submit, xsrf_of  # noqa: F401  (server is a fixture)
from test_review_web_labels import EXTRACT, PASSING, TABLE, labelled_world

from functional.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path("/tmp/onsite-review-screens")
SEEN = {
    "ja": {"small": ("19 山梨県", "2 女"), "flagged": "19 山梨県 / 2 女", "threshold": ("しきい値", "10"),
           "package": "公表パッケージ", "approve": "承認", "locale": "ja-JP"},
    "en": {"small": ("19 Yamanashi", "2 Female"), "flagged": "19 Yamanashi / 2 Female", "threshold": ("threshold", "10"),
           "package": "Release package", "approve": "approve", "locale": "en-US"},
}
ZONED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d JST")


def approve_all(base: str, request_id: int) -> None:
    """Both reviewers approve every output (over HTTP, as the vote form posts)."""
    for reviewer in ("bob", "carol"):
        who = login(base, reviewer)
        page = who.get(base + f"requests/{request_id}").text
        for output_id in output_ids(page):
            r = who.post(base + f"requests/{request_id}/outputs/{output_id}/vote",
                         data={"decision": "APPROVE", "_xsrf": xsrf_of(page)})
            assert r.status_code == 200, r.text


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_reviewer_reads_labels_parameters_times_and_the_package(server, language):
    from playwright.sync_api import sync_playwright

    base, settings = server
    labelled_world(settings)
    seen = SEEN[language]
    pending = submit(base, TABLE, EXTRACT).json()["id"]
    released = submit(base, PASSING).json()["id"]
    approve_all(base, released)
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale=seen["locale"], viewport={"width": 1100, "height": 900})
            page.goto(base + "test-login?user=bob")
            page.goto(base + f"requests/{pending}")
            table, extract = page.locator("section.output").nth(0), page.locator("section.output").nth(1)

            # 1. codes with their labels, in the page's language
            heads = [tuple(row.locator("th").all_inner_texts()) for row in table.locator("table.cells tbody tr").all()]
            assert seen["small"] in heads and ("19", "2") not in heads
            failing = table.locator("table.cells tr.cell-fail")
            assert tuple(failing.locator("th").all_inner_texts()) == seen["small"]  # the failing cell, labelled
            assert seen["flagged"] in table.locator("table.checks ul.flagged-cells").first.inner_text()
            combination = extract.locator("tr.risky-combination").first.locator("td").all_inner_texts()
            assert tuple(combination[:2]) == seen["small"]

            # 3. the parameters column is a list in the page's language, never JSON
            names = table.locator("table.checks dl.parameters dt").all_inner_texts()
            values = table.locator("table.checks dl.parameters dd").all_inner_texts()
            assert seen["threshold"] in zip(names, values)
            assert "{" not in table.locator("table.checks").inner_text()

            # 2. times in the facility's zone, with the zone
            submitted = page.locator("dl.facts dd").nth(3).inner_text()
            assert ZONED.fullmatch(submitted), submitted
            top, checks = table.bounding_box(), table.locator("table.checks").first.bounding_box()
            page.screenshot(path=str(SCREENSHOTS / f"review-labels-{language}.png"), full_page=True,  # cells and checks
                            clip={"x": 0, "y": top["y"] - 8, "width": 1100, "height": checks["y"] + checks["height"] - top["y"] + 16})

            # 4. the released package: files, SHA-256, votes, named to the reviewer
            page.goto(base + "queue")
            page.locator(f'#released a[href$="requests/{released}#package"]').click()
            package = page.locator("section#package")
            assert package.locator("h2").inner_text() == seen["package"]
            assert ZONED.fullmatch(package.locator("#package-released-at").inner_text())
            digest = package.locator("#manifest-sha256").inner_text()
            assert re.fullmatch(r"[0-9a-f]{64}", digest)
            row = package.locator("tr.package-file").first
            assert row.locator("td.file-name").inner_text() == "by_sex.csv"
            stored = settings.egress_dir / str(released)
            assert row.locator("code.sha256").inner_text() == hashlib.sha256((stored / "by_sex.csv").read_bytes()).hexdigest()
            assert digest == hashlib.sha256((stored / "manifest.json").read_bytes()).hexdigest()
            votes = row.locator("ul.package-votes li").all_inner_texts()
            assert [v.split(":")[0] for v in votes] == ["bob (reviewer-1)", "carol (reviewer-2)"]
            assert all(seen["approve"] in v and ZONED.search(v) for v in votes)
            package.screenshot(path=str(SCREENSHOTS / f"package-reviewer-{language}.png"))

            # 5. the researcher's page: the same package, reviewers by pseudonym only
            researcher = browser.new_page(locale=seen["locale"], viewport={"width": 1100, "height": 900})
            researcher.goto(base + "test-login?user=alice")
            researcher.goto(base + f"requests/{released}")
            theirs = researcher.locator("section#package")
            assert theirs.locator("#manifest-sha256").inner_text() == digest
            assert [v.split(":")[0] for v in theirs.locator("ul.package-votes li").all_inner_texts()] == ["reviewer-1", "reviewer-2"]
            assert "bob" not in theirs.inner_text() and "carol" not in theirs.inner_text()
            theirs.screenshot(path=str(SCREENSHOTS / f"package-researcher-{language}.png"))
        finally:
            browser.close()
