"""Administration under one real hub (the demo's, its services as the hub runs them, no test seam).

An emergency closure (issue 16): the manager of the demo facility — this test's own login, registered as that
person, so `onsite admin` acts in her scope — sees the session running at its terminal, a manager of another
facility cannot end it, and closing the facility ends it with the reason (SESSION_END through the admin's own path,
then the spawner's one SESSION_STOP) and refuses the next log-in until reopened.

A witness (issue 17) at another facility co-signs the log's head through the hub's public address with its own
credential, which opens nothing else there."""
from __future__ import annotations

import json
import os
import pwd
import time

import pytest
import requests

from access_control import ledger, policy
from access_control.enums import Role
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


def administer(settings) -> None:
    """This login is an administrator and manages no facility: `onsite` acts for the whole site."""
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as s:
            for held in policy.managed_facilities(s, LOGIN):
                policy.revoke_facility_manager(s, LOGIN, held.name, actor="test")
            policy.grant_role(s, LOGIN, Role.ADMINISTRATOR, actor="test")
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    """The demo hub; `onsite` in this process works on its store, in English, as this login."""
    settings, logins = seed_demo(tmp_path_factory.mktemp("admin-hub") / "home", rows=300)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ONSITE_HOME", str(settings.home))
        env.setenv("ONSITE_DB_URL", settings.db_url)
        for name in ("LC_ALL", "LC_MESSAGES"):
            env.delenv(name, raising=False)
        env.setenv("LANG", "C.UTF-8")
        hub = RunningHub(settings.home).start()
        try:
            yield settings, logins, hub
        finally:
            hub.stop()


@pytest.mark.timeout(300)
def test_an_emergency_closure_ends_the_sessions_at_the_facility(demo_hub, capsys):
    settings, logins, hub = demo_hub
    actor = f"admin:{LOGIN}"
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


@pytest.mark.timeout(120)
def test_a_witness_cosigns_through_the_hub_and_its_credential_opens_nothing_else(demo_hub, capsys, tmp_path):
    settings, _, hub = demo_hub
    administer(settings)  # the test above left this login a facility's manager
    code, credential, err = onsite(capsys, "audit", "witness-add", "osaka")
    assert code == 0 and credential.startswith(ledger.WITNESS_TOKEN_PREFIX), err
    (tmp_path / "credential").write_text(credential)
    code, public, _ = onsite(capsys, "audit", "public-key")
    (tmp_path / "log.pub").write_text(public)
    assert onsite(capsys, "audit", "head")[0] == 0
    service = f"{hub.url}/services/onsite-admin/"
    witness = ("audit", "witness", service, "--token-file", str(tmp_path / "credential"), "--log-key",
               str(tmp_path / "log.pub"), "--key", str(tmp_path / "w.pem"), "--state", str(tmp_path / "w.json"),
               "--name", "osaka")
    code, out, err = onsite(capsys, *witness)
    assert code == 0 and out.startswith("co-signed the head of"), (out, err)
    code, out, _ = onsite(capsys, "audit", "witnesses", "--json")
    assert [w["witness"] for w in json.loads(out)] == ["osaka"]  # posted through the proxy, stored by the service

    as_witness = {"Authorization": "Witness " + credential.strip()}
    as_token = {"Authorization": "token " + credential.strip()}
    for url in (service + "people", service + "operations", f"{hub.url}/hub/api/users", f"{hub.url}/hub/api/user",
                f"{hub.url}/services/onsite-review/"):
        for headers in (as_witness, as_token):
            answer = requests.get(url, headers=headers, allow_redirects=False, timeout=30)
            assert answer.status_code in (302, 401, 403), (url, headers, answer.status_code)
            assert not (answer.status_code == 302 and answer.headers["Location"].startswith(url)), url
    assert requests.get(service + "log/head", headers=as_witness, timeout=30).status_code == 200
    assert onsite(capsys, "audit", "verify")[0] == 0
