"""Entry decisions: the pure function on hand-built facts, and the same through the store."""
from __future__ import annotations

import ipaddress
import json
import random
from datetime import date, datetime, timedelta, timezone

import pytest

from access_control import audit, policy
from onsite_base.db import transaction
from access_control.entry import (
    DenialReason,
    EntryFacts,
    ProjectFacts,
    TerminalFacts,
    TerminalIndex,
    decide_entry,
    load_entry_facts,
    match_terminal,
    record_entry,
)
from access_control.enums import AuditEventType, Outcome, Role
from access_control.identity import LocalIdentityStore
from access_control.models import AuditEvent, ProjectStatus

ACTOR = "admin:test"
UTC = timezone.utc
TOKYO_TERMINAL = TerminalFacts(ipaddress.ip_network("192.0.2.0/28"), "seat", "Tokyo", "Asia/Tokyo")
V6_TERMINAL = TerminalFacts(ipaddress.ip_network("2001:db8::/64"), "", "Tokyo", "Asia/Tokyo")
PROJECT = ProjectFacts("p1", ProjectStatus.ACTIVE, date(2026, 4, 1), date(2027, 3, 31))


def researcher(address: str = "192.0.2.5", **overrides) -> EntryFacts:
    values = dict(
        username="alice",
        client_address=address,
        known=True,
        roles=frozenset({Role.RESEARCHER}),
        projects=(PROJECT,),
        terminals=(TOKYO_TERMINAL, V6_TERMINAL),
    )
    return EntryFacts(**(values | overrides))


NOON = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo


def test_researcher_with_active_project_at_registered_terminal_enters():
    decision = decide_entry(researcher(), NOON)
    assert decision.allowed and decision.reasons == ()
    assert decision.facility == "Tokyo" and decision.active_projects == ("p1",)


@pytest.mark.parametrize("address", ["2001:db8::42", "[2001:db8::42]", "::ffff:192.0.2.5", "192.0.2.15"])
def test_ipv6_and_mapped_addresses_match(address):
    assert decide_entry(researcher(address), NOON).allowed


@pytest.mark.parametrize("address", ["192.0.2.16", "2001:db9::1", "::ffff:192.0.3.1", "garbage", "", "192.0.2.5, 10.0.0.1"])
def test_unregistered_terminal_refused(address):
    decision = decide_entry(researcher(address), NOON)
    assert not decision.allowed and decision.reasons == (DenialReason.TERMINAL_NOT_REGISTERED,)


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ADMINISTRATOR])
def test_reviewers_and_administrators_need_no_project_but_a_terminal(role):
    staff = researcher(roles=frozenset({role}), projects=())
    assert decide_entry(staff, NOON).allowed
    away = researcher("198.51.100.1", roles=frozenset({role}), projects=())
    assert decide_entry(away, NOON).reasons == (DenialReason.TERMINAL_NOT_REGISTERED,)


@pytest.mark.parametrize(
    "project",
    [
        ProjectFacts("old", ProjectStatus.ACTIVE, date(2025, 4, 1), date(2026, 3, 31)),  # expired
        ProjectFacts("new", ProjectStatus.ACTIVE, date(2026, 7, 1), date(2027, 3, 31)),  # future
        ProjectFacts("sus", ProjectStatus.SUSPENDED, date(2026, 4, 1), date(2027, 3, 31)),
        ProjectFacts("end", ProjectStatus.CLOSED, date(2026, 4, 1), date(2027, 3, 31)),
    ],
)
def test_no_active_project(project):
    decision = decide_entry(researcher(projects=(project,)), NOON)
    assert decision.reasons == (DenialReason.NO_ACTIVE_PROJECT,) and decision.active_projects == ()


