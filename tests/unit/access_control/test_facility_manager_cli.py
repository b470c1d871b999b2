"""`onsite admin …` run by a facility manager (issue 16): the CLI acts for the login of the process's real user id —
here this test's own login, registered as the manager of Osaka — and refuses, and records, anything outside it."""
from __future__ import annotations

import json
import os
import pwd
import threading
from http.server import ThreadingHTTPServer

from sqlalchemy import select

from access_control import audit, policy
from access_control.enums import AuditEventType, Outcome, Role
from access_control.models import AuditEvent
from access_control.sessions import session_object
from hub_config.ports import free_port
from hub_config.settings import CLI_TOKEN_FILE, HUB_API_URL_FILE
from onsite_base.db import transaction

from test_access_cli import factory, ledger_length, onsite  # noqa: F401  (fixtures)
from test_facility_sessions import HubStandIn

LOGIN = pwd.getpwuid(os.getuid()).pw_name


def seed(factory, *, manager: bool = True) -> None:
    with transaction(factory) as s:
        for name in ("Tokyo", "Osaka"):
            policy.add_facility(s, name=name, actor="test")
        policy.add_terminal(s, facility="Tokyo", address="198.51.100.0/28", actor="test")
        policy.add_person(s, username="alice", display_name="Alice", roles=[Role.RESEARCHER], actor="test")
        policy.add_person(s, username="adam", display_name="Adam", roles=[Role.ADMINISTRATOR], actor="test")
        policy.add_person(s, username=LOGIN, display_name="This test's login", actor="test")
        if manager:
            policy.grant_facility_manager(s, LOGIN, "Osaka", actor="test")


def refusals(factory) -> list[dict]:
    with factory() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.ADMIN_ACCESS)).all()
        assert all(e.outcome is Outcome.DENIED and e.actor == f"admin:{LOGIN}" for e in rows)
        return [e.details_dict for e in rows]


def test_a_manager_of_osaka_runs_osaka_from_the_cli(onsite, factory):
    seed(factory)
    assert onsite("admin", "terminal", "add", "Osaka", "192.0.2.0/28", "--label", "room 1")[0] == 0
    assert onsite("admin", "facility", "change", "Osaka", "--seats", "1", "--booking-required")[0] == 0
    assert onsite("admin", "facility", "holidays", "Osaka", "2031")[0] == 0
    code, out, _ = onsite("admin", "booking", "add", "alice", "Osaka", "--start", "2031-06-02T09:00", "--end", "2031-06-02T12:00")
    assert code == 0, out
    code, _, err = onsite("admin", "booking", "add", "adam", "Osaka", "--start", "2031-06-02T11:00", "--end", "2031-06-02T13:00")
    assert code == 2 and "no seat free" in err
    code, out, _ = onsite("admin", "booking", "seats", "Osaka", "--from", "2031-06-02", "--days", "2", "--json")
    assert [(d["booked"], d["free"]) for d in json.loads(out)] == [(1, 0), (0, 1)]
    code, out, _ = onsite("admin", "facility", "show", "Osaka", "--json")
    view = json.loads(out)
    assert view["seats"] == 1 and view["closure_notes"]["2031-01-01"] == "元日" and view["managers"] == []
    code, out, _ = onsite("admin", "facility", "list", "--json")
    assert [f["name"] for f in json.loads(out)] == ["Osaka"]  # Tokyo is not hers to see
    code, out, _ = onsite("admin", "terminal", "list", "--json")
    assert [t["address"] for t in json.loads(out)] == ["192.0.2.0/28"]
    with factory() as s:
        mine = s.scalars(select(AuditEvent.action).where(AuditEvent.actor == f"admin:{LOGIN}")).all()
        assert [a.value for a in mine] == ["TERMINAL_ADD", "FACILITY_CHANGE", "FACILITY_CHANGE", "BOOKING_ADD"]


def test_a_manager_of_osaka_cannot_reach_tokyo_or_people_from_the_cli(onsite, factory, monkeypatch):
    seed(factory)
    with transaction(factory) as s:
        booking = policy.add_booking(s, username="alice", facility="Tokyo", starts_at=policy.datetime(2031, 6, 2, 0, tzinfo=policy.timezone.utc),
                                     ends_at=policy.datetime(2031, 6, 2, 3, tzinfo=policy.timezone.utc), actor="test")
    monkeypatch.setenv("USER", "adam")  # naming an administrator changes nothing: the real user id is read
    monkeypatch.setenv("LOGNAME", "adam")
    before = ledger_length(factory)
    attacks = [
        ("terminal", "add", "Tokyo", "198.51.100.64/28"),
        ("terminal", "remove", "198.51.100.0/28"),
        ("facility", "change", "Tokyo", "--seats", "0"),
        ("facility", "hours", "Tokyo", "always"),
        ("facility", "close-day", "Tokyo", "2031-06-03"),
        ("facility", "holidays", "Tokyo", "2031"),
        ("facility", "show", "Tokyo"),
        ("booking", "cancel", str(booking.id)),
        ("booking", "list", "--facility", "Tokyo"),
        ("booking", "seats", "Tokyo"),
    ]
    for attack in attacks:
        code, out, err = onsite("admin", *attack)
        assert code == 2 and "Tokyo" not in out and ("unknown" in err or "no terminal" in err), (attack, err)
    admins_only = [
        ("person", "list"), ("person", "add", "eve", "--name", "Eve", "--no-password"), ("role", "grant", LOGIN, "administrator"),
        ("project", "list"), ("grant", "list"), ("accreditation", "list"), ("facility", "add", "Kyoto"),
        ("manager", "grant", LOGIN, "Tokyo"), ("manager", "list"),
        ("facility", "change", "Osaka", "--accreditation-kind", "training"),
    ]
    for attack in admins_only:
        code, _, err = onsite("admin", *attack)
        assert code == 2 and "only administrators" in err, (attack, err)
    code, out, _ = onsite("admin", "booking", "list", "--json")
    assert json.loads(out) == []  # Tokyo's booking is not listed
    recorded = refusals(factory)
    assert len(recorded) == len(attacks) + len(admins_only)
    assert recorded[0]["command"] == "terminal add" and recorded[0]["names"] == {"name": "Tokyo"}
    assert ledger_length(factory) == before + len(recorded)  # nothing else was written
    assert {r["refused"] for r in recorded} == {"unknown_facility", "unknown_terminal", "unknown_booking", "administrators_only"}


