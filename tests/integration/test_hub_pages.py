"""JupyterHub's own pages through a real hub speak the browser's language: Japanese, or English.

One hub serves the module. Its site overrides hold a server start pending until
the test releases it, so the "server is starting" page is seen for certain.
"""
from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest
import requests
from test_review_web_protection_browser import CHROMIUM, CHROMIUM_ARGS, no_horizontal_overflow

from functional.hubtools import HubUser, RunningHub, login_error
from functional.seeding import seed_demo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# A site override: a start stays pending until the test creates the release file (at most a minute).
HOLD_SPAWN = """
import asyncio, pathlib
c.OnsiteSpawner.isolate = False
async def hold_spawn(spawner):
    release = pathlib.Path({release!r})
    for _ in range(600):
        if release.exists():
            return
        await asyncio.sleep(0.1)
c.Spawner.pre_spawn_hook = hold_spawn
"""


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("onsite-hub-pages")
    settings, logins = seed_demo(home, rows=300)
    release = home / "release-spawn"
    (home / "onsite_config.py").write_text(HOLD_SPAWN.format(release=str(release)))
    with RunningHub(home) as hub:
        yield hub, logins, release


def page(response: requests.Response) -> str:
    """The page as a browser decodes it (UTF-8 is declared in a meta tag, not the header), unescaped."""
    return html.unescape(response.content.decode("utf-8"))


def html_lang(text: str) -> str:
    return re.search(r"<html lang=\"([a-z]+)\">", text).group(1)


def browser(hub: RunningHub, username: str, language: str) -> HubUser:
    person = HubUser(hub, username)
    person.http.headers["Accept-Language"] = language
    return person


LOGIN_TEXT = {
    "ja": ["<h1>ログイン</h1>", ">利用者名</label>", ">パスワード</label>", 'value="ログイン"', 'title="パスワードを表示"'],
    "en": ["<h1>Log in</h1>", ">Username</label>", ">Password</label>", 'value="Log in"', 'title="Show password"'],
}


@pytest.mark.parametrize("header,language", [
    ("ja", "ja"), ("ja-JP,ja;q=0.9,en;q=0.8", "ja"), ("en-US,en;q=0.9", "en"), ("fr, en;q=0.5", "en"),
    ("fr", "ja"), ("", "ja"),
])
def test_login_page_speaks_the_browsers_language(hub_env, header, language):
    hub, _, _ = hub_env
    text = page(requests.get(f"{hub.url}/hub/login", headers={"Accept-Language": header}, timeout=10))
    assert html_lang(text) == language
    for shown in LOGIN_TEXT[language]:
        assert shown in text
    other = "en" if language == "ja" else "ja"
    for hidden in LOGIN_TEXT[other]:
        assert hidden not in text
    assert "Sign in" not in text and "Username:" not in text


@pytest.mark.parametrize("language", ["ja", "en"])
def test_logging_in_from_the_page_form_still_works(hub_env, language):
    hub, logins, _ = hub_env
    response = HubUser(hub, "sato").login(logins["sato"].password, headers={"Accept-Language": language})
    assert response.status_code == 302, login_error(response)


@pytest.mark.parametrize("language,shown", [("ja", "利用者名またはパスワードが違います。"), ("en", "Wrong username or password.")])
def test_a_wrong_password_is_told_in_the_pages_language(hub_env, language, shown):
    hub, _, _ = hub_env
    response = browser(hub, "takahashi", language).login("not-the-password")
    assert response.status_code == 403 and login_error(response) == shown


def test_a_login_post_without_the_forms_xsrf_is_refused(hub_env):
    hub, logins, _ = hub_env
    person = browser(hub, "sato", "ja")
    person.http.get(f"{hub.url}/hub/login", timeout=10)
    response = person.http.post(f"{hub.url}/hub/login?next=", data={"username": "sato", "password": logins["sato"].password},
                                allow_redirects=False, timeout=30)
    assert response.status_code == 403
    assert "フォームの確認トークンがありません" in page(response)
    home = person.http.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=10)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


@pytest.mark.parametrize("language,heading,detail", [
    ("ja", "404 : 見つかりません", "このページはありません。"),
    ("en", "404 : Not found", "There is no such page."),
])
def test_not_found_page(hub_env, language, heading, detail):
    hub, _, _ = hub_env
    response = requests.get(f"{hub.url}/hub/no-such-page", headers={"Accept-Language": language}, timeout=10)
    text = page(response)
    assert response.status_code == 404
    assert html_lang(text) == language and heading in text and detail in text
    assert "moons" not in text