@pytest.mark.parametrize(
    "now, allowed",
    [
        (datetime(2026, 3, 31, 14, 59, 59, tzinfo=UTC), False),  # 23:59:59 on 31 March in Tokyo: not yet
        (datetime(2026, 3, 31, 15, 0, 0, tzinfo=UTC), True),  # 00:00 on 1 April in Tokyo (still 31 March in UTC)
        (datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC), True),  # last second of the last day
        (datetime(2027, 3, 31, 15, 0, 0, tzinfo=UTC), False),  # 00:00 on 1 April 2027 in Tokyo (still 31 March in UTC)
    ],
)
def test_project_dates_are_read_at_midnight_in_tokyo(now, allowed):
    decision = decide_entry(researcher(), now)
    assert decision.allowed is allowed
    assert decision.reasons == (() if allowed else (DenialReason.NO_ACTIVE_PROJECT,))


def test_facility_time_zone_decides_the_date():
    london = TerminalFacts(ipaddress.ip_network("203.0.113.0/24"), "", "London", "Europe/London")
    facts = researcher("203.0.113.9", terminals=(london,))
    # 23:30 UTC on 31 March 2026 = 00:30 on 1 April in London (BST), 08:30 in Tokyo.
    assert decide_entry(facts, datetime(2026, 3, 31, 23, 30, tzinfo=UTC)).allowed
    assert not decide_entry(facts, datetime(2026, 3, 31, 22, 30, tzinfo=UTC)).allowed


def test_every_reason_that_applies_is_given():
    facts = researcher(
        "10.9.9.9",
        disabled=True,
        locked_until=NOON + timedelta(minutes=5),
        projects=(ProjectFacts("old", ProjectStatus.ACTIVE, date(2020, 1, 1), date(2020, 12, 31)),),
    )
    decision = decide_entry(facts, NOON)
    assert set(decision.reasons) == {
        DenialReason.ACCOUNT_DISABLED,
        DenialReason.ACCOUNT_LOCKED,
        DenialReason.NO_ACTIVE_PROJECT,
        DenialReason.TERMINAL_NOT_REGISTERED,
    }
    # An expired lock no longer counts.
    assert DenialReason.ACCOUNT_LOCKED not in decide_entry(facts, NOON + timedelta(minutes=6)).reasons


def test_unknown_account_and_account_without_role():
    unknown = EntryFacts(username="ghost", client_address="192.0.2.5", known=False, terminals=(TOKYO_TERMINAL,))
    assert decide_entry(unknown, NOON).reasons == (DenialReason.ACCOUNT_UNKNOWN,)
    roleless = researcher(roles=frozenset())
    assert decide_entry(roleless, NOON).reasons == (DenialReason.NO_ROLE,)


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_entry(researcher(), datetime(2026, 6, 1, 12, 0))


def test_most_specific_terminal_wins():
    wide = TerminalFacts(ipaddress.ip_network("192.0.2.0/24"), "room", "Tokyo")
    seat = TerminalFacts(ipaddress.ip_network("192.0.2.7/32"), "seat 7", "Tokyo")
    assert decide_entry(researcher("192.0.2.7", terminals=(wide, seat)), NOON).terminal == seat


def test_the_terminal_index_matches_as_the_scan_does():
    """TerminalIndex (the projection's lookup per prefix length) finds the same, most specific, terminal as
    match_terminal for addresses inside, between and outside nested networks of both versions."""
    terminals = tuple(TerminalFacts(ipaddress.ip_network(n), n, "F") for n in (
        "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "192.0.2.0/28", "2001:db8::/32", "2001:db8:1::/48",
        "2001:db8:1::5/128"))
    index = TerminalIndex(terminals)
    rng = random.Random(3)
    addresses = ["10.1.2.3", "10.1.2.4", "10.1.3.1", "10.2.0.1", "11.0.0.1", "192.0.2.15", "192.0.2.16", "::ffff:10.1.2.3",
                 "2001:db8:1::5", "[2001:db8:1::6]", "2001:db8:2::1", "2001:db9::1", "garbage", ""]
    addresses += [f"10.{rng.choice((1, 2))}.{rng.choice((2, 3))}.{rng.randrange(256)}" for _ in range(200)]
    for address in addresses:
        assert index.match(address) is match_terminal(terminals, address), address


