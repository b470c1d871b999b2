"""The researcher's path in Chromium, as a newcomer walks it (#19), in a Japanese and an English site.

A real hub seeded as `make up` seeds it, the site language set by
`ONSITE_LANGUAGE` (the browser asks for the same). The researcher logs in,
JupyterLab opens in the project folder without asking to fetch Jupyter news;
the launcher's notebook lands in that folder and its kernel starts without a
kernel dialog; `connect()`'s summary and a table's verdict speak the site's
language and say which check only the service runs; the Onsite menu opens "my
requests" in the review app; two reviewers approve the request and the
researcher downloads the package from its page; after a server restart the
notebook comes back with its kernel and no "No Kernel" prompt; the hub home
leads to the same pages. JupyterLab's own launcher and menus speak the site's
language too, with no Japanese label left without its object (Onsite's
catalogue over the language pack, singleuser/lab_translations.py).
Screenshots go to /tmp/onsite-researcher-screens; docs/images holds copies of
three Japanese ones for docs/how-to/researcher.md (researcher-onsite-menu-ja.png,
researcher-my-requests-ja.png, researcher-request-released-ja.png from
lab-onsite-menu.png, my-requests.png, request-released.png).
"""
from __future__ import annotations

import html
import io
import re
import time
import zipfile
from pathlib import Path

import pytest

from functional.browser import CHROMIUM, CHROMIUM_ARGS, LONG, needs_chromium, run_cell
from functional.hubtools import HubUser, RunningHub
from functional.seeding import seed_demo
from onsite.demo import DEMO_PROJECT

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(900), needs_chromium]

REVIEW = "/services/onsite-review"
SCREENSHOTS = Path("/tmp/onsite-researcher-screens")

TEXT = {
    "ja": {"browser": "ja-JP", "summary": "プロジェクト", "preset": "ルールプリセット", "service_only": "審査サービスだけが行うチェック",
           "mine_item": "自分の公表申請（結果の受け取り）", "mine_heading": "自分の公表申請", "download": "公表パッケージをダウンロード",
           "home_link": "自分の公表申請", "released": "公表済み"},
    "en": {"browser": "en-US", "summary": "project", "preset": "rule preset", "service_only": "Checked only by the review service",
           "mine_item": "My requests (collect released results)", "mine_heading": "My release requests",
           "download": "Download the release package", "home_link": "My requests", "released": "released"},
}
LAB = {  # JupyterLab's own labels: launcher, File menu (launcher current, then a notebook), the tab's context menu
    "ja": {"launcher": {"ノートブック", "Pythonファイル"}, "file": "ファイル", "new": "新規", "new_items": {"ノートブック", "Pythonファイル"},
           "save": "保存", "document": {"保存", "別名で保存…", "名前を変更…", "複製", "新しいビュー"},
           "tab": {"新しいビュー", "名前を変更…", "タブを分割"}},
    "en": {"launcher": {"Notebook", "Python File"}, "file": "File", "new": "New", "new_items": {"Notebook", "Python File"},
           "save": "Save", "document": {"Save Notebook", "Save Notebook As…", "Rename Notebook…", "Duplicate Notebook",
                                        "New View for Notebook"},
           "tab": {"New View for Notebook", "Rename Notebook…", "Split Tab"}},
}
OBJECT_LEFT_OUT = re.compile(r"^\s*[をのにへ]")  # "を保存", "の新しいビュー": JupyterLab filled the object with nothing
NEWS = re.compile(r"Jupyter news|ニュース", re.I)
KERNEL_DIALOG = re.compile(r"Select Kernel|No Kernel|カーネルの選択|カーネルなし", re.I)


@pytest.fixture(scope="module", params=["ja", "en"])
def site(request, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"onsite-lab-{request.param}")
    _, logins = seed_demo(home, rows=3000)
    hub = RunningHub(home)
    hub.env["ONSITE_LANGUAGE"] = request.param
    with hub:
        yield request.param, hub, logins


def approve_everything(hub: RunningHub, logins, request_id: int) -> None:
    """Both demo reviewers approve every output of the request on its page."""
    for name in ("sato", "suzuki"):
        reviewer = HubUser(hub, name)
        assert reviewer.login(logins[name].password).status_code == 302
        page = reviewer.http.get(f"{hub.url}{REVIEW}/requests/{request_id}", timeout=60).content.decode("utf-8")
        xsrf = html.unescape(re.search(r'name="_xsrf" value="([^"]+)"', page).group(1))
        for action in sorted(set(re.findall(rf'action="([^"]*requests/{request_id}/outputs/\d+/vote)"', page))):
            voted = reviewer.http.post(f"{hub.url}{html.unescape(action)}", timeout=60,
                                       data={"_xsrf": xsrf, "decision": "APPROVE", "comment": "Checked."})
            assert voted.status_code == 200, voted.text[:300]


