"""Every request judged by its client address (issue 14, items 1 and 9), attacked through a real hub as root.

A researcher (tanaka), a reviewer (sato) and an administrator (takahashi) work at the registered
terminal 127.0.0.1. Their browsers' cookies — the hub's and the services' — are copied to 127.0.0.2, an
address of this machine that is no terminal and no staff network, with and without forwarding
headers claiming the terminal. From there the thief tries the hub's pages and API, starting and
stopping the server, the review service (a request page, a release package, an approval) and the
admin service (registering a terminal network). Every attempt must be refused with 403 in Japanese
and English, recorded in the ledger with the address, and the same from the terminal must work.
Then passwords from 127.0.0.2: a right and a wrong one must get the same answer, and neither may
count toward the account's lock-out.
"""
from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from access_control.models import Person, Terminal
from functional.hubtools import HubUser, login_error
from functional.seeding import SUSPENDED_PASSWORD, SUSPENDED_RESEARCHER, audit_events
from onsite.demo import DEMO_DATASET, DEMO_FACILITY
from onsite_base.db import make_engine, session_factory
from security._isolation_fixtures import isolated_hub, researcher_session  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REVIEW = "/services/onsite-review"
ADMIN = "/services/onsite-admin"
OTHER_ADDRESS = "127.0.0.2"  # this machine, but neither a registered terminal (127.0.0.1, ::1) nor a staff network
REFUSED_JA = "この場所からは利用できません"
REFUSED_EN = "Refused from this address"
SPOOFS = {"": {}, " claiming X-Forwarded-For: 127.0.0.1": {"X-Forwarded-For": "127.0.0.1"},
          " claiming X-Forwarded-For and X-Real-Ip: 127.0.0.1": {"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1"}}
NEW_NETWORK = "192.0.2.0/24"

SUBMIT = """
import json
import analysis_kernel
from analysis_kernel import outputs

db = analysis_kernel.connect()
table = lambda name: outputs.frequency_table(db, "SELECT * FROM {dataset}", rows="sex", name=name)
released = analysis_kernel.request_release([table("released")], title="Persons by sex", purpose="Table 1")
pending = analysis_kernel.request_release([table("pending")], title="Persons by sex again", purpose="Table 2")
print("IDS", json.dumps([released["id"], pending["id"]]))
"""


def form(user: HubUser, page_url: str, action_pattern: str) -> tuple[str, str]:
    """(absolute URL of the form's action, its _xsrf) from a page fetched at the terminal."""
    page = user.http.get(page_url, timeout=60)
    assert page.status_code == 200, (page_url, page.status_code, page.text[:300])
    action = html.unescape(re.search(rf'action="([^"]*{action_pattern})"', page.text).group(1))
    xsrf = html.unescape(re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1))
    return (action if action.startswith("http") else f"{user.hub.url}{action}"), xsrf


def vote(user: HubUser, request_id: int) -> tuple[str, dict[str, str]]:
    action, xsrf = form(user, f"{user.hub.url}{REVIEW}/requests/{request_id}", rf"requests/{request_id}/outputs/\d+/vote")
    return action, {"_xsrf": xsrf, "decision": "APPROVE"}


@pytest.fixture(scope="module")
def world(isolated_hub):
    """tanaka in a session at the terminal with a released request and a pending one; sato and
    takahashi signed in at the terminal, each with the service pages open (their OAuth cookies set)."""
    hub = isolated_hub
    tanaka, kernel = researcher_session(hub, "tanaka")
    out = tanaka.execute(kernel, SUBMIT.format(dataset=DEMO_DATASET), timeout=240)
    assert out.error is None, out.error
    released, pending = (int(i) for i in re.search(r"IDS \[(\d+), (\d+)\]", out.stdout).groups())
    people = {"tanaka": tanaka}
    for name in ("sato", "suzuki", "takahashi"):
        people[name] = HubUser(hub.hub, name)
        assert people[name].login(hub.logins[name].password).status_code == 302
    for name in ("sato", "suzuki"):
        action, data = vote(people[name], released)
        assert people[name].http.post(action, data=data, timeout=60).status_code == 200
    assert tanaka.http.get(f"{hub.hub.url}{REVIEW}/mine", timeout=60).status_code == 200
    assert people["takahashi"].http.get(f"{hub.hub.url}{ADMIN}/terminals", timeout=60).status_code == 200
    return hub, people, released, pending


def thief_of(hub, victim: HubUser) -> HubUser:
    """Another machine holding every cookie of the victim's browser (the hub's, the services', _xsrf)."""
    thief = HubUser(hub.hub, victim.username, source_address=OTHER_ADDRESS)
    thief.http.cookies.update(victim.http.cookies)
    return thief


