"""`onsite admin sessions list|end` against a real hub: the `onsite-cli` service token and the
hub API address the hub writes to its runtime directory, and SESSION_END in the ledger."""
from __future__ import annotations

import json
import os
import pwd
import time

import pytest
import requests

from functional.hubtools import HubUser, RunningHub
from functional.seeding import audit_events, seed_demo
from hub_config.config import CLI_TOKEN_FILE, HUB_API_URL_FILE
from onsite import cli
from onsite.demo import DEMO_PROJECT


def onsite(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(300)
def test_list_and_end_a_session_under_a_real_hub(tmp_path, monkeypatch, capsys):
    settings, logins = seed_demo(tmp_path / "home", rows=300)
    monkeypatch.setenv("ONSITE_HOME", str(settings.home))
    monkeypatch.setenv("ONSITE_DB_URL", settings.db_url)
    for name in ("LC_ALL", "LC_MESSAGES"):  # refusals in English whatever the machine's locale
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    admin_actor = f"admin:{pwd.getpwuid(os.getuid()).pw_name}"

    code, _, err = onsite(capsys, "admin", "sessions", "list")
    assert code == 2 and HUB_API_URL_FILE in err and "is the hub running?" in err and "make up" in err

    hub = RunningHub(settings.home).start()
    try:
        token_file = settings.runtime_dir / CLI_TOKEN_FILE
        assert token_file.stat().st_mode & 0o777 == 0o600
        api_url = (settings.runtime_dir / HUB_API_URL_FILE).read_text().strip()
        assert requests.get(api_url + "/", timeout=5).status_code == 200

        code, out, _ = onsite(capsys, "admin", "sessions", "list", "--json")
        assert code == 0 and json.loads(out) == []

        researcher = HubUser(hub, "tanaka")
        assert researcher.login(logins["tanaka"].password).status_code == 302
        assert researcher.start_server().status_code in (201, 202)

        code, out, _ = onsite(capsys, "admin", "sessions", "list", "--json")
        assert code == 0, out
        rows = json.loads(out)
        assert [(r["username"], r["projects"], r["state"]) for r in rows] == [("tanaka", [DEMO_PROJECT], "running")]
        code, out, _ = onsite(capsys, "admin", "sessions", "list")
        assert code == 0 and "tanaka" in out and DEMO_PROJECT in out

        # the CLI token holds only its three scopes: no way into a researcher's server or tokens
        auth = {"Authorization": f"token {token_file.read_text().strip()}"}
        assert requests.get(f"{hub.url}/user/tanaka/api/contents", headers=auth, allow_redirects=False, timeout=10).status_code in (302, 403)
        assert requests.post(f"{api_url}/users/tanaka/tokens", headers=auth, json={}, timeout=10).status_code == 403
        assert requests.post(f"{api_url}/users/tanaka/server", headers=auth, timeout=10).status_code == 403

        code, out, _ = onsite(capsys, "admin", "sessions", "end", "tanaka", "--reason", "left the terminal unattended")
        assert code == 0 and "tanaka" in out
        deadline = time.monotonic() + 30
        while researcher.http.get(f"{api_url}/users/tanaka", headers=researcher._hub_xsrf(), timeout=10).json()["servers"]:
            assert time.monotonic() < deadline, "the server did not stop"
            time.sleep(0.5)
        assert audit_events(settings, "SESSION_END", actor=admin_actor) == [{
            "actor": admin_actor, "outcome": "OK", "object": "session:tanaka",
            "details": {"requested_by": admin_actor, "reason": "left the terminal unattended",
                        "client_address": "local", "os_user": pwd.getpwuid(os.getuid()).pw_name},  # the CLI names its client
        }]
        code, out, _ = onsite(capsys, "admin", "sessions", "list", "--json")
        assert code == 0 and json.loads(out) == []

        code, _, err = onsite(capsys, "admin", "sessions", "end", "tanaka", "--reason", " ")
        assert code == 2 and "--reason" in err  # refused before asking the hub: nothing recorded
        assert len(audit_events(settings, "SESSION_END", actor=admin_actor)) == 1
    finally:
        hub.stop()

    # the files stay behind but nobody answers: a clear message, and the failed attempt is recorded
    for argv in (["list", "--json"], ["end", "tanaka"]):
        code, out, err = onsite(capsys, "admin", "sessions", *argv)
        assert code == 2 and out == "", (argv, out, err)
        assert "the hub API did not answer" in err and "is the hub running?" in err and "onsite hub" in err
    failed = audit_events(settings, "SESSION_END", actor=admin_actor)[-1]
    assert failed["outcome"] == "FAILED" and failed["details"]["requested_by"] == admin_actor
