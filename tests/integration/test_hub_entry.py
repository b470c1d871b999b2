"""Entry to a real hub: terminals, projects, passwords, roles, and what a session sees.

One hub (`onsite hub`, real proxy, real review service, real single-user
servers and kernels) serves the whole module. Each refusal is tried for real
and the page the person would see, and the ledger, are checked.
"""
from __future__ import annotations

import json
import re

import pytest

from access_control.entry import DenialReason
from functional.hubtools import HubUser, RunningHub, login_error
from functional.seeding import (
    EXPIRED_PASSWORD,
    EXPIRED_RESEARCHER,
    LOCKED_PASSWORD,
    LOCKED_RESEARCHER,
    OTHER_DATASET,
    SUSPENDED_PASSWORD,
    SUSPENDED_PROJECT,
    SUSPENDED_RESEARCHER,
    audit_events,
    seed_attacks,
    seed_demo,
    suspend_project,
)
from hub_config.pages import MESSAGES
from onsite.demo import DEMO_DATASET

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WRONG_PASSWORD = MESSAGES["login_invalid"]["ja"]  # JupyterHub's message, in the default language
OTHER_TERMINAL = "127.0.0.2"  # a loopback address of this machine that is not a registered terminal


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("onsite-hub")
    settings, logins = seed_demo(home, rows=2000)
    seed_attacks(settings)
    with RunningHub(home) as hub:
        yield hub, settings, logins
        stop_seconds = hub.stop()
    assert stop_seconds < 15, f"the hub took {stop_seconds:.1f} s to stop"


def both_languages(reason: DenialReason) -> list[str]:
    return [reason.message("ja"), reason.message("en")]


def test_registered_terminal_and_right_password_enter(hub_env):
    hub, settings, logins = hub_env
    response = HubUser(hub, "tanaka").login(logins["tanaka"].password)
    assert response.status_code == 302, login_error(response)
    allowed = [e for e in audit_events(settings, "ENTRY_DECIDE", "tanaka") if e["outcome"] == "OK"]
    assert allowed and allowed[-1]["details"]["client_address"] == "127.0.0.1"


def test_unregistered_terminal_is_refused_with_its_reason(hub_env):
    hub, settings, logins = hub_env
    response = HubUser(hub, "tanaka", source_address=OTHER_TERMINAL).login(logins["tanaka"].password)
    assert response.status_code == 403
    shown = login_error(response)
    for text in both_languages(DenialReason.TERMINAL_NOT_REGISTERED):
        assert text in shown
    denied = [e for e in audit_events(settings, "ENTRY_DECIDE", "tanaka") if e["outcome"] == "DENIED"]
    assert denied[-1]["details"]["client_address"] == OTHER_TERMINAL
    assert denied[-1]["details"]["reasons"] == ["TERMINAL_NOT_REGISTERED"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Real-Ip": "127.0.0.1"},
        {"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "::1"},
    ],
    ids=["x-forwarded-for", "x-real-ip", "both"],
)
def test_forwarding_headers_cannot_claim_a_registered_terminal(hub_env, headers):
    hub, settings, logins = hub_env
    response = HubUser(hub, "tanaka", source_address=OTHER_TERMINAL).login(logins["tanaka"].password, headers=headers)
    assert response.status_code == 403
    assert DenialReason.TERMINAL_NOT_REGISTERED.message("en") in login_error(response)
    assert audit_events(settings, "ENTRY_DECIDE", "tanaka")[-1]["details"]["client_address"] == OTHER_TERMINAL


def test_expired_project_is_refused_with_its_reason(hub_env):
    hub, settings, _ = hub_env
    response = HubUser(hub, EXPIRED_RESEARCHER).login(EXPIRED_PASSWORD)
    assert response.status_code == 403
    shown = login_error(response)
    for text in both_languages(DenialReason.NO_ACTIVE_PROJECT):
        assert text in shown
    assert DenialReason.TERMINAL_NOT_REGISTERED.message("en") not in shown
    assert audit_events(settings, "ENTRY_DECIDE", EXPIRED_RESEARCHER)[-1]["details"]["reasons"] == ["NO_ACTIVE_PROJECT"]


def test_wrong_password_says_only_that_and_is_logged(hub_env):
    hub, settings, _ = hub_env
    before = len(audit_events(settings, "LOGIN_FAIL", "sato"))
    response = HubUser(hub, "sato").login("not-the-password-1")
    assert response.status_code == 403
    assert login_error(response) == WRONG_PASSWORD
    assert len(audit_events(settings, "LOGIN_FAIL", "sato")) == before + 1


def test_repeated_failures_lock_the_account_and_the_page_says_so(hub_env):
    hub, settings, _ = hub_env
    person = HubUser(hub, LOCKED_RESEARCHER)
    for attempt in range(5):
        assert login_error(person.login(f"guess-number-{attempt}")) == WRONG_PASSWORD
    response = person.login(LOCKED_PASSWORD)  # the right password, too late
    assert response.status_code == 403
    shown = login_error(response)
    for text in both_languages(DenialReason.ACCOUNT_LOCKED):
        assert text in shown
    reasons = [e["details"]["reason"] for e in audit_events(settings, "LOGIN_FAIL", LOCKED_RESEARCHER)]
    assert reasons == ["BAD_CREDENTIALS"] * 5 + ["ACCOUNT_LOCKED"]


def test_reviewer_lands_on_the_review_service_and_cannot_start_a_server(hub_env):
    hub, _, logins = hub_env
    reviewer = HubUser(hub, "sato")
    response = reviewer.login(logins["sato"].password)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/services/onsite-review/")
    assert reviewer.start_server().status_code == 403