def refusals(hub, username: str, after: int) -> list[dict]:
    return [e for e in audit_events(hub.settings, "ENTRY_DECIDE", username)[after:]
            if e["details"].get("stage") == "request"]


def assert_refused(response, *, json_body: bool = False) -> None:
    assert response.status_code == 403, (response.status_code, response.text[:300])
    text = json.loads(response.text)["message"] if json_body else html.unescape(response.text)
    assert REFUSED_JA in text and REFUSED_EN in text, text[:500]


@pytest.mark.parametrize("victim", ["tanaka", "sato", "takahashi"])
def test_hub_pages_and_api_refuse_a_copied_cookie(world, victim):
    hub, people, _, _ = world
    owner = people[victim]
    before = len(audit_events(hub.settings, "ENTRY_DECIDE", victim))
    thief = thief_of(hub, owner)
    tried = []
    for claim, spoof in SPOOFS.items():
        page = thief.http.get(f"{hub.hub.url}/hub/home", headers=spoof, allow_redirects=False, timeout=30)
        assert_refused(page)
        api = thief.http.get(f"{hub.hub.url}/hub/api/user", headers={**spoof, **owner._hub_xsrf()}, timeout=30)
        assert_refused(api, json_body=True)
        assert "name" not in json.loads(api.text)  # not the user model
        hub.record("hub", f"{victim}'s hub cookie from {OTHER_ADDRESS}{claim}: /hub/home and /hub/api/user",
                   f"HTTP {page.status_code} / {api.status_code}, refusal in ja/en")
        tried += ["/hub/home", "/hub/api/user"]
    events = refusals(hub, victim, before)
    assert [e["details"]["path"] for e in events] == tried
    assert all(e["outcome"] == "DENIED" and e["details"]["client_address"] == OTHER_ADDRESS
               and e["details"]["service"] == "hub" for e in events)
    # The terminal the cookie belongs to goes on working.
    assert owner.http.get(f"{hub.hub.url}/hub/api/user", headers=owner._hub_xsrf(), timeout=30).json()["name"] == victim


def test_review_service_refuses_a_researchers_copied_cookie(world):
    hub, people, released, _ = world
    tanaka = people["tanaka"]
    before = len(audit_events(hub.settings, "ENTRY_DECIDE", "tanaka"))
    thief = thief_of(hub, tanaka)
    for claim, spoof in SPOOFS.items():
        for path in (f"requests/{released}/package.zip", f"requests/{released}", "mine"):
            r = thief.http.get(f"{hub.hub.url}{REVIEW}/{path}", headers=spoof, allow_redirects=False, timeout=60)
            assert_refused(r)
            assert not r.content.startswith(b"PK") and "Persons by sex" not in r.text
            hub.record("review service", f"researcher's cookies from {OTHER_ADDRESS}{claim}: GET {path}", f"HTTP {r.status_code}")
    events = refusals(hub, "tanaka", before)
    assert len(events) == 9 and {e["details"]["service"] for e in events} == {"onsite-review"}
    assert {e["details"]["client_address"] for e in events} == {OTHER_ADDRESS}
    package = tanaka.http.get(f"{hub.hub.url}{REVIEW}/requests/{released}/package.zip", timeout=60)
    assert package.status_code == 200 and package.content.startswith(b"PK")
    collected = audit_events(hub.settings, "RELEASE_COLLECT", "tanaka")[-1]
    assert collected["outcome"] == "OK" and collected["details"]["client_address"] == "127.0.0.1"


def test_review_service_refuses_a_reviewers_copied_cookie(world):
    hub, people, _, pending = world
    sato = people["sato"]
    action, data = vote(sato, pending)  # the form as the reviewer's terminal shows it
    before = len(audit_events(hub.settings, "ENTRY_DECIDE", "sato"))
    decided = len(audit_events(hub.settings, "OUTPUT_DECIDE"))
    thief = thief_of(hub, sato)
    for claim, spoof in SPOOFS.items():
        r = thief.http.post(action, data=data, headers=spoof, allow_redirects=False, timeout=60)
        assert_refused(r)
        hub.record("review service", f"reviewer's cookies from {OTHER_ADDRESS}{claim}: approve an output", f"HTTP {r.status_code}")
    assert len(audit_events(hub.settings, "OUTPUT_DECIDE")) == decided  # no vote cast
    assert [e["details"]["method"] for e in refusals(hub, "sato", before)] == ["POST"] * 3
    assert sato.http.post(action, data=data, timeout=60).status_code == 200
    vote_event = audit_events(hub.settings, "OUTPUT_DECIDE", "sato")[-1]
    assert vote_event["details"]["client_address"] == "127.0.0.1"


