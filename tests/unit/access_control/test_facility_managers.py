"""Facility managers (issue 16): a role scoped to facilities, tried from the service layer both faces call — a
manager of Osaka acting on Tokyo is refused with nothing changed, in the words an unknown facility gets; seats,
Japanese public holidays, emergency closures and the broad-network override."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from access_control import policy
from access_control.entry import DenialReason, decide_entry, load_entry_facts
from access_control.enums import AuditEventType, Role
from access_control.errors import PolicyError
from access_control.models import AuditEvent, Facility, is_override_network
from onsite_base.db import transaction

from conftest import ACTOR

TOKYO = ZoneInfo("Asia/Tokyo")
DAY = date(2031, 6, 2)  # a Monday, far enough ahead that bookings are never past
IN_PROJECT = date(2027, 3, 1)  # a Monday within the world's project: entry decisions are taken then


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO)


def events(session, action: AuditEventType) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


@pytest.fixture
def osaka(db, world):
    """mika manages Osaka (terminal 192.0.2.0/28, 2 seats); Tokyo (the world's) is not hers."""
    with transaction(db) as s:
        policy.add_facility(s, name="Osaka", actor=ACTOR)
        policy.add_terminal(s, facility="Osaka", address="192.0.2.0/28", actor=ACTOR)
        policy.change_facility(s, "Osaka", seats="2", actor=ACTOR)
        policy.add_person(s, username="mika", display_name="Mika", actor=ACTOR)
        policy.grant_facility_manager(s, "mika", "Osaka", actor=ACTOR)
        return policy.actor_scope(s, "mika")


def test_manager_role_is_granted_per_facility_and_goes_with_the_last(db, world, osaka, refused):
    assert osaka == policy.Scope(frozenset({"Osaka"}))
    with transaction(db) as s:
        assert policy.person_roles(s, "mika") == {Role.FACILITY_MANAGER}
        policy.grant_facility_manager(s, "mika", "Tokyo", actor=ACTOR)
        assert policy.actor_scope(s, "mika").facilities == {"Osaka", "Tokyo"}
        grants = events(s, AuditEventType.ROLE_GRANT)
        assert [e.details_dict for e in grants[-2:]] == [{"role": "FACILITY_MANAGER", "facility": f} for f in ("Osaka", "Tokyo")]
    assert "Osaka" in refused(lambda s: policy.grant_facility_manager(s, "mika", "Osaka", actor=ACTOR))
    assert "per facility" in refused(lambda s: policy.grant_role(s, "mika", Role.FACILITY_MANAGER, actor=ACTOR))
    with transaction(db) as s:
        policy.revoke_facility_manager(s, "mika", "Tokyo", actor=ACTOR)
        assert policy.person_roles(s, "mika") == {Role.FACILITY_MANAGER}
        policy.revoke_facility_manager(s, "mika", "Osaka", actor=ACTOR)
        assert policy.person_roles(s, "mika") == set()
        assert events(s, AuditEventType.ROLE_REVOKE)[-1].details_dict == {
            "role": "FACILITY_MANAGER", "facility": "Osaka", "role_removed": True}
        with pytest.raises(PolicyError, match="neither an administrator nor a facility manager"):
            policy.actor_scope(s, "mika")


def test_revoking_the_role_takes_every_facility(db, world, osaka):
    with transaction(db) as s:
        policy.revoke_role(s, "mika", Role.FACILITY_MANAGER, actor=ACTOR)
        assert policy.managed_facilities(s, "mika") == []
        assert events(s, AuditEventType.ROLE_REVOKE)[-1].details_dict == {"role": "FACILITY_MANAGER", "facilities": ["Osaka"]}


def test_who_may_administer(db, world, osaka):
    with transaction(db) as s:
        assert policy.actor_scope(s, "adam") is policy.EVERYTHING
        for nobody in ("alice", "rita", "nobody-at-all"):
            with pytest.raises(PolicyError):
                policy.actor_scope(s, nobody)
        policy.set_disabled(s, "mika", True, actor=ACTOR)
        with pytest.raises(PolicyError):
            policy.actor_scope(s, "mika")


def test_a_manager_of_osaka_cannot_touch_tokyo(db, world, osaka, refused):
    """Every facility action, aimed at Tokyo by Osaka's manager: refused, nothing changed, and told no more than
    about a facility that does not exist."""
    with transaction(db) as s:
        booking = policy.add_booking(s, username="alice", facility="Tokyo", starts_at=at(10), ends_at=at(11), actor=ACTOR)
    unknown = refused(lambda s: policy.require_facility(s, "Nowhere"))
    attacks = {
        "terminal add": lambda s: policy.add_terminal(s, facility="Tokyo", address="198.51.100.7", actor="mika", scope=osaka),
        "terminal remove": lambda s: policy.remove_terminal(s, address="127.0.0.1", actor="mika", scope=osaka),
        "hours": lambda s: policy.set_opening_hours(s, "Tokyo", "mon-fri 09:00-17:00", actor="mika", scope=osaka),
        "close day": lambda s: policy.add_closed_day(s, "Tokyo", DAY, actor="mika", scope=osaka),
        "holidays": lambda s: policy.add_public_holidays(s, "Tokyo", 2031, actor="mika", scope=osaka),
        "seats": lambda s: policy.change_facility(s, "Tokyo", seats="0", actor="mika", scope=osaka),
        "emergency": lambda s: policy.close_for_emergency(s, "Tokyo", "drill", actor="mika", scope=osaka),
        "book": lambda s: policy.add_booking(s, username="alice", facility="Tokyo", starts_at=at(12), ends_at=at(13),
                                             actor="mika", scope=osaka),
        "cancel": lambda s: policy.cancel_booking(s, booking.id, actor="mika", scope=osaka),
        "list bookings": lambda s: policy.list_bookings(s, facility="Tokyo", scope=osaka),
        "seat days": lambda s: policy.seat_days(s, "Tokyo", DAY, 7, scope=osaka),
    }
    for name, attack in attacks.items():
        message = refused(attack)
        assert "Tokyo" not in message or message == unknown.replace("Nowhere", "Tokyo"), name
    # administrators' actions, whatever the facility
    for attack in (
        lambda s: policy.add_facility(s, name="Kyoto", actor="mika", scope=osaka),
        lambda s: policy.change_facility(s, "Osaka", accreditation_kind="training", actor="mika", scope=osaka),
        lambda s: policy.grant_facility_manager(s, "mika", "Tokyo", actor="mika", scope=osaka),
    ):
        assert "only administrators" in refused(attack)
    with transaction(db) as s:  # and the lists show only Osaka
        assert [f.name for f in policy.list_facilities(s, osaka)] == ["Osaka"]
        assert [t.address for t in policy.list_terminals(s, osaka)] == ["192.0.2.0/28"]
        assert policy.list_bookings(s, scope=osaka) == []


def test_a_manager_runs_her_own_facility_in_the_ledger(db, world, osaka):
    with transaction(db) as s:
        policy.add_terminal(s, facility="Osaka", address="192.0.2.64/28", label="room 2", actor="mika", scope=osaka)
        policy.set_opening_hours(s, "Osaka", "mon-fri 09:00-17:00", actor="mika", scope=osaka)
        policy.add_closed_day(s, "Osaka", DAY + timedelta(days=1), note="棚卸し", actor="mika", scope=osaka)
        policy.change_facility(s, "Osaka", seats="3", booking_required=True, actor="mika", scope=osaka)
        booking = policy.add_booking(s, username="alice", facility="Osaka", starts_at=at(9), ends_at=at(12), actor="mika", scope=osaka)
        policy.cancel_booking(s, booking.id, actor="mika", scope=osaka)
        policy.remove_terminal(s, address="192.0.2.64/28", actor="mika", scope=osaka)
        mine = s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "mika").order_by(AuditEvent.seq)).all()
        assert [a.value for a in mine] == ["TERMINAL_ADD", "FACILITY_CHANGE", "FACILITY_CHANGE", "FACILITY_CHANGE",
                                           "BOOKING_ADD", "BOOKING_CANCEL", "TERMINAL_REMOVE"]


