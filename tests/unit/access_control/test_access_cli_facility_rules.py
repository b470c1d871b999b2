"""`onsite admin accreditation|booking|facility hours …` through the real dispatcher, and ac0002's upgrade paths."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from alembic import command
from alembic.script import ScriptDirectory
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from access_control import policy
from onsite_base.db import make_engine, session_factory, transaction
from onsite.migrations import alembic_config, migrate
from access_control.enums import Role

from test_access_cli import factory, ledger_length, onsite  # noqa: F401  (fixtures)

TOKYO = ZoneInfo("Asia/Tokyo")


def seed(factory) -> None:
    with transaction(factory) as s:
        policy.add_person(s, username="alice", display_name="Alice", roles=[Role.RESEARCHER], actor="test")
        policy.add_facility(s, name="Tokyo", actor="test")


def test_accreditation_commands(onsite, factory, monkeypatch):
    seed(factory)
    code, out, _ = onsite("admin", "accreditation", "add", "alice", "onsite-training", "--issued", "2026-04-01", "--expiry", "2027-03-31")
    assert code == 0 and "from 2026-04-01 through 2027-03-31" in out
    code, out, _ = onsite("admin", "accreditation", "list", "--json")
    [row] = json.loads(out)
    assert (row["person"], row["kind"], row["expiry"], row["revoked_at"]) == ("alice", "onsite-training", "2027-03-31", None)
    before = ledger_length(factory)
    code, _, err = onsite("admin", "accreditation", "add", "alice", "onsite-training", "--issued", "2026-04-02", "--expiry", "2026-04-01")
    assert code == 2 and "expiry 2026-04-01 is before the start 2026-04-02" in err and ledger_length(factory) == before
    assert onsite("admin", "accreditation", "revoke", str(row["id"]))[0] == 0
    code, _, err = onsite("admin", "accreditation", "revoke", str(row["id"]))
    assert code == 2 and re.search(r"already revoked at \d{4}-\d\d-\d\d \d\d:\d\d JST", err), err  # a moment as shown everywhere
    monkeypatch.setenv("ONSITE_TIMEZONE", "Europe/London")  # the installation's zone, not a fixed one
    monkeypatch.setenv("LC_ALL", "ja_JP.UTF-8")
    code, _, err = onsite("admin", "accreditation", "revoke", str(row["id"]))
    assert code == 2 and re.search(r"認定 \d+ は \d{4}-\d\d-\d\d \d\d:\d\d GMT に取り消し済みです", err), err
    assert json.loads(onsite("admin", "accreditation", "list", "--person", "alice", "--json")[1])[0]["revoked_at"] is not None


def test_booking_commands_read_times_in_the_facility_zone_and_refuse_overlaps(onsite, factory):
    seed(factory)
    day = (date.today() + timedelta(days=2)).isoformat()
    code, out, _ = onsite("admin", "booking", "add", "alice", "Tokyo", "--start", f"{day}T09:00", "--end", f"{day}T12:00")
    assert code == 0 and f"from {day} 09:00 JST until {day} 12:00 JST" in out  # shown as typed: facility time
    before = ledger_length(factory)
    code, _, err = onsite("admin", "booking", "add", "alice", "Tokyo", "--start", f"{day}T02:30+00:00", "--end", f"{day}T04:00+00:00")
    assert code == 2 and "overlaps" in err and ledger_length(factory) == before  # 11:30-13:00 in Tokyo
    assert f"from {day} 09:00 JST to {day} 12:00 JST" in err  # the booking it clashes with, in its facility's zone
    [row] = json.loads(onsite("admin", "booking", "list", "--json")[1])
    assert datetime.fromisoformat(row["starts_at"]) == datetime.fromisoformat(f"{day}T09:00").replace(tzinfo=TOKYO)
    assert onsite("admin", "booking", "cancel", str(row["id"]))[0] == 0
    assert onsite("admin", "booking", "add", "alice", "Tokyo", "--start", f"{day}T11:30", "--end", f"{day}T13:00")[0] == 0
    code, _, err = onsite("admin", "booking", "add", "alice", "Tokyo", "--start", "tomorrow", "--end", f"{day}T13:00")
    assert code == 2 and "is not a date-time" in err


def test_facility_hours_rules_and_show(onsite, factory):
    seed(factory)
    assert onsite("admin", "facility", "hours", "Tokyo", "mon-fri 09:00-17:30")[0] == 0
    assert onsite("admin", "facility", "change", "Tokyo", "--booking-required", "--accreditation-kind", "onsite-training")[0] == 0
    assert onsite("admin", "facility", "close-day", "Tokyo", "2026-12-31", "--note", "年末")[0] == 0
    view = json.loads(onsite("admin", "facility", "show", "Tokyo", "--json")[1])
    assert view["hours"].startswith("mon 09:00-17:30, tue 09:00-17:30") and view["hours"].endswith("fri 09:00-17:30")
    assert (view["booking_required"], view["accreditation_kind"], view["closed_days"]) == (True, "onsite-training", ["2026-12-31"])
    before = ledger_length(factory)
    code, _, err = onsite("admin", "facility", "hours", "Tokyo", "mon-fri 17:30-09:00")
    assert code == 2 and "closing time must be after opening time" in err and ledger_length(factory) == before
    assert onsite("admin", "facility", "hours", "Tokyo", "always")[0] == 0
    assert onsite("admin", "facility", "change", "Tokyo", "--no-booking-required", "--accreditation-kind", "-")[0] == 0
    view = json.loads(onsite("admin", "facility", "list", "--json")[1])[0]
    assert (view["hours"], view["booking_required"], view["accreditation_kind"]) == ("always open", False, None)


def test_upgrade_from_ac0001_and_wf0001_keeps_facilities_and_their_old_behaviour(db_url_empty):
    cfg = alembic_config(db_url_empty)
    command.upgrade(cfg, "ac0001")
    command.upgrade(cfg, "wf0001")
    engine = make_engine(db_url_empty)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO facility (id, name, address, timezone) VALUES (1, 'Old', '', 'Asia/Tokyo')"))
        migrate(db_url_empty)
        with engine.connect() as conn:
            script = ScriptDirectory.from_config(alembic_config(db_url_empty))
            heads = set(script.get_heads())
            applied = {revision.revision for revision in script.iterate_revisions(tuple(heads), "base")}
            assert "ac0002" in applied and set(MigrationContext.configure(conn).get_current_heads()) == heads
            assert {"accreditation", "booking", "facility_hours", "facility_closure"} <= set(inspect(conn).get_table_names())
        with transaction(session_factory(engine)) as s:
            old = policy.require_facility(s, "Old")
            assert (old.booking_required, old.accreditation_kind, old.hours, old.closures) == (False, None, [], [])
        command.downgrade(cfg, "ac0001")
        with engine.connect() as conn:
            assert "booking" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
