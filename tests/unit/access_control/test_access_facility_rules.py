"""Accreditations, bookings and opening hours: the pure decision at its boundaries,
the policy actions that maintain them, and the same facts read back from the store."""
from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from access_control import policy
from onsite_base.db import transaction
from access_control.entry import (
    AccreditationFacts,
    BookingFacts,
    DenialReason,
    EntryFacts,
    OpeningInterval,
    ProjectFacts,
    TerminalFacts,
    decide_entry,
    load_entry_facts,
)
from access_control.enums import AuditEventType, Role
from access_control.models import AuditEvent, ProjectStatus

from conftest import ACTOR

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = timezone.utc
KIND = "onsite-training"
WEEKDAYS_9_TO_1730 = tuple(OpeningInterval(day, 9 * 60, 17 * 60 + 30) for day in range(5))
TERMINAL = TerminalFacts(ipaddress.ip_network("192.0.2.0/28"), "seat", "Tokyo", "Asia/Tokyo", accreditation_kind=KIND)
PROJECT = ProjectFacts("p1", ProjectStatus.ACTIVE, date(2026, 4, 1), date(2027, 3, 31))
VALID = AccreditationFacts(KIND, date(2026, 4, 1), date(2026, 6, 1))


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def facts(terminal: TerminalFacts = TERMINAL, **overrides) -> EntryFacts:
    values = dict(username="alice", client_address="192.0.2.5", known=True, roles=frozenset({Role.RESEARCHER}),
                  projects=(PROJECT,), terminals=(terminal,), accreditations=(VALID,))
    return EntryFacts(**(values | overrides))


# ---------------------------------------------------------------- accreditation


def test_accreditation_is_valid_through_its_expiry_day_until_midnight_in_tokyo():
    last_moment = tokyo(2026, 6, 1, 23, 59, 59)
    assert decide_entry(facts(), last_moment).allowed
    midnight = tokyo(2026, 6, 2, 0, 0)  # 2026-06-01T15:00Z
    assert midnight.astimezone(UTC) == datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
    assert decide_entry(facts(), midnight).reasons == (DenialReason.ACCREDITATION_EXPIRED,)


def test_accreditation_expiry_is_read_in_the_facility_time_zone():
    london = replace(TERMINAL, facility="London", timezone="Europe/London")
    # 2026-06-02 00:30 in Tokyo is still 2026-06-01 16:30 in London: valid there.
    moment = tokyo(2026, 6, 2, 0, 30)
    assert decide_entry(facts(london), moment).allowed
    assert decide_entry(facts(), moment).reasons == (DenialReason.ACCREDITATION_EXPIRED,)


def test_missing_wrong_kind_future_and_expired_accreditations():
    noon = tokyo(2026, 5, 1, 12, 0)
    assert decide_entry(facts(accreditations=()), noon).reasons == (DenialReason.ACCREDITATION_MISSING,)
    other_kind = AccreditationFacts("other-training", date(2026, 1, 1), date(2027, 1, 1))
    assert decide_entry(facts(accreditations=(other_kind,)), noon).reasons == (DenialReason.ACCREDITATION_MISSING,)
    future = AccreditationFacts(KIND, date(2026, 5, 2), date(2027, 1, 1))
    assert decide_entry(facts(accreditations=(future,)), noon).reasons == (DenialReason.ACCREDITATION_MISSING,)
    expired = AccreditationFacts(KIND, date(2025, 1, 1), date(2026, 4, 30))
    assert decide_entry(facts(accreditations=(expired,)), noon).reasons == (DenialReason.ACCREDITATION_EXPIRED,)
    # a renewal next to the expired one: valid
    assert decide_entry(facts(accreditations=(expired, VALID)), noon).allowed


def test_accreditation_is_asked_of_researchers_only_and_only_where_the_facility_names_a_kind():
    noon = tokyo(2026, 5, 1, 12, 0)
    reviewer = facts(roles=frozenset({Role.REVIEWER}), projects=(), accreditations=())
    assert decide_entry(reviewer, noon).allowed
    both = facts(roles=frozenset({Role.REVIEWER, Role.RESEARCHER}), accreditations=())
    assert decide_entry(both, noon).reasons == (DenialReason.ACCREDITATION_MISSING,)
    assert decide_entry(facts(replace(TERMINAL, accreditation_kind=None), accreditations=()), noon).allowed


# ---------------------------------------------------------------- opening hours


