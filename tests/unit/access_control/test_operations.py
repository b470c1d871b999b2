"""The operations view's reads (access_control.operations) over the usage projection of the ledger
(access_control.usage): real entry decisions and session events written as the hub writes them, folded
in, then read back per facility; a fixed number of queries whatever the number of facilities."""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, event, func, select
from test_access_models import table_of

from access_control import audit, operations, policy, usage
from access_control.entry import decide_entry, load_entry_facts, record_entry
from access_control.enums import AuditEventType, Outcome, Role
from access_control.models import Terminal
from admin_service.operations import UsageKeeper
from disclosure_review.sdc.rules import preset_names
from onsite_base.db import Base, make_engine, transaction

TOKYO, OSAKA = "東京オンサイト施設", "Osaka room"
SILENT = timedelta(hours=72)


def seed(db) -> None:
    today = date.today()
    with transaction(db) as s:
        policy.add_facility(s, name=TOKYO, actor="test")
        policy.add_facility(s, name=OSAKA, actor="test", timezone_name="Asia/Tokyo")
        policy.add_terminal(s, facility=TOKYO, address="192.0.2.0/28", label="seat 1", actor="test")
        policy.add_terminal(s, facility=OSAKA, address="198.51.100.7", actor="test")
        osaka = policy.require_facility(s, OSAKA)
        s.add(Terminal(facility_id=osaka.id, address="10.0.0.0/16", label="whole floor"))  # registered with the override
        for name in ("alice", "bob"):
            policy.add_person(s, username=name, display_name=name, actor="test", roles=[Role.RESEARCHER])
        policy.add_project(s, presets=preset_names(), project_id="p1", title="t", actor="test",
                           start_date=today - timedelta(days=30), end_date=today + timedelta(days=30))
        policy.add_member(s, "p1", "alice", actor="test")
        policy.add_member(s, "p1", "bob", actor="test")
        now = datetime.now(timezone.utc)
        policy.add_booking(s, username="alice", facility=TOKYO, starts_at=now - timedelta(minutes=5),
                           ends_at=now + timedelta(minutes=10), actor="test")


def enter(db, username: str, address: str) -> bool:
    with transaction(db) as s:
        facts = load_entry_facts(s, username, address)
        decision = decide_entry(facts, datetime.now(timezone.utc))
        record_entry(s, decision, username=facts.username, client_address=address, stage="login")
        return decision.allowed


def session_event(db, action: AuditEventType, username: str, address: str = "") -> None:
    """As the spawner writes them (hub_config.spawner._write_event)."""
    details = {"client_address": address, "projects": ["p1"]} if action is AuditEventType.SESSION_START else {
        "stopped_by": username, "reason": "STOP_REQUESTED"}
    with transaction(db) as s:
        audit.record(s, action, actor=username, object=f"session:{username}", outcome=Outcome.OK, details=details)


def facility_id(db, name: str) -> int:
    with db() as s:
        return policy.require_facility(s, name).id


def test_overview_counts_live_sessions_refusals_and_terminals(db):
    seed(db)
    assert enter(db, "alice", "192.0.2.3")
    session_event(db, AuditEventType.SESSION_START, "alice", "192.0.2.3")
    assert enter(db, "bob", "198.51.100.7")
    session_event(db, AuditEventType.SESSION_START, "bob", "198.51.100.7")
    session_event(db, AuditEventType.SESSION_STOP, "bob")
    assert not enter(db, "ghost", "203.0.113.9")  # unknown person, unregistered address
    assert usage.catch_up(db) > 0
    assert usage.catch_up(db) == 0  # folded once

    now = datetime.now(timezone.utc)
    with db() as s:
        view = operations.overview(s, now, SILENT)
    by_name = {f.name: f for f in view.facilities}
    tokyo, osaka = by_name[TOKYO], by_name[OSAKA]
    assert (tokyo.in_use, tokyo.booked_today, tokyo.terminals, tokyo.never_seen, tokyo.silent) == (1, 1, 1, 0, 0)
    assert (osaka.in_use, osaka.booked_today, osaka.terminals, osaka.never_seen, osaka.overrides) == (0, 0, 2, 1, 1)
    assert tokyo.open_now and tokyo.timezone == "Asia/Tokyo" and tokyo.local_now.utcoffset() == timedelta(hours=9)
    [refusal] = view.refusals
    assert (refusal.username, refusal.facility_id, refusal.client_address) == ("ghost", None, "203.0.113.9")
    assert "TERMINAL_NOT_REGISTERED" in refusal.reasons and "ACCOUNT_UNKNOWN" in refusal.reasons

    with db() as s:  # four days later, nobody came back: both terminals seen are silent; an hour on, no refusal is recent
        later = operations.overview(s, now + timedelta(days=4), SILENT)
    assert [(f.silent, f.refusals_last_hour) for f in later.facilities] == [(1, 0), (1, 0)]
    assert later.refusals == ()