def test_a_clash_at_another_facility_is_refused_without_naming_it(db, world, osaka, refused):
    with transaction(db) as s:
        policy.add_booking(s, username="alice", facility="Tokyo", starts_at=at(10), ends_at=at(11), actor=ACTOR)
    message = refused(lambda s: policy.add_booking(s, username="alice", facility="Osaka", starts_at=at(10, 30), ends_at=at(12),
                                                   actor="mika", scope=osaka))
    assert "another facility" in message and "Tokyo" not in message


# ---------------------------------------------------------------- seats


def test_bookings_cannot_exceed_the_seats(db, world, osaka, refused):
    with transaction(db) as s:
        policy.add_person(s, username="bob", display_name="Bob", roles=[Role.RESEARCHER], actor=ACTOR)
        policy.add_person(s, username="carol", display_name="Carol", roles=[Role.RESEARCHER], actor=ACTOR)
        policy.add_booking(s, username="alice", facility="Osaka", starts_at=at(9), ends_at=at(12), actor=ACTOR)
        bob = policy.add_booking(s, username="bob", facility="Osaka", starts_at=at(11), ends_at=at(14), actor=ACTOR)
    message = refused(lambda s: policy.add_booking(s, username="carol", facility="Osaka", starts_at=at(8), ends_at=at(11, 30), actor=ACTOR))
    assert "no seat free" in message and "2" in message
    with pytest.raises(PolicyError) as caught:
        with transaction(db) as s:
            policy.add_booking(s, username="carol", facility="Osaka", starts_at=at(11), ends_at=at(12), actor=ACTOR)
    assert "満席" in caught.value.text("ja")
    with transaction(db) as s:
        # back to back with both: a seat frees at 12:00 exactly
        policy.add_booking(s, username="carol", facility="Osaka", starts_at=at(12), ends_at=at(13), actor=ACTOR)
        days = policy.seat_days(s, "Osaka", DAY, 2)
        assert [(d.day, d.booked, d.free) for d in days] == [(DAY, 2, 0), (DAY + timedelta(days=1), 0, 2)]
        policy.cancel_booking(s, bob.id, actor=ACTOR)  # a cancelled booking holds no seat
        assert policy.seat_days(s, "Osaka", DAY, 1)[0].free == 1
        policy.change_facility(s, "Osaka", seats="", actor=ACTOR)  # '-' on both faces: not limited
        assert policy.seat_days(s, "Osaka", DAY, 1)[0].free is None