def test_opening_hours_boundaries_in_the_facility_time_zone():
    hours = replace(TERMINAL, hours=WEEKDAYS_9_TO_1730, accreditation_kind=None)
    monday = (2026, 6, 1)
    assert date(*monday).weekday() == 0
    assert decide_entry(facts(hours), tokyo(*monday, 8, 59, 59)).reasons == (DenialReason.FACILITY_CLOSED,)
    assert decide_entry(facts(hours), tokyo(*monday, 9, 0)).allowed
    assert decide_entry(facts(hours), tokyo(*monday, 17, 29, 59)).allowed
    assert decide_entry(facts(hours), tokyo(*monday, 17, 30)).reasons == (DenialReason.FACILITY_CLOSED,)
    saturday_noon = tokyo(2026, 6, 6, 12, 0)
    assert decide_entry(facts(hours), saturday_noon).reasons == (DenialReason.FACILITY_CLOSED,)
    # 09:30 in Tokyo on Monday is 00:30 UTC: the UTC clock would have said closed
    assert decide_entry(facts(hours), datetime(2026, 6, 1, 0, 30, tzinfo=UTC)).allowed


def test_no_hours_means_always_open_but_a_closed_day_is_closed_all_day():
    holiday = replace(TERMINAL, closed_days=frozenset({date(2026, 5, 4)}))
    assert decide_entry(facts(), tokyo(2026, 5, 4, 3, 0)).allowed
    assert decide_entry(facts(holiday), tokyo(2026, 5, 4, 0, 0)).reasons == (DenialReason.FACILITY_CLOSED,)
    assert decide_entry(facts(holiday), tokyo(2026, 5, 4, 23, 59)).reasons == (DenialReason.FACILITY_CLOSED,)
    assert decide_entry(facts(holiday), tokyo(2026, 5, 5, 0, 0)).allowed


# ---------------------------------------------------------------- bookings


def test_booking_covers_its_start_but_not_its_end():
    needs_booking = replace(TERMINAL, booking_required=True)
    slot = BookingFacts("Tokyo", tokyo(2026, 5, 1, 9, 0), tokyo(2026, 5, 1, 12, 0))
    with_slot = facts(needs_booking, bookings=(slot,))
    assert decide_entry(with_slot, tokyo(2026, 5, 1, 8, 59, 59)).reasons == (DenialReason.NO_BOOKING,)
    assert decide_entry(with_slot, tokyo(2026, 5, 1, 9, 0)).allowed
    assert decide_entry(with_slot, tokyo(2026, 5, 1, 11, 59, 59)).allowed
    assert decide_entry(with_slot, tokyo(2026, 5, 1, 12, 0)).reasons == (DenialReason.NO_BOOKING,)


def test_a_booking_at_another_facility_does_not_count_and_unbooked_facilities_need_none():
    needs_booking = replace(TERMINAL, booking_required=True)
    elsewhere = BookingFacts("Osaka", tokyo(2026, 5, 1, 9, 0), tokyo(2026, 5, 1, 12, 0))
    assert decide_entry(facts(needs_booking, bookings=(elsewhere,)), tokyo(2026, 5, 1, 10, 0)).reasons == (DenialReason.NO_BOOKING,)
    assert decide_entry(facts(bookings=()), tokyo(2026, 5, 1, 10, 0)).allowed


def test_every_reason_that_applies_is_returned_together():
    strict = replace(TERMINAL, hours=WEEKDAYS_9_TO_1730, booking_required=True)
    late = facts(strict, accreditations=(), disabled=True, projects=())
    reasons = decide_entry(late, tokyo(2026, 6, 6, 20, 0)).reasons
    assert reasons == (DenialReason.ACCOUNT_DISABLED, DenialReason.NO_ACTIVE_PROJECT, DenialReason.ACCREDITATION_MISSING,
                       DenialReason.FACILITY_CLOSED, DenialReason.NO_BOOKING)


def test_new_reasons_have_both_languages_and_the_directory_message_is_shared():
    from access_control.ldap import DirectoryUnavailable

    for reason in (DenialReason.ACCREDITATION_MISSING, DenialReason.ACCREDITATION_EXPIRED, DenialReason.FACILITY_CLOSED,
                   DenialReason.NO_BOOKING, DenialReason.DIRECTORY_UNAVAILABLE):
        ja, en = reason.message("ja"), reason.message("en")
        assert ja and en and ja != en and any(ord(ch) > 0x3000 for ch in ja) and en.isascii()
    assert DirectoryUnavailable.user_message("ja") == DenialReason.DIRECTORY_UNAVAILABLE.message("ja")


# ---------------------------------------------------------------- through the store