def test_a_facility_page_has_its_own_sessions_terminals_and_bookings_only(db):
    seed(db)
    session_event(db, AuditEventType.SESSION_START, "alice", "192.0.2.3")
    session_event(db, AuditEventType.SESSION_START, "bob", "198.51.100.7")
    assert not enter(db, "ghost", "10.0.3.4")  # an unknown account at Osaka's override network
    usage.catch_up(db)
    now = datetime.now(timezone.utc)
    tokyo_id, osaka_id = facility_id(db, TOKYO), facility_id(db, OSAKA)
    with db() as s:
        tokyo = operations.facility_view(s, tokyo_id, now, SILENT)
        osaka = operations.facility_view(s, osaka_id, now, SILENT)
        assert operations.facility_view(s, 999_999, now, SILENT) is None
    assert [u.username for u in tokyo.live] == ["alice"] and [u.username for u in osaka.live] == ["bob"]
    assert [b.username for b in tokyo.booked] == ["alice"] and osaka.booked == ()
    assert [t.address for t in osaka.terminals] == ["10.0.0.0/16", "198.51.100.7/32"]
    assert [t.override for t in osaka.terminals] == [True, False]
    assert tokyo.refusals == () and [r.username for r in osaka.refusals] == ["ghost"]


def test_a_start_without_a_stop_is_ended_by_the_next_start_and_usage_counts_hours(db):
    seed(db)
    session_event(db, AuditEventType.SESSION_START, "alice", "192.0.2.3")
    session_event(db, AuditEventType.SESSION_START, "alice", "198.51.100.7")  # the hub lost the first one's stop
    usage.catch_up(db, batch=1)  # one event a transaction: sessions span batches
    session_event(db, AuditEventType.SESSION_STOP, "alice")
    usage.catch_up(db)
    with db() as s:
        rows = s.scalars(select(usage.UsageSession).order_by(usage.UsageSession.start_seq)).all()
        assert [r.ended_at is not None for r in rows] == [True, True]
        assert rows[0].ended_at == rows[1].started_at and rows[1].stop_seq is not None
        now = datetime.now(timezone.utc)
        months = operations.monthly_usage(s, now)
    tokyo_id, osaka_id = facility_id(db, TOKYO), facility_id(db, OSAKA)
    month = rows[0].started_at.astimezone(operations.ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    assert [r.month for r in rows] == [month, month]
    assert [r.seconds for r in rows] == [(r.ended_at - r.started_at).total_seconds() for r in rows]
    assert months[(tokyo_id, month)].sessions == 1 and months[(osaka_id, month)].researchers == 1
    assert months[(tokyo_id, month)].hours == pytest.approx(rows[0].seconds / 3600)
    assert 0 <= months[(tokyo_id, month)].hours < 0.1


def test_a_session_counts_in_its_own_facility_s_month_with_its_length(db):
    """Folded in bulk (COPY on PostgreSQL), each session keeps the month it started in its facility's zone and,
    once ended, its length; usage groups by them, a live session counting up to now."""
    seed(db)
    with transaction(db) as s:
        policy.change_facility(s, OSAKA, timezone_name="Pacific/Honolulu", actor="test")
    start = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)  # 1 March 11:00 in Tokyo, 28 February 16:00 in Honolulu

    def event(seq: int, action: AuditEventType, who: str, at: datetime, details: dict) -> SimpleNamespace:
        return SimpleNamespace(seq=seq, created_at=at, action=action, actor=who, object=f"session:{who}",
                               outcome=Outcome.OK, details=json.dumps(details))

    with transaction(db) as s:
        usage.Folder(s).fold([
            event(1, AuditEventType.SESSION_START, "alice", start, {"client_address": "192.0.2.3"}),
            event(2, AuditEventType.SESSION_START, "bob", start, {"client_address": "::ffff:198.51.100.7"}),
            event(3, AuditEventType.SESSION_STOP, "alice", start + timedelta(minutes=90), {}),
        ])
    now = datetime(2026, 3, 15, tzinfo=timezone.utc)
    with db() as s:
        months = operations.monthly_usage(s, now)
        rows = s.scalars(select(usage.UsageSession).order_by(usage.UsageSession.start_seq)).all()
    tokyo, osaka = months[(facility_id(db, TOKYO), "2026-03")], months[(facility_id(db, OSAKA), "2026-02")]
    assert [(r.month, r.seconds, r.started_at) for r in rows] == [("2026-03", 5400.0, start), ("2026-02", None, start)]
    assert (tokyo.sessions, tokyo.hours, tokyo.researchers) == (1, 1.5, 1)
    assert (osaka.sessions, osaka.researchers) == (1, 1) and osaka.hours == pytest.approx((now - start).total_seconds() / 3600)