@pytest.mark.parametrize("text", ["-1", "two", "1.5", "10001"])
def test_seats_must_be_a_whole_number(db, world, osaka, refused, text):
    assert "whole number" in refused(lambda s: policy.change_facility(s, "Osaka", seats=text, actor=ACTOR))


def test_peak_overlap_counts_the_busiest_moment():
    slots = [(at(9), at(12)), (at(10), at(11)), (at(11), at(13)), (at(14), at(15))]
    assert policy.peak_overlap(slots, at(0), at(23)) == 2
    assert policy.peak_overlap(slots, at(10, 30), at(10, 45)) == 2
    assert policy.peak_overlap(slots, at(13), at(14)) == 0


def test_a_researcher_without_a_booking_is_refused_with_the_reason(db, world, osaka):
    with transaction(db) as s:
        policy.change_facility(s, "Osaka", booking_required=True, actor=ACTOR)
        decision = decide_entry(load_entry_facts(s, "alice", "192.0.2.3", as_of=at(10, day=IN_PROJECT)),
                                at(10, day=IN_PROJECT))
    assert decision.reasons == (DenialReason.NO_BOOKING,)
    assert "予約" in decision.messages("ja")[0] and "booking" in decision.messages("en")[0]


# ---------------------------------------------------------------- calendars and emergency closures


def test_japanese_public_holidays_become_closures_named_in_japanese(db, world, osaka, refused):
    with transaction(db) as s:
        policy.add_closed_day(s, "Osaka", date(2031, 1, 1), note="年始休業", actor=ACTOR)
        added = policy.add_public_holidays(s, "Osaka", 2031, actor="mika", scope=osaka)
        notes = {c.day: c.note for c in s.get(Facility, added[0].facility_id).closures}
        assert notes[date(2031, 1, 1)] == "年始休業"  # a day already closed keeps its note
        assert notes[date(2031, 5, 3)] == "憲法記念日" and notes[date(2031, 11, 3)] == "文化の日"
        assert date(2031, 1, 1) not in {c.day for c in added}
        event = events(s, AuditEventType.FACILITY_CHANGE)[-1].details_dict
        assert event["year"] == 2031 and "2031-05-03" in event["public_holidays_added"]
        decision = decide_entry(load_entry_facts(s, "alice", "192.0.2.3"), at(10, day=date(2031, 5, 5)))
        assert DenialReason.FACILITY_CLOSED in decision.reasons
    assert "already closed on every public holiday" in refused(lambda s: policy.add_public_holidays(s, "Osaka", 2031, actor=ACTOR))
    assert "1955" in refused(lambda s: policy.add_public_holidays(s, "Osaka", 1900, actor=ACTOR))
    refused(lambda s: policy.add_booking(s, username="alice", facility="Osaka", starts_at=at(10, day=date(2031, 5, 5)),
                                         ends_at=at(11, day=date(2031, 5, 5)), actor=ACTOR))