def test_every_reason_has_both_languages():
    for reason in DenialReason:
        assert reason.message("ja") and reason.message("en") and reason.message("ja") != reason.message("en")
    assert DenialReason.TERMINAL_NOT_REGISTERED.message("ja") == "この端末は利用施設の端末として登録されていません。"


# ---------------------------------------------------------------- through the store


def test_loaded_facts_decide_and_are_recorded(db, world):
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    with transaction(db) as s:
        allowed = decide_entry(load_entry_facts(s, "alice", "127.0.0.1"), now)
        record_entry(s, allowed, username="alice", client_address="127.0.0.1")
        away = decide_entry(load_entry_facts(s, "alice", "10.1.2.3"), now)
        record_entry(s, away, username="alice", client_address="10.1.2.3", stage="spawn")
        assert decide_entry(load_entry_facts(s, "rita", "2001:db8::5"), now).allowed
        assert decide_entry(load_entry_facts(s, "ghost", "127.0.0.1"), now).reasons == (DenialReason.ACCOUNT_UNKNOWN,)
        assert decide_entry(load_entry_facts(s, "*)(uid=*", "127.0.0.1"), now).reasons == (DenialReason.ACCOUNT_UNKNOWN,)
    assert allowed.allowed and allowed.active_projects == (world.project,) and allowed.terminal.label == "seat 1"
    assert away.reasons == (DenialReason.TERMINAL_NOT_REGISTERED,)
    with db() as s:
        events = s.query(AuditEvent).filter(AuditEvent.action == AuditEventType.ENTRY_DECIDE).order_by(AuditEvent.seq).all()
    assert [(e.actor, e.outcome) for e in events] == [("alice", Outcome.OK), ("alice", Outcome.DENIED)]
    assert json.loads(events[0].details) == {
        "stage": "login",
        "client_address": "127.0.0.1",
        "reasons": [],
        "active_projects": [world.project],
        "facility": "Tokyo",
        "terminal": "127.0.0.1/32",
        "day": "2026-06-01",
    }
    assert json.loads(events[1].details)["reasons"] == ["TERMINAL_NOT_REGISTERED"]


def test_store_changes_reach_the_decision(db, world):
    """Expired project, disabled account, locked account after brute force, removed terminal."""
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)

    def reasons(username="alice", address="127.0.0.1", at=now):
        with db() as s:
            return set(decide_entry(load_entry_facts(s, username, address), at).reasons)

    assert reasons(at=datetime(2027, 4, 1, 3, 0, tzinfo=UTC)) == {DenialReason.NO_ACTIVE_PROJECT}
    with transaction(db) as s:
        policy.set_disabled(s, "alice", True, actor=ACTOR)
    assert reasons() == {DenialReason.ACCOUNT_DISABLED}
    with transaction(db) as s:
        policy.set_disabled(s, "alice", False, actor=ACTOR)
        store = LocalIdentityStore(max_failed_logins=3)
        for attempt in range(3):
            store.authenticate(s, "alice", f"brute-force-{attempt}")
    assert reasons(at=datetime.now(UTC)) >= {DenialReason.ACCOUNT_LOCKED}
    with transaction(db) as s:
        policy.unlock_person(s, "alice", actor=ACTOR)
        policy.remove_terminal(s, address="127.0.0.1", actor=ACTOR)
    assert reasons() == {DenialReason.TERMINAL_NOT_REGISTERED}
    with transaction(db) as s:
        policy.change_project(s, world.project, end_date=date(2026, 5, 31), actor=ACTOR, today=world.start)
    assert reasons("alice", "2001:db8::1") == {DenialReason.NO_ACTIVE_PROJECT}