@pytest.mark.parametrize("language,heading,nav", [
    ("ja", "403 : この操作は許可されていません", ">ホーム</a>"),
    ("en", "403 : This is not allowed", ">Home</a>"),
])
def test_forbidden_page_for_a_reviewer_at_the_hub_admin(hub_env, language, heading, nav):
    hub, logins, _ = hub_env
    reviewer = browser(hub, "suzuki", language)
    assert reviewer.login(logins["suzuki"].password).status_code == 302
    response = reviewer.http.get(f"{hub.url}/hub/admin", timeout=10)
    text = page(response)
    assert response.status_code == 403
    assert html_lang(text) == language and heading in text and nav in text


HOME = {"ja": ("サーバーを起動", "サーバーを開く", "サーバーを停止", "ログアウト"),
        "en": ("Start my server", "Open my server", "Stop my server", "Log out")}
NOT_RUNNING = {"ja": ("サーバーは起動していません", "起動しますか?"), "en": ("Your server is not running", "Would you like to start it?")}
PENDING = {
    "ja": ("サーバーを起動しています。", "準備ができると自動で移動します。", "<summary>起動の記録</summary>", ">サーバーを停止</button>"),
    "en": ("Your server is starting.", "You will be taken to it when it is ready.", "<summary>Event log</summary>",
           ">Stop my server</button>"),
}


def test_home_not_running_and_starting_pages_in_both_languages(hub_env):
    hub, logins, release = hub_env
    ja, en = browser(hub, "tanaka", "ja"), browser(hub, "tanaka", "en")
    for person in (ja, en):
        assert person.login(logins["tanaka"].password).status_code == 302
    for person, language in ((ja, "ja"), (en, "en")):
        start, _, stop, logout = HOME[language]
        home = page(person.http.get(f"{hub.url}/hub/home", timeout=10))
        assert html_lang(home) == language and start in home and logout in home and stop not in home
        not_running = person.http.get(f"{hub.url}/hub/user/tanaka/", timeout=10)
        assert not_running.status_code == 424
        assert all(text in page(not_running) for text in (*NOT_RUNNING[language], start))

    spawn = ja.http.get(f"{hub.url}/hub/spawn", allow_redirects=False, timeout=30)
    assert spawn.status_code == 302 and "/hub/spawn-pending/tanaka" in spawn.headers["Location"]
    for person, language in ((ja, "ja"), (en, "en")):
        pending = page(person.http.get(f"{hub.url}/hub/spawn-pending/tanaka", allow_redirects=False, timeout=10))
        assert html_lang(pending) == language
        assert all(text in pending for text in PENDING[language])
    # the stop button's script speaks too; JupyterHub's own words are gone
    assert '.text("The server was stopped.")' in pending and "Stopping server..." not in pending
    assert "Your server is starting up" not in pending

    release.touch()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        model = ja.http.get(f"{hub.url}/hub/api/users/tanaka", headers=ja._hub_xsrf(), timeout=10).json()
        if model["servers"].get("", {}).get("ready"):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the server did not start:\n{hub.log_tail()}")
    for person, language in ((ja, "ja"), (en, "en")):
        _, open_server, stop, _ = HOME[language]
        home = page(person.http.get(f"{hub.url}/hub/home", timeout=10))
        assert open_server in home and stop in home
    stopped = ja.http.delete(f"{hub.url}/hub/api/users/tanaka/server", headers=ja._hub_xsrf(), timeout=60)
    assert stopped.status_code in (202, 204)


SCREENSHOTS = Path("/tmp/onsite-hub-screens")


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium at /usr/bin/chromium")
@pytest.mark.parametrize("width", [1280, 760])
def test_login_page_in_japanese_in_chromium(hub_env, width):
    from playwright.sync_api import sync_playwright

    hub, logins, _ = hub_env
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="ja-JP", viewport={"width": width, "height": 800})
            page.goto(f"{hub.url}/hub/login")
            assert page.get_attribute("html", "lang") == "ja"
            assert page.locator("h1").inner_text() == "ログイン"
            no_horizontal_overflow(page)
            page.screenshot(path=str(SCREENSHOTS / f"login-ja-{width}.png"), full_page=True)
            page.get_by_label("利用者名").fill("sato")
            page.get_by_label("パスワード", exact=True).fill(logins["sato"].password)
            page.get_by_role("button", name="ログイン").click()
            page.wait_for_url(re.compile(r"/services/onsite-review/"))  # the reviewer's default page
        finally:
            browser.close()