def kernel_started(page) -> None:
    """The notebook's kernel is idle, and no dialog asked for a kernel on the way."""
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-Dialog", timeout=LONG)
    texts = page.locator(".jp-Dialog").all_inner_texts()
    assert not [t for t in texts if KERNEL_DIALOG.search(t)], texts
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=LONG)


def test_the_researchers_path_in_chromium(site):
    from playwright.sync_api import sync_playwright

    lang, hub, logins = site
    text = TEXT[lang]
    shots = SCREENSHOTS / lang
    shots.mkdir(parents=True, exist_ok=True)
    workspace = hub.home / "workspaces" / "tanaka" / DEMO_PROJECT
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale=text["browser"], viewport={"width": 1400, "height": 900},
                                          accept_downloads=True)
            page = context.new_page()
            page.goto(f"{hub.url}/hub/login")
            page.fill("input[name=username]", "tanaka")
            page.fill("input[name=password]", logins["tanaka"].password)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url("**/user/tanaka/lab**", timeout=LONG)
            page.wait_for_selector(".jp-DirListing-content", timeout=LONG)

            # The file browser opens in the project folder; the launcher's notebook is created there.
            page.locator(".jp-BreadCrumbs", has_text=DEMO_PROJECT).wait_for(timeout=30_000)
            page.locator(".jp-LauncherCard[data-category='Notebook'], .jp-LauncherCard[data-category='ノートブック']"
                         ).first.click(timeout=LONG)
            page.wait_for_selector(".jp-Notebook", timeout=LONG)
            assert list(workspace.glob("*.ipynb")), "the launcher's notebook is not in the project folder"
            assert not list((hub.home / "workspaces" / "tanaka").glob("*.ipynb"))
            # Its kernel starts by itself (no kernel dialog); the news feed is off in the page's configuration.
            kernel_started(page)
            config = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent)")
            assert config["news"] == {"disabled": True} and config["preferredPath"].strip("/") == DEMO_PROJECT

            shown = run_cell(page, text["preset"], "import analysis_kernel; db = analysis_kernel.connect(); db")
            assert text["summary"] in shown and DEMO_PROJECT in shown and "lfs_demo" in shown
            shown = run_cell(page, "differencing", 'from analysis_kernel import outputs; t = outputs.frequency_table(db, '
                                                   '"SELECT * FROM lfs_demo", rows="sex", name="persons_by_sex"); t')
            assert text["service_only"] in shown
            shown = run_cell(page, "SUBMITTED", 'r = analysis_kernel.request_release([t], title="Persons by sex", '
                                                'purpose="Table 1 of the paper"); r["id"]')
            request_id = int(re.search(r"(?:公表申請|release request) (\d+): SUBMITTED", shown).group(1))
            page.screenshot(path=str(shots / "lab-notebook.png"))
            # By now JupyterLab would have asked whether to fetch the official Jupyter news.
            assert not NEWS.search(" ".join(page.locator(".Toastify, .jp-Notification-List").all_inner_texts()))

            # The Onsite menu opens "my requests" in the review app, in a new tab.
            page.click(".lm-MenuBar-itemLabel:text-is('Onsite')")
            page.wait_for_selector(".lm-Menu:visible")
            page.screenshot(path=str(shots / "lab-onsite-menu.png"))
            with context.expect_page() as opened:
                page.click(f".lm-Menu-itemLabel:text-is('{text['mine_item']}')")
            mine = opened.value
            mine.wait_for_load_state()
            assert mine.url.endswith(f"{REVIEW}/mine")
            mine.locator("h1", has_text=text["mine_heading"]).wait_for(timeout=30_000)
            assert mine.locator(f"#mine a[href$='requests/{request_id}']").count() == 1

            # Two reviewers approve; the researcher sees it released and downloads the package from its page.
            approve_everything(hub, logins, request_id)
            mine.reload()
            mine.locator("#mine", has_text=text["released"]).wait_for(timeout=30_000)
            # The reviewers' comments (seen inside the session), one a line, no empty line first.
            assert mine.locator("#mine td.comment").first.inner_text().split("\n") == ["persons_by_sex: Checked."] * 2
            mine.screenshot(path=str(shots / "my-requests.png"), full_page=True)
            mine.click(f"#mine a[href$='requests/{request_id}']")
            mine.wait_for_selector("#download", timeout=30_000)
            assert text["download"] in mine.inner_text("#download")
            mine.screenshot(path=str(shots / "request-released.png"), full_page=True)
            with mine.expect_download() as downloaded:
                mine.click("#download")
            with zipfile.ZipFile(io.BytesIO(Path(downloaded.value.path()).read_bytes())) as archive:
                names = {name.split("/", 1)[1] for name in archive.namelist()}
            assert names == {"persons_by_sex.csv", "manifest.json", "manifest.sig"}

            # The hub home leads to the same pages; the unused token link is gone.
            home = context.new_page()
            home.goto(f"{hub.url}/hub/home")
            link = home.locator("#my-requests")
            assert link.inner_text().strip() == text["home_link"] and link.get_attribute("href").endswith(f"{REVIEW}/mine")
            assert home.locator("a[href$='/hub/token']").count() == 0
            home.screenshot(path=str(shots / "hub-home.png"))

            # After a server restart the notebook comes back with its kernel, without a kernel prompt.
            page.keyboard.press("Control+s")
            researcher = HubUser(hub, "tanaka")
            assert researcher.login(logins["tanaka"].password).status_code == 302
            api = f"{hub.url}/hub/api/users/tanaka"
            assert researcher.http.delete(f"{api}/server", headers=researcher._hub_xsrf(), timeout=60).status_code in (202, 204)
            deadline = time.monotonic() + 60
            while researcher.http.get(api, headers=researcher._hub_xsrf(), timeout=10).json().get("servers") \
                    and time.monotonic() < deadline:
                time.sleep(0.5)
            assert researcher.start_server().status_code in (201, 202)
            page.goto(f"{hub.url}/user/tanaka/lab")
            page.wait_for_selector(".jp-Notebook", timeout=LONG)
            kernel_started(page)
            page.screenshot(path=str(shots / "lab-after-restart.png"))
        finally:
            browser.close()