def test_an_emergency_closure_refuses_entry_with_its_reason_until_reopened(db, world, osaka, refused):
    assert "closure reason" in refused(lambda s: policy.close_for_emergency(s, "Osaka", "  ", actor="mika", scope=osaka))
    assert "at most 300" in refused(lambda s: policy.close_for_emergency(s, "Osaka", "x" * 301, actor="mika", scope=osaka))
    with transaction(db) as s:
        policy.close_for_emergency(s, "Osaka", "停電", actor="mika", scope=osaka)
        decision = decide_entry(load_entry_facts(s, "alice", "192.0.2.3"), at(10, day=IN_PROJECT))
        assert decision.reasons == (DenialReason.EMERGENCY_CLOSURE,)
    assert "停電" in refused(lambda s: policy.close_for_emergency(s, "Osaka", "again", actor=ACTOR))
    with transaction(db) as s:
        policy.reopen_after_emergency(s, "Osaka", actor="mika", scope=osaka)
        assert decide_entry(load_entry_facts(s, "alice", "192.0.2.3"), at(10, day=IN_PROJECT)).allowed
        changes = [e.details_dict for e in events(s, AuditEventType.FACILITY_CHANGE)[-2:]]
        assert changes[0] == {"emergency_closure": "停電"} and changes[1]["emergency_reopened"] == "停電"


def test_time_zones_are_iana_names(db, world, refused):
    assert "Mars/Olympus" in refused(lambda s: policy.add_facility(s, name="Mars", timezone_name="Mars/Olympus", actor=ACTOR))
    with transaction(db) as s:
        assert policy.add_facility(s, name="Naha", timezone_name="Asia/Tokyo", actor=ACTOR).timezone == "Asia/Tokyo"


# ---------------------------------------------------------------- guard rails


@pytest.mark.parametrize("network, broad", [
    ("192.0.2.0/24", False), ("198.51.0.0/23", True), ("10.0.0.0/8", True),
    ("2001:db8:0:100::/56", False), ("2001:db8:1000::/48", True),
])
def test_broad_networks_need_the_override_and_it_is_recorded(db, world, osaka, refused, network, broad):
    assert is_override_network(network) is broad
    if broad:
        assert "broader than a /24" in refused(lambda s: policy.add_terminal(s, facility="Osaka", address=network, actor=ACTOR))
    with transaction(db) as s:
        terminal = policy.add_terminal(s, facility="Osaka", address=network, actor=ACTOR, override=broad)
        assert terminal.is_override is broad
        assert json.loads(events(s, AuditEventType.TERMINAL_ADD)[-1].details).get("override", False) is broad


def test_every_address_is_refused_even_with_the_override(db, world, osaka, refused):
    for everything in ("0.0.0.0/0", "::/0"):
        refused(lambda s: policy.add_terminal(s, facility="Osaka", address=everything, actor=ACTOR, override=True))


def test_an_overlap_with_another_facility_names_nothing_of_it_to_a_manager(db, world, osaka, refused):
    message = refused(lambda s: policy.add_terminal(s, facility="Osaka", address="127.0.0.0/30", actor="mika", scope=osaka))
    assert "another facility" in message and "Tokyo" not in message and "127.0.0.1" not in message
    assert "Tokyo" in refused(lambda s: policy.add_terminal(s, facility="Osaka", address="127.0.0.0/30", actor=ACTOR))


def test_labels_and_names_have_length_limits(db, world, osaka, refused):
    assert "at most 200" in refused(lambda s: policy.add_terminal(s, facility="Osaka", address="192.0.2.200", label="x" * 201,
                                                                   actor=ACTOR))
    assert "at most 200" in refused(lambda s: policy.add_facility(s, name="x" * 201, actor=ACTOR))
    assert "at most 200" in refused(lambda s: policy.add_closed_day(s, "Osaka", DAY, note="x" * 201, actor=ACTOR))