def strict_tokyo(db) -> None:
    """Tokyo needs a booking and an onsite-training accreditation, weekdays 09:00-17:30, closed 2026-05-04."""
    with transaction(db) as s:
        policy.change_facility(s, "Tokyo", booking_required=True, accreditation_kind=KIND, actor=ACTOR)
        policy.set_opening_hours(s, "Tokyo", "mon-fri 09:00-17:30", actor=ACTOR)
        policy.add_closed_day(s, "Tokyo", date(2026, 5, 4), note="みどりの日", actor=ACTOR)


def decide_now(db, now: datetime, username: str = "alice"):
    with transaction(db) as s:
        return decide_entry(load_entry_facts(s, username, "127.0.0.1", as_of=now), now)


def test_store_facts_follow_the_admin_actions_and_a_live_session_check_stops_when_the_booking_ends(db, world):
    strict_tokyo(db)
    monday = (2026, 6, 1)
    now = tokyo(*monday, 10, 0)
    assert decide_now(db, now).reasons == (DenialReason.ACCREDITATION_MISSING, DenialReason.NO_BOOKING)
    with transaction(db) as s:
        policy.add_accreditation(s, username="alice", kind=KIND, issued=date(2026, 4, 1), expiry=date(2026, 6, 1), actor=ACTOR)
        booking = policy.add_booking(s, username="alice", facility="Tokyo", starts_at=tokyo(*monday, 9, 0),
                                     ends_at=tokyo(*monday, 12, 0), actor=ACTOR, now=now)
    assert decide_now(db, now).allowed
    # the periodic re-check takes this same decision: one second before the end allowed, at the end refused
    assert decide_now(db, tokyo(*monday, 11, 59, 59)).allowed
    assert decide_now(db, tokyo(*monday, 12, 0)).reasons == (DenialReason.NO_BOOKING,)
    with transaction(db) as s:
        policy.cancel_booking(s, booking.id, actor=ACTOR)
    assert decide_now(db, now).reasons == (DenialReason.NO_BOOKING,)


def test_a_live_session_check_stops_at_midnight_when_the_accreditation_expires(db, world):
    with transaction(db) as s:
        policy.change_facility(s, "Tokyo", accreditation_kind=KIND, actor=ACTOR)
        policy.add_accreditation(s, username="alice", kind=KIND, issued=date(2026, 4, 1), expiry=date(2026, 6, 1), actor=ACTOR)
    assert decide_now(db, tokyo(2026, 6, 1, 23, 59, 59)).allowed
    assert decide_now(db, tokyo(2026, 6, 2, 0, 0)).reasons == (DenialReason.ACCREDITATION_EXPIRED,)
    with transaction(db) as s:
        accreditation = policy.list_accreditations(s, "alice")[0]
        policy.revoke_accreditation(s, accreditation.id, actor=ACTOR)
    assert decide_now(db, tokyo(2026, 5, 1, 12, 0)).reasons == (DenialReason.ACCREDITATION_MISSING,)


def test_closed_day_and_hours_from_the_store(db, world):
    strict_tokyo(db)
    with transaction(db) as s:
        policy.change_facility(s, "Tokyo", booking_required=False, accreditation_kind="", actor=ACTOR)
    assert decide_now(db, tokyo(2026, 5, 4, 10, 0)).reasons == (DenialReason.FACILITY_CLOSED,)  # holiday (a Monday)
    assert decide_now(db, tokyo(2026, 5, 5, 10, 0)).allowed
    assert decide_now(db, tokyo(2026, 5, 5, 17, 30)).reasons == (DenialReason.FACILITY_CLOSED,)
    with transaction(db) as s:
        policy.set_opening_hours(s, "Tokyo", "", actor=ACTOR)
        policy.remove_closed_day(s, "Tokyo", date(2026, 5, 4), actor=ACTOR)
    assert decide_now(db, tokyo(2026, 5, 4, 23, 0)).allowed


# ---------------------------------------------------------------- policy validation


def test_bad_accreditations_are_refused_and_change_nothing(world, refused):
    assert "unknown person" in refused(lambda s: policy.add_accreditation(
        s, username="nobody", kind=KIND, issued=date(2026, 1, 1), expiry=date(2027, 1, 1), actor=ACTOR))
    assert "before the start" in refused(lambda s: policy.add_accreditation(
        s, username="alice", kind=KIND, issued=date(2026, 1, 2), expiry=date(2026, 1, 1), actor=ACTOR))
    assert "not allowed" in refused(lambda s: policy.add_accreditation(
        s, username="alice", kind="*)(uid=*", issued=date(2026, 1, 1), expiry=date(2027, 1, 1), actor=ACTOR))
    assert "unknown accreditation" in refused(lambda s: policy.revoke_accreditation(s, 999, actor=ACTOR))