def test_a_login_that_is_a_person_without_an_admin_role_may_do_nothing(onsite, factory):
    seed(factory, manager=False)
    code, _, err = onsite("admin", "facility", "list")
    assert code == 2 and "neither an administrator nor a facility manager" in err
    assert refusals(factory)[-1]["refused"] == "not_admin"
    with transaction(factory) as s:
        policy.grant_role(s, LOGIN, Role.ADMINISTRATOR, actor="test")
    code, out, _ = onsite("admin", "facility", "list", "--json")
    assert code == 0 and {f["name"] for f in json.loads(out)} == {"Tokyo", "Osaka"}


def test_the_broad_network_override_from_the_cli(onsite, factory):
    seed(factory, manager=False)
    with transaction(factory) as s:
        policy.grant_role(s, LOGIN, Role.ADMINISTRATOR, actor="test")
    before = ledger_length(factory)
    code, _, err = onsite("admin", "terminal", "add", "Osaka", "10.0.0.0/8")
    assert code == 2 and "broader than a /24" in err and ledger_length(factory) == before
    code, _, err = onsite("admin", "terminal", "add", "Osaka", "0.0.0.0/0", "--override")
    assert code == 2 and "every address" in err
    code, out, _ = onsite("admin", "terminal", "add", "Osaka", "10.0.0.0/8", "--override", "--json")
    assert code == 0 and json.loads(out)["override"] is True
    with factory() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.TERMINAL_ADD).order_by(AuditEvent.seq.desc())).first()
        assert event.details_dict | {"client_address": "-", "os_user": "-"} == {
            "facility": "Osaka", "label": "", "override": True, "client_address": "-", "os_user": "-"}
    code, out, _ = onsite("admin", "terminal", "list")
    assert [line.split()[-1] for line in out.splitlines() if "10.0.0.0/8" in line] == ["True"]


def test_managers_are_granted_and_listed_by_an_administrator(onsite, factory):
    seed(factory, manager=False)
    with transaction(factory) as s:  # this login is an administrator here
        policy.grant_role(s, LOGIN, Role.ADMINISTRATOR, actor="test")
    code, out, _ = onsite("admin", "manager", "grant", "alice", "Tokyo")
    assert code == 0 and "alice now manages Tokyo" in out
    code, out, _ = onsite("admin", "manager", "list", "--json")
    assert json.loads(out) == [{"facility": "Osaka", "managers": []}, {"facility": "Tokyo", "managers": ["alice"]}]
    code, _, err = onsite("admin", "role", "grant", "alice", "facility_manager")
    assert code == 2 and "per facility" in err
    code, out, _ = onsite("admin", "manager", "revoke", "alice", "Tokyo", "--json")
    assert code == 0 and json.loads(out) == {"username": "alice", "facilities": []}


def test_a_managers_listing_of_live_sessions_shows_hers_and_is_in_the_ledger(onsite, factory, tmp_path):
    """`onsite admin sessions list` by the manager of Osaka, against a stand-in of the hub's API: alice's session at
    Osaka is listed, adam's at Tokyo is not, and the read is an ADMIN_ACCESS OK event naming Osaka and one row."""
    seed(factory)
    with transaction(factory) as s:
        policy.add_terminal(s, facility="Osaka", address="192.0.2.0/28", actor="test")
        for user, address in (("alice", "192.0.2.5"), ("adam", "198.51.100.3")):
            audit.record(s, AuditEventType.SESSION_START, actor=user, object=session_object(user),
                         details={"client_address": address, "projects": []})
    HubStandIn.running = {"alice": True, "adam": True}
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), HubStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    run = tmp_path / "home" / "run"
    run.mkdir(parents=True, exist_ok=True)
    (run / HUB_API_URL_FILE).write_text(f"http://127.0.0.1:{server.server_address[1]}/hub/api\n")
    (run / CLI_TOKEN_FILE).write_text("token\n")
    try:
        code, out, err = onsite("admin", "sessions", "list", "--json")
    finally:
        server.shutdown()
    assert code == 0, err
    assert [(r["username"], r["facility"]) for r in json.loads(out)] == [("alice", "Osaka")]
    with factory() as s:
        reads = s.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.ADMIN_ACCESS)).all()
    assert [(e.actor, e.object, e.outcome) for e in reads] == [(f"admin:{LOGIN}", "read:sessions", Outcome.OK)]
    details = reads[0].details_dict
    assert (details["read"], details["facilities"], details["rows"], details["command"]) == ("sessions", ["Osaka"], 1, "sessions list")
