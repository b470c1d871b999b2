"""JupyterHub's own pages (log-in, home, server starting / stopping / not running,
log-out, errors) in Japanese or English: every string, and how the pages get them.

The language is the browser's first choice of Accept-Language between ja and en,
Japanese when it names neither (onsite_base.i18n.negotiate). The templates in
hub_config/templates extend JupyterHub's and replace the blocks that hold text,
calling `t(key)`. JupyterHub hands templates no request, so the Jinja extension
`HubPageLanguage` finds it through the handler's own `static_url` method, which
every page receives. What JupyterHub writes outside any block is rewritten where
its template source is loaded (`SOURCE_PATCHES`): the `<html lang>`, the log-in
form (its blocks also hold the inputs and the show-password script, which we
do not copy), and the starting page's event log and stop button. A patch that
no longer matches after an upgrade is logged and leaves that text English;
tests/unit/hub_config/test_pages.py fails on it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from jinja2 import pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context
from jupyterhub._data import DATA_FILES_PATH

from onsite_base.i18n import DEFAULT_LANGUAGE, SHARED_MESSAGES, make_translator, negotiate

log = logging.getLogger(__name__)

MESSAGES: dict[str, dict[str, str]] = {
    **SHARED_MESSAGES,
    "nav_home": {"ja": "ホーム", "en": "Home"},
    "nav_admin": {"ja": "ハブ管理", "en": "Admin"},
    "nav_services": {"ja": "サービス", "en": "Services"},
    "login": {"ja": "ログイン", "en": "Log in"},
    "logout": {"ja": "ログアウト", "en": "Log out"},
    "username": {"ja": "利用者名", "en": "Username"},
    "password": {"ja": "パスワード", "en": "Password"},
    "show_password": {"ja": "パスワードを表示", "en": "Show password"},
    "hide_password": {"ja": "パスワードを隠す", "en": "Hide password"},
    "login_invalid": {"ja": "利用者名またはパスワードが違います。", "en": "Wrong username or password."},
    "home_heading": {"ja": "ホーム", "en": "Home"},
    "start_server": {"ja": "サーバーを起動", "en": "Start my server"},
    "open_server": {"ja": "サーバーを開く", "en": "Open my server"},
    "stop_server": {"ja": "サーバーを停止", "en": "Stop my server"},
    "my_requests": {"ja": "自分の公表申請", "en": "My requests"},
    "my_reference_data": {"ja": "持込みデータ", "en": "Reference data"},
    "my_requests_note": {"ja": "公表申請の状況と審査者のコメントを見て、公表された結果(パッケージ)を受け取ります。",
                         "en": "See your release requests, the reviewers' comments, and collect released packages."},
    "starting": {"ja": "サーバーを起動しています。", "en": "Your server is starting."},
    "starting_redirect": {"ja": "準備ができると自動で移動します。", "en": "You will be taken to it when it is ready."},
    "event_log": {"ja": "起動の記録", "en": "Event log"},
    "stopping_button": {"ja": "停止中…", "en": "Stopping…"},
    "stopping_server": {"ja": "サーバーを停止しています…", "en": "Stopping the server…"},
    "stopped_server": {"ja": "サーバーを停止しました。", "en": "The server was stopped."},
    "stop_failed": {"ja": "サーバーを停止できませんでした", "en": "The server could not be stopped"},
    "stopping": {"ja": "サーバーを停止しています。", "en": "Your server is stopping."},
    "stopping_wait": {"ja": "停止が終わると、もう一度起動できます。", "en": "You can start it again once it has stopped."},
    "reload": {"ja": "再読み込み", "en": "Reload"},
    "not_running": {"ja": "サーバーは起動していません", "en": "Your server is not running"},
    "start_failed": {"ja": "サーバーを起動できませんでした", "en": "Your server could not start"},
    "not_running_ask": {"ja": "起動しますか?", "en": "Would you like to start it?"},
    "not_running_auto": {
        "ja": "自動で起動します。数秒で移動しない場合は、下のボタンを押してください。",
        "en": "It will be started for you. If nothing happens in a few seconds, press the button below.",
    },
    "start_failed_retry": {"ja": "もう一度起動しますか?", "en": "Would you like to try again?"},
    "logged_out": {"ja": "ログアウトしました。", "en": "You have logged out."},
    "error_unavailable": {"ja": "現在ご利用いただけません", "en": "Not available right now"},
    "error_not_found_detail": {
        "ja": "このページはありません。アドレスを確かめるか、ホームから開き直してください。",
        "en": "There is no such page. Check the address or start again from the home page.",
    },
}

translator = make_translator(MESSAGES)

JUPYTERHUB_TEMPLATES = (Path(DATA_FILES_PATH) / "templates").resolve()
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
"""Onsite's own pages, which extend JupyterHub's (c.JupyterHub.template_paths)."""

# The heading of JupyterHub's error page by status; other codes keep JupyterHub's reason phrase.
ERROR_HEADINGS = {400: "error_bad_request", 403: "error_forbidden", 404: "error_not_found",
                  500: "error_server", 502: "error_unavailable", 503: "error_unavailable"}

# The messages JupyterHub's log-in handler itself puts on the form (ours, EntryDenied's, are already in both).
LOGIN_ERRORS = {"Invalid username or password": "login_invalid", "Login form invalid or expired. Try again.": "error_xsrf"}

# Strings JupyterHub's templates hold outside any block: (template, its exact text, ours).
# Only JupyterHub's own files are patched (ours extend them as "templates/<name>").
SOURCE_PATCHES: dict[str, list[tuple[str, str]]] = {
    "page.html": [('<html lang="en">', '<html lang="{{ page_language() }}">')],
    "login.html": [
        ("<h1>Sign in</h1>", "<h1>{{ t('login') }}</h1>"),
        ("value='Sign in'", "value=\"{{ t('login') }}\""),
        ('<label for="username_input">Username:</label>', "<label for=\"username_input\">{{ t('username') }}</label>"),
        ('<label for="password_input">Password:</label>', "<label for=\"password_input\">{{ t('password') }}</label>"),
        ('title="Show password"', "title=\"{{ t('show_password') }}\""),
        ('isHidden ? "Hide password" : "Show password"',
         "isHidden ? {{ t('hide_password')|tojson }} : {{ t('show_password')|tojson }}"),
    ],
    "spawn_pending.html": [
        ("<summary>Event log</summary>", "<summary>{{ t('event_log') }}</summary>"),
        ('btn-sm">Stop Server</button>', "btn-sm\">{{ t('stop_server') }}</button>"),
        (".text('Stopping...')", ".text({{ t('stopping_button')|tojson }})"),
        (".text('Stopping server...')", ".text({{ t('stopping_server')|tojson }})"),
        (".text('Server stopped successfully!')", ".text({{ t('stopped_server')|tojson }})"),
        ("var errorMessage = 'Error stopping server';", "var errorMessage = {{ t('stop_failed')|tojson }};"),
        (".text('Stop Server')", ".text({{ t('stop_server')|tojson }})"),
    ],
    "stop_pending.html": [('href="#">refresh</a>', "href=\"#\">{{ t('reload') }}</a>")],
}


def request_language(context: Context) -> str:
    """The page's language from the request behind `context`, Japanese if there is none."""
    handler = getattr(context.get("static_url"), "__self__", None)
    request = getattr(handler, "request", None)
    if request is None:
        return DEFAULT_LANGUAGE
    return negotiate(None, None, request.headers.get("Accept-Language"))


@pass_context
def page_language(context: Context) -> str:
    return request_language(context)


@pass_context
def translate(context: Context, key: str, **values: object) -> str:
    return translator(request_language(context))(key, **values)


@pass_context
def login_error_text(context: Context, message: str) -> str:
    """A log-in error in the page's language when it is one of JupyterHub's own; others as given."""
    key = LOGIN_ERRORS.get(message)
    return translator(request_language(context))(key) if key else message


def patch_source(name: str, source: str) -> str:
    """JupyterHub's template `name` with its block-less English replaced by `t(...)` calls."""
    for english, ours in SOURCE_PATCHES.get(name, ()):
        if source.count(english) != 1:
            log.warning("JupyterHub's %s no longer holds %r once: that text stays English", name, english)
            continue
        source = source.replace(english, ours)
    return source


class HubPageLanguage(Extension):
    """Gives JupyterHub's templates `t(key)`, `page_language()` and the rest above, and applies SOURCE_PATCHES."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals.update(t=translate, page_language=page_language, error_headings=ERROR_HEADINGS,
                                   login_error_text=login_error_text)

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if filename and Path(filename).resolve().parent == JUPYTERHUB_TEMPLATES:
            return patch_source(Path(filename).name, source)
        return source