def test_bad_bookings_are_refused_and_change_nothing(db, world, refused):
    strict_tokyo(db)
    now = tokyo(2026, 6, 1, 8, 0)

    def book(start: datetime, end: datetime, username: str = "alice", facility: str = "Tokyo"):
        return lambda s: policy.add_booking(s, username=username, facility=facility, starts_at=start, ends_at=end,
                                            actor=ACTOR, now=now)

    with transaction(db) as s:
        book(tokyo(2026, 6, 1, 9, 0), tokyo(2026, 6, 1, 12, 0))(s)
    assert "overlaps" in refused(book(tokyo(2026, 6, 1, 11, 0), tokyo(2026, 6, 1, 13, 0)))
    assert "overlaps" in refused(book(tokyo(2026, 6, 1, 9, 30), tokyo(2026, 6, 1, 10, 0)))
    assert "not after its start" in refused(book(tokyo(2026, 6, 1, 14, 0), tokyo(2026, 6, 1, 13, 0)))
    assert "already past" in refused(book(tokyo(2026, 6, 1, 6, 0), tokyo(2026, 6, 1, 7, 0)))
    assert "outside the opening hours" in refused(book(tokyo(2026, 6, 1, 17, 0), tokyo(2026, 6, 1, 18, 0)))
    assert "outside the opening hours" in refused(book(tokyo(2026, 6, 6, 10, 0), tokyo(2026, 6, 6, 11, 0)))  # Saturday
    assert "unknown facility" in refused(book(tokyo(2026, 6, 1, 13, 0), tokyo(2026, 6, 1, 14, 0), facility="Osaka"))
    assert "unknown person" in refused(book(tokyo(2026, 6, 1, 13, 0), tokyo(2026, 6, 1, 14, 0), username="nobody"))
    # a time without an offset is facility time: 11:00 in Tokyo overlaps (as UTC it would be 20:00, after closing)
    assert "overlaps" in refused(book(datetime(2026, 6, 1, 11, 0), datetime(2026, 6, 1, 13, 0)))
    # back to back is not an overlap; another person may book the same slot
    with transaction(db) as s:
        book(tokyo(2026, 6, 1, 12, 0), tokyo(2026, 6, 1, 13, 0))(s)
        policy.add_person(s, username="bob", display_name="Bob", roles=[Role.RESEARCHER], actor=ACTOR)
        book(tokyo(2026, 6, 1, 9, 0), tokyo(2026, 6, 1, 12, 0), username="bob")(s)
        assert [b.person.username for b in policy.list_bookings(s, facility="Tokyo")] == ["alice", "bob", "alice"]


def test_bad_opening_hours_are_refused_and_change_nothing(world, refused):
    for schedule, words in [("mon-fri 09:00", "not understood"), ("fri-mon 09:00-17:00", "backwards"),
                            ("mon 17:00-09:00", "after opening"), ("mon 09:00-25:00", "not a time of day"),
                            ("mon 09:00-12:00, mon 11:00-13:00", "overlap"), ("xyz 09:00-10:00", "not understood")]:
        assert words in refused(lambda s: policy.set_opening_hours(s, "Tokyo", schedule, actor=ACTOR))
    assert "unknown facility" in refused(lambda s: policy.set_opening_hours(s, "Osaka", "mon 09:00-10:00", actor=ACTOR))


def test_opening_hours_round_trip_and_every_change_is_an_audit_event(db, world):
    strict_tokyo(db)
    with transaction(db) as s:
        policy.set_opening_hours(s, "Tokyo", "mon 09:00-12:00, mon 13:00-24:00, sat 10:00-12:00", actor=ACTOR)
        place = policy.require_facility(s, "Tokyo")
        assert policy.format_hours(place.hours) == "mon 09:00-12:00, mon 13:00-24:00, sat 10:00-12:00"
        assert [(h.weekday, h.opens, h.closes) for h in place.hours] == [(0, 540, 720), (0, 780, 1440), (5, 600, 720)]
        changes = [e.details_dict for e in s.query(AuditEvent).filter(AuditEvent.action == AuditEventType.FACILITY_CHANGE)]
    assert changes[-1] == {"before": {"hours": "mon 09:00-17:30, tue 09:00-17:30, wed 09:00-17:30, thu 09:00-17:30, fri 09:00-17:30"},
                           "after": {"hours": "mon 09:00-12:00, mon 13:00-24:00, sat 10:00-12:00"}}
    assert {"closed_day_added": "2026-05-04", "note": "みどりの日"} in changes