def terminal_networks(hub) -> set[str]:
    engine = make_engine(hub.settings.db_url)
    try:
        with session_factory(engine)() as session:
            return set(session.scalars(select(Terminal.address)))
    finally:
        engine.dispose()


def test_admin_service_refuses_an_administrators_copied_cookie(world):
    hub, people, _, _ = world
    admin = people["takahashi"]
    action, xsrf = form(admin, f"{hub.hub.url}{ADMIN}/terminals", "terminals")
    data = {"_xsrf": xsrf, "facility": DEMO_FACILITY, "address": NEW_NETWORK, "label": "attacker's network"}
    before = len(audit_events(hub.settings, "ENTRY_DECIDE", "takahashi"))
    thief = thief_of(hub, admin)
    for claim, spoof in SPOOFS.items():
        r = thief.http.post(action, data=data, headers=spoof, allow_redirects=False, timeout=60)
        assert_refused(r)
        hub.record("admin service", f"administrator's cookies from {OTHER_ADDRESS}{claim}: register a terminal network",
                   f"HTTP {r.status_code}, no terminal added")
    assert NEW_NETWORK not in terminal_networks(hub)
    events = refusals(hub, "takahashi", before)
    assert [(e["details"]["service"], e["details"]["client_address"]) for e in events] == [("onsite-admin", OTHER_ADDRESS)] * 3
    assert admin.http.post(action, data=data, timeout=60).status_code == 200
    assert NEW_NETWORK in terminal_networks(hub)
    added = audit_events(hub.settings, "TERMINAL_ADD", "takahashi")[-1]
    assert added["details"]["client_address"] == "127.0.0.1"
    remove, xsrf = form(admin, f"{hub.hub.url}{ADMIN}/terminals", "terminals/remove")
    assert admin.http.post(remove, data={"_xsrf": xsrf, "address": NEW_NETWORK}, timeout=60).status_code == 200


def failed_logins(hub, username: str) -> int:
    engine = make_engine(hub.settings.db_url)
    try:
        with session_factory(engine)() as session:
            return session.scalar(select(Person.failed_logins).where(Person.username == username))
    finally:
        engine.dispose()


def test_no_password_oracle_and_no_lock_out_from_another_address(world):
    hub, *_ = world
    name = SUSPENDED_RESEARCHER  # a researcher with an active project and no session yet
    fails_before = len(audit_events(hub.settings, "LOGIN_FAIL", name))
    remote = HubUser(hub.hub, name, source_address=OTHER_ADDRESS)
    right = remote.login(SUSPENDED_PASSWORD)
    answers = {(r.status_code, login_error(r)) for r in [right] + [remote.login(f"guess-{i}") for i in range(6)]}
    assert len(answers) == 1 and right.status_code == 403, answers
    hub.record("hub login", f"right and wrong passwords from {OTHER_ADDRESS} (a password oracle)",
               f"the same answer for both (HTTP {right.status_code}, terminal not registered)")
    assert failed_logins(hub, name) == 0 and len(audit_events(hub.settings, "LOGIN_FAIL", name)) == fails_before
    denied = [e for e in audit_events(hub.settings, "ENTRY_DECIDE", name) if e["outcome"] == "DENIED"]
    assert len(denied) == 7 and {e["details"]["client_address"] for e in denied} == {OTHER_ADDRESS}
    # Six wrong guesses would have locked the account (five do); it still opens at the terminal.
    assert HubUser(hub.hub, name).login(SUSPENDED_PASSWORD).status_code == 302
    hub.record("hub login", f"lock an account out with 6 wrong passwords from {OTHER_ADDRESS}",
               "not counted: the account still logs in at the terminal")


def test_the_server_cannot_be_stopped_or_started_from_another_address(world):
    hub, people, _, _ = world
    tanaka = people["tanaka"]
    api = f"{hub.hub.url}/hub/api/users/tanaka/server"
    thief = thief_of(hub, tanaka)
    for claim, spoof in SPOOFS.items():
        stop = thief.http.delete(api, headers={**spoof, **tanaka._hub_xsrf()}, timeout=60)
        assert_refused(stop, json_body=True)
        start = thief.http.post(api, headers={**spoof, **tanaka._hub_xsrf()}, timeout=60)
        assert_refused(start, json_body=True)
        hub.record("hub", f"stop and start tanaka's server with the hub cookie from {OTHER_ADDRESS}{claim}",
                   f"HTTP {stop.status_code} / {start.status_code}, server untouched")
    assert tanaka.open_server().status_code == 200  # still running
    # From the terminal: stopped, and started again.
    assert tanaka.http.delete(api, headers=tanaka._hub_xsrf(), timeout=90).status_code in (202, 204)
    assert tanaka.start_server().status_code in (201, 202)
