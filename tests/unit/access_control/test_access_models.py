"""The migration creates exactly what the models declare; stored values are plain."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, select, text

from access_control import audit
from onsite_base.db import Base, make_engine, read_transaction, transaction
from onsite.migrations import alembic_config, migrate
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent, Facility

OUR_TABLES = {
    "person", "person_role", "project", "membership", "dataset", "dataset_grant", "facility", "terminal", "audit_event",
    "facility_hours", "facility_closure", "accreditation", "booking", "audit_tree_node", "audit_tree_head", "audit_cosignature",
}


def test_migration_matches_the_models(db_url):
    ours = MetaData()
    for table in Base.metadata.sorted_tables:
        if table.name in OUR_TABLES:
            table.to_metadata(ours)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), ours)
    finally:
        engine.dispose()
    # Other areas' tables show up as removals (they are not in `ours`); ours may not differ at all.
    assert [d for d in diffs if table_of(d) in OUR_TABLES] == []


def table_of(diff) -> str:
    """The table an Alembic autogenerate difference is about."""
    kind, *rest = diff[0] if isinstance(diff, list) else diff
    if kind in ("add_table", "remove_table"):
        return rest[0].name
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return rest[0].table.name
    if kind in ("add_fk", "remove_fk"):
        return rest[0].parent.name
    return rest[1]  # column-level: (schema, table, ...)


def test_migrate_is_idempotent_and_applies_our_branch(db_url):
    engine = make_engine(db_url)
    script = ScriptDirectory.from_config(alembic_config(db_url))
    try:
        with engine.connect() as conn:
            before = set(MigrationContext.configure(conn).get_current_heads())
        migrate(db_url)  # the fixture already migrated once
        with engine.connect() as conn:
            after = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    assert before == after
    applied = {rev.revision for rev in script.iterate_revisions(tuple(after), "base")}
    assert "ac0001" in applied and applied == {rev.revision for rev in script.walk_revisions()}


def test_enums_are_stored_by_value_and_times_come_back_aware(db):
    with transaction(db) as s:
        audit.record(s, AuditEventType.GRANT_ADD, actor="a")
    with db() as s:
        assert s.execute(text("SELECT action, outcome FROM audit_event")).one() == ("GRANT_ADD", "OK")
        event = s.scalars(select(AuditEvent)).one()
    assert event.created_at.utcoffset().total_seconds() == 0


def test_naive_timestamps_are_refused(db):
    with pytest.raises(Exception, match="timezone-aware"):
        with transaction(db) as s:
            s.add(AuditEvent(seq=1, created_at=datetime(2026, 1, 1), actor="a", action=AuditEventType.GRANT_ADD,
                                   object="", outcome=Outcome.OK, details="{}", prev_hash="0", hash="1"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_reads_do_not_wait_for_a_writer(db):
    """A writer holds the write lock (BEGIN IMMEDIATE); a read_transaction still reads at once."""
    holding, release = threading.Event(), threading.Event()

    def writer():
        with transaction(db) as s:
            s.add(Facility(name="pending", address="", timezone="Asia/Tokyo"))
            s.flush()
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        with read_transaction(db) as s:
            assert s.execute(text("SELECT COUNT(*) FROM facility")).scalar_one() == 0  # the snapshot before the commit
    finally:
        release.set()
        thread.join()
    with read_transaction(db) as s:
        assert s.execute(text("SELECT COUNT(*) FROM facility")).scalar_one() == 1


def test_a_read_sees_one_snapshot_through_a_writers_commit(db):
    """Every statement of a read_transaction sees the store as at its first, on both backends: a read that
    counts, then lists, may not see a row appear in between (the usage page once failed on exactly that)."""
    with read_transaction(db) as reading:
        before = reading.execute(text("SELECT COUNT(*) FROM facility")).scalar_one()
        with transaction(db) as writing:
            writing.add(Facility(name="opened meanwhile", address="", timezone="Asia/Tokyo"))
        assert reading.execute(text("SELECT COUNT(*) FROM facility")).scalar_one() == before
    with read_transaction(db) as s:
        assert s.execute(text("SELECT COUNT(*) FROM facility")).scalar_one() == before + 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_read_transaction_refuses_a_write_on_postgresql(db):
    with read_transaction(db) as s:
        with pytest.raises(Exception, match="read-only"):
            s.execute(text("INSERT INTO facility (name, address, timezone) VALUES ('x', '', 'Asia/Tokyo')"))