def test_the_overview_takes_the_same_number_of_queries_for_two_facilities_or_twenty(db):
    seed(db)
    usage.catch_up(db)
    engine = db.kw["bind"]

    def queries() -> int:
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, …)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            with db() as s:
                operations.overview(s, datetime.now(timezone.utc), SILENT)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(statements)

    few = queries()
    with transaction(db) as s:
        for i in range(18):
            policy.add_facility(s, name=f"room {i}", actor="test")
            policy.add_terminal(s, facility=f"room {i}", address=f"192.0.2.{100 + i}", actor="test")
            policy.add_closed_day(s, f"room {i}", date.today() + timedelta(days=3), actor="test")
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Terminal)) == 21
    assert queries() == few


@pytest.mark.parametrize("now, months, first", [
    (datetime(2026, 12, 7, tzinfo=timezone.utc), 12, date(2026, 1, 1)),
    (datetime(2026, 1, 31, tzinfo=timezone.utc), 1, date(2026, 1, 1)),
    (datetime(2026, 1, 31, tzinfo=timezone.utc), 2, date(2025, 12, 1)),
])
def test_month_arithmetic(now, months, first):
    assert operations.first_month(now, months) == first
    shown = operations.months_between(now, months)
    assert len(shown) == months and shown[0] == first.strftime("%Y-%m") and shown[-1] == now.strftime("%Y-%m")


def test_the_migration_makes_the_usage_tables_as_declared(db_url):
    tables = {"usage_session", "usage_refusal", "usage_terminal_seen", "usage_cursor"}
    ours = MetaData()
    for table in Base.metadata.sorted_tables:
        if table.name in tables:
            table.to_metadata(ours)
    assert set(ours.tables) == tables
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), ours)
    finally:
        engine.dispose()
    assert [d for d in diffs if table_of(d) in tables] == []


def test_the_keeper_folds_from_its_start_and_when_a_page_wakes_it(db):
    """UsageKeeper (the admin service's thread): folds at start without any request, then again when woken long
    before its timer, and stops when told."""
    seed(db)
    session_event(db, AuditEventType.SESSION_START, "alice", "192.0.2.3")

    def until(done) -> None:
        deadline = time.monotonic() + 20
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)

    def live() -> list[str]:
        with db() as s:
            return [u.username for u in operations.live_sessions(s)]

    keeper = UsageKeeper(db, interval_s=3600).start()
    try:
        until(lambda: live() == ["alice"])
        with db() as s:
            assert live() == ["alice"] and usage.caught_up_at(s) is not None
        session_event(db, AuditEventType.SESSION_STOP, "alice")
        keeper.wake()
        until(lambda: live() == [])
        assert live() == []
    finally:
        keeper.stop()
        keeper.thread.join(10)
    assert not keeper.thread.is_alive()
