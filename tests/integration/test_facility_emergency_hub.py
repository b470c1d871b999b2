"""An emergency closure under a real hub (issue 16): the manager of the demo facility — this test's own login,
registered as that person, so `onsite admin` acts in her scope — sees the session running at its terminal, a
manager of another facility cannot end it, and closing the facility ends it with the reason (SESSION_END through
the admin's own path, then the spawner's one SESSION_STOP) and refuses the next log-in until reopened."""
from __future__ import annotations

import json
import os
import pwd
import time

import pytest

from access_control import policy
from functional.hubtools import HubUser, RunningHub
from functional.seeding import audit_events, seed_demo
from onsite import cli
from onsite.demo import DEMO_FACILITY
from onsite_base.db import make_engine, session_factory, transaction

pytestmark = pytest.mark.integration
LOGIN = pwd.getpwuid(os.getuid()).pw_name


def onsite(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


MIKA_PASSWORD = "manager of the demo room"


def manage(settings, facility: str | None) -> None:
    """Make this login the manager of `facility` alone (None: of a facility of its own, not the demo's); mika
    manages the demo facility and signs in through the hub."""
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as s:
            if policy.get_person(s, LOGIN) is None:
                policy.add_person(s, username=LOGIN, display_name="Manager", actor="test")
                policy.add_facility(s, name="Elsewhere", actor="test")
                policy.add_person(s, username="mika", display_name="Mika", password=MIKA_PASSWORD, actor="test")
                policy.grant_facility_manager(s, "mika", DEMO_FACILITY, actor="test")
            for held in policy.managed_facilities(s, LOGIN):
                policy.revoke_facility_manager(s, LOGIN, held.name, actor="test")
            policy.grant_facility_manager(s, LOGIN, facility or "Elsewhere", actor="test")
    finally:
        engine.dispose()


@pytest.mark.timeout(300)
def test_an_emergency_closure_ends_the_sessions_at_the_facility(tmp_path, monkeypatch, capsys):
    settings, logins = seed_demo(tmp_path / "home", rows=300)
    monkeypatch.setenv("ONSITE_HOME", str(settings.home))
    monkeypatch.setenv("ONSITE_DB_URL", settings.db_url)
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    actor = f"admin:{LOGIN}"
    hub = RunningHub(settings.home).start()
    try:
        researcher = HubUser(hub, "tanaka")
        assert researcher.login(logins["tanaka"].password).status_code == 302
        assert researcher.start_server().status_code in (201, 202)

        manage(settings, None)  # a manager of another facility: sees no session, ends none
        code, out, _ = onsite(capsys, "admin", "sessions", "list", "--json")
        assert code == 0 and json.loads(out) == []
        code, _, err = onsite(capsys, "admin", "sessions", "end", "tanaka", "--reason", "not mine")
        assert code == 2 and "no session running at your facilities" in err
        code, _, err = onsite(capsys, "admin", "facility", "close", DEMO_FACILITY, "--reason", "not mine")
        assert code == 2 and "unknown facility" in err
        assert audit_events(settings, "SESSION_END") == []

        # a manager signs in through the hub (its OAuth, her hub role's one service scope) and sees the session
        mika = HubUser(hub, "mika")
        assert mika.login(MIKA_PASSWORD).status_code == 302
        service = f"{hub.url}/services/onsite-admin/"
        sessions = mika.http.get(service + "sessions", params={"lang": "en"}, timeout=30)
        assert sessions.status_code == 200 and sessions.url.startswith(service) and 'id="session-tanaka"' in sessions.text
        assert mika.http.get(service + "people", timeout=30).status_code == 403
        assert mika.http.get(f"{hub.url}/user/tanaka/api/contents", allow_redirects=False, timeout=10).status_code in (302, 403, 404)

        manage(settings, DEMO_FACILITY)
        code, out, _ = onsite(capsys, "admin", "sessions", "list", "--json")
        assert [(r["username"], r["facility"]) for r in json.loads(out)] == [("tanaka", DEMO_FACILITY)]
        code, out, err = onsite(capsys, "admin", "facility", "close", DEMO_FACILITY, "--reason", "停電のため", "--json")
        assert code == 0, err
        assert json.loads(out) == {"facility": DEMO_FACILITY, "reason": "停電のため", "sessions_ended": ["tanaka"]}
        # Asked as the administrator: tanaka's own requests are refused now that her facility is closed.
        deadline = time.monotonic() + 30
        while json.loads(onsite(capsys, "admin", "sessions", "list", "--json")[1]):
            assert time.monotonic() < deadline, "the server did not stop"
            time.sleep(0.5)
        [end] = audit_events(settings, "SESSION_END")
        assert (end["actor"], end["outcome"], end["details"]["reason"]) == (
            actor, "OK", f"emergency closure of {DEMO_FACILITY}: 停電のため")
        stops = [e for e in audit_events(settings, "SESSION_STOP") if e["object"] == "session:tanaka"]
        assert len(stops) == 1

        again = HubUser(hub, "tanaka")
        assert again.login(logins["tanaka"].password).status_code != 302  # nobody enters while closed
        denied = [e for e in audit_events(settings, "ENTRY_DECIDE") if e["outcome"] == "DENIED"]
        assert "EMERGENCY_CLOSURE" in denied[-1]["details"]["reasons"]

        assert onsite(capsys, "admin", "facility", "reopen", DEMO_FACILITY)[0] == 0
        assert HubUser(hub, "tanaka").login(logins["tanaka"].password).status_code == 302
    finally:
        hub.stop()