def test_spawn_rechecks_entry(hub_env):
    """A project suspended after log-in: the server does not start, and the page says why. The start
    request itself is refused (every request is judged by the entry decision), before the spawner's own check."""
    hub, settings, _ = hub_env
    researcher = HubUser(hub, SUSPENDED_RESEARCHER)
    assert researcher.login(SUSPENDED_PASSWORD).status_code == 302
    suspend_project(settings, SUSPENDED_PROJECT)
    response = researcher.start_server()
    assert response.status_code == 403
    assert DenialReason.NO_ACTIVE_PROJECT.message("ja") in response.json()["message"]
    decisions = [e for e in audit_events(settings, "ENTRY_DECIDE", SUSPENDED_RESEARCHER) if e["details"]["stage"] != "login"]
    assert decisions[-1]["outcome"] == "DENIED" and decisions[-1]["details"]["reasons"] == ["NO_ACTIVE_PROJECT"]
    assert decisions[-1]["details"]["path"] == f"/hub/api/users/{SUSPENDED_RESEARCHER}/server"


def test_session_sees_only_granted_datasets_and_no_secrets(hub_env):
    hub, settings, logins = hub_env
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    researcher.start_server()
    assert researcher.open_server().status_code == 200
    kernel = researcher.start_kernel()
    code = f"""
import json, os, analysis_kernel
db = analysis_kernel.connect()
try:
    db.sql("SELECT count(*) FROM {OTHER_DATASET}").fetchall()
    other = "readable"
except Exception as e:
    other = type(e).__name__
manifest = json.load(open(os.environ["ONSITE_SESSION"]))
from analysis_kernel.outputs import frequency_table
print(json.dumps({{
    "ids": db.dataset_ids,
    "rows": db.sql("SELECT count(*) FROM {DEMO_DATASET}").fetchall()[0][0],
    "other": other,
    "manifest_datasets": sorted(d for p in manifest["projects"].values() for d in p["datasets"]),
    "language": manifest["language"],
    "verdict_shown": frequency_table(db, "SELECT * FROM {DEMO_DATASET}", rows="sex")._repr_html_(),
    "env": sorted(k for k in ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "ONSITE_DB_URL", "ONSITE_REVIEW_URL") if k in os.environ),
}}))
"""
    result = researcher.execute(kernel, code)
    assert result.error is None, result.error
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["ids"] == [DEMO_DATASET]
    assert seen["rows"] == 2000
    assert seen["other"] != "readable"
    assert seen["manifest_datasets"] == [DEMO_DATASET]
    assert seen["language"] == "ja"  # the site default ($ONSITE_LANGUAGE unset): verdicts in Japanese
    assert "ルールプリセット" in seen["verdict_shown"] and "under preset" not in seen["verdict_shown"]
    assert seen["env"] == []  # the kernel holds no Hub token and does not know the policy store
    starts = audit_events(settings, "SESSION_START", "tanaka")
    assert starts and starts[-1]["details"]["datasets"] == [DEMO_DATASET]


def test_single_user_lockdown(hub_env):
    hub, _, logins = hub_env
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    researcher.start_server()
    assert researcher.open_server().status_code == 200
    server = researcher.server_url
    assert researcher.http.get(f"{server}/files/.onsite/session.json").status_code == 404
    assert researcher.http.post(f"{server}/api/terminals", headers=researcher._server_xsrf()).status_code == 404
    specs = researcher.http.get(f"{server}/api/kernelspecs").json()
    assert specs["default"] == "onsite" and list(specs["kernelspecs"]) == ["onsite"]
    page = researcher.http.get(f"{server}/lab").content.decode("utf-8")
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert config["extensionManager"]["name"] == "read-only"
    assert config["extensionManager"]["can_install"] is False
    # JupyterLab in Japanese by default (site language ja), and the researcher may still pick English
    translation = f"{server}/lab/api/settings/@jupyterlab/translation-extension:plugin"
    assert researcher.http.get(translation).json()["schema"]["properties"]["locale"]["default"] == "ja_JP"
    pack = researcher.http.get(f"{server}/lab/api/translations/ja_JP").json()
    assert pack["message"] == "" and pack["data"]["jupyterlab"][""]["language"] == "ja-JP"
    for raw in ('{"locale": "en"}', "{}"):
        assert researcher.http.put(translation, json={"raw": raw}, headers=researcher._server_xsrf()).status_code == 204
        assert researcher.http.get(translation).json()["raw"] == raw


def test_administrator_cannot_open_a_researchers_server(hub_env):
    hub, _, logins = hub_env
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    researcher.start_server()
    admin = HubUser(hub, "takahashi")
    landing = admin.login(logins["takahashi"].password)
    assert landing.status_code == 302 and landing.headers["Location"] == "/services/onsite-admin/"
    pages = admin.http.get(f"{hub.url}/services/onsite-admin/", headers={"Accept-Language": "ja"}, timeout=30)
    assert pages.status_code == 200 and "Onsite 管理" in pages.text  # the administration pages, in Japanese
    users = admin.http.get(f"{hub.url}/hub/api/users", headers=admin._hub_xsrf())
    assert users.status_code == 200 and "tanaka" in {u["name"] for u in users.json()}
    # The researcher opens the server; the administrator's OAuth authorisation for it is refused.
    assert researcher.http.get(f"{researcher.server_url}/lab", timeout=30).status_code == 200
    refused = admin.http.get(f"{researcher.server_url}/lab", timeout=30)
    assert refused.status_code == 403
    assert "/hub/api/oauth2/authorize" in refused.url