def test_the_terminal_snapshot_a_process_keeps_follows_every_change(db, world):
    """load_terminals keeps the network between decisions: each change to terminals, hours, closed days, an
    emergency, a booking rule or a time zone is seen by the very next decision in the same process."""
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # a Monday, 12:00 in Tokyo

    def reasons(address="127.0.0.1"):
        with db() as s:
            return set(decide_entry(load_entry_facts(s, "alice", address), now).reasons)

    steps = [
        (lambda s: policy.close_for_emergency(s, "Tokyo", "fire", actor=ACTOR), {DenialReason.EMERGENCY_CLOSURE}),
        (lambda s: policy.reopen_after_emergency(s, "Tokyo", actor=ACTOR), set()),
        (lambda s: policy.add_closed_day(s, "Tokyo", date(2026, 6, 1), actor=ACTOR), {DenialReason.FACILITY_CLOSED}),
        (lambda s: policy.remove_closed_day(s, "Tokyo", date(2026, 6, 1), actor=ACTOR), set()),
        (lambda s: policy.set_opening_hours(s, "Tokyo", "Mon-Fri 13:00-17:00", actor=ACTOR), {DenialReason.FACILITY_CLOSED}),
        (lambda s: policy.change_facility(s, "Tokyo", timezone_name="Pacific/Honolulu", actor=ACTOR), {DenialReason.FACILITY_CLOSED}),
        (lambda s: policy.set_opening_hours(s, "Tokyo", "always", actor=ACTOR), set()),
        (lambda s: policy.change_facility(s, "Tokyo", booking_required=True, actor=ACTOR), {DenialReason.NO_BOOKING}),
        (lambda s: policy.change_facility(s, "Tokyo", booking_required=False, actor=ACTOR), set()),
        (lambda s: policy.remove_terminal(s, address="127.0.0.1", actor=ACTOR), {DenialReason.TERMINAL_NOT_REGISTERED}),
        (lambda s: policy.add_terminal(s, facility="Tokyo", address="127.0.0.0/24", label="seat 1", actor=ACTOR), set()),
    ]
    assert reasons() == set()
    for step, expected in steps:
        with transaction(db) as s:
            step(s)
        assert reasons() == expected, step
    with transaction(db) as s:
        policy.add_facility(s, name="Osaka", actor=ACTOR)
        policy.add_terminal(s, facility="Osaka", address="127.0.1.9", label="seat 1", actor=ACTOR)
        policy.change_facility(s, "Osaka", booking_required=True, actor=ACTOR)
    assert reasons("127.0.1.9") == {DenialReason.NO_BOOKING}  # a terminal of a new facility


def test_absurd_user_name_is_unknown_and_recorded_bounded(db, world):
    """Whatever a login form sends fits the ledger on every backend (PostgreSQL enforces lengths)."""
    name = "ｘ" * 1000 + "*)(uid=*"
    with transaction(db) as s:
        facts = load_entry_facts(s, name, "127.0.0.1")
        decision = decide_entry(facts, NOON)
        event = record_entry(s, decision, username=facts.username, client_address="127.0.0.1")
    assert decision.reasons == (DenialReason.ACCOUNT_UNKNOWN,)
    assert event.actor == "x" * 64 and event.outcome is Outcome.DENIED
    with transaction(db) as s:
        assert LocalIdentityStore().authenticate(s, name, "whatever password") is None


@pytest.mark.parametrize("name", ["alice\x00", "\ud800bob", "eve\u202e"])
def test_control_characters_in_user_names_reach_the_ledger_escaped(db, world, name):
    """PostgreSQL text holds no NUL and UTF-8 no lone surrogate: such names are refused, not a crash."""
    with transaction(db) as s:
        facts = load_entry_facts(s, name, "127.0.0.1")
        event = record_entry(s, decide_entry(facts, NOON), username=facts.username, client_address="127.0.0.1")
        assert LocalIdentityStore().authenticate(s, name, "whatever password") is None
    assert facts.known is False and "\\u" in event.actor
    with db() as s:
        assert audit.verify(s).ok