def menu_labels(page) -> list[str]:
    page.wait_for_selector(".lm-Menu:visible")
    return [label.strip() for label in page.locator(".lm-Menu:visible .lm-Menu-itemLabel").all_inner_texts()]


def test_jupyterlab_speaks_the_sites_language(site):
    """The launcher, the File menu and a tab's context menu in the site's language: in Japanese no English
    "Notebook"/"Python File"/"Duplicate" and no label missing its object; the English site keeps JupyterLab's own."""
    from playwright.sync_api import sync_playwright

    lang, hub, logins = site
    text, lab = TEXT[lang], LAB[lang]
    shots = SCREENSHOTS / lang
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale=text["browser"], viewport={"width": 1400, "height": 900}).new_page()
            page.goto(f"{hub.url}/hub/login")
            page.fill("input[name=username]", "tanaka")
            page.fill("input[name=password]", logins["tanaka"].password)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url("**/user/tanaka/lab**", timeout=LONG)
            page.goto(f"{hub.url}/user/tanaka/lab?reset")  # a fresh workspace: the launcher is the current tab
            page.wait_for_selector(".jp-LauncherCard", timeout=LONG)
            shown = set(page.locator(".jp-Launcher-sectionTitle, .jp-LauncherCard-label").all_inner_texts())
            assert lab["launcher"] <= shown, shown

            # File, with the launcher current: the document commands have no document to name.
            page.click(f".lm-MenuBar-itemLabel:text-is('{lab['file']}')")
            labels = menu_labels(page)
            assert lab["save"] in labels and not [label for label in labels if OBJECT_LEFT_OUT.match(label)], labels
            page.hover(f".lm-Menu-itemLabel:text-is('{lab['new']}')")
            page.wait_for_selector(".lm-Menu:visible >> nth=1")
            new_items = set(page.locator(".lm-Menu:visible").nth(1).locator(".lm-Menu-itemLabel").all_inner_texts())
            assert lab["new_items"] <= new_items, new_items
            page.screenshot(path=str(shots / "lab-file-new-menu.png"))
            page.keyboard.press("Escape")
            page.keyboard.press("Escape")

            # A notebook: the File menu and its tab's context menu.
            page.locator(".jp-LauncherCard[data-category='Notebook'], .jp-LauncherCard[data-category='ノートブック']"
                         ).first.click(timeout=LONG)
            page.wait_for_selector(".jp-Notebook", timeout=LONG)
            page.click(f".lm-MenuBar-itemLabel:text-is('{lab['file']}')")
            labels = menu_labels(page)
            assert lab["document"] <= set(labels) and not [label for label in labels if OBJECT_LEFT_OUT.match(label)], labels
            page.screenshot(path=str(shots / "lab-file-menu.png"))
            page.keyboard.press("Escape")
            page.click(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", button="right")
            labels = menu_labels(page)
            assert lab["tab"] <= set(labels) and not [label for label in labels if OBJECT_LEFT_OUT.match(label)], labels
            page.keyboard.press("Escape")
        finally:
            browser.close()
