"""The ledger's group commit on PostgreSQL (access_control.audit): a transaction holding the ledger lock
commits without waiting for its WAL flush, so the lock is free at once, but `commit()` returns only once
that commit is on disk. Checked against the server's own WAL positions: what the server has flushed when
the caller learns of its commit, and what the transaction had written before it committed.

Two paths: events chained at commit (`record` then commit: one message chains, commits and flushes) and
events chained earlier because the transaction ran a query after `record` (the lock then held until commit,
the flush sent after it)."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from access_control import audit, policy
from access_control.enums import AuditEventType
from onsite_base.db import transaction

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

ROUNDS = 40


def flushed_lsn(db) -> int:
    with db() as s:
        return s.scalar(text("SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn"))


def test_a_commit_returns_only_once_its_event_is_on_disk(db):
    """Without the wait, the server's WAL writer flushes an asynchronous commit up to 200 ms later: most of
    these rounds would find their own WAL records not yet flushed when the commit has returned."""
    late = []
    for i in range(ROUNDS):
        with transaction(db) as s:
            audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="tanaka", object="session:tanaka", details={"i": i})
            assert s.scalar(text("SHOW synchronous_commit")) == "off"  # the lock is released before the flush
            written = s.scalar(text("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))
        if flushed_lsn(db) < written:
            late.append(i)
    assert late == [], f"commits acknowledged before their WAL was flushed in rounds {late}"


def wal_marked(db):
    """A trigger noting the WAL insert position as each event is inserted: the one message of the commit path
    chains, commits and flushes with no query of the caller's in between."""
    with transaction(db) as s:
        s.execute(text("CREATE TABLE wal_mark (lsn bigint)"))
        s.execute(text("CREATE FUNCTION mark_wal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                       "INSERT INTO wal_mark VALUES (pg_current_wal_insert_lsn() - '0/0'::pg_lsn); RETURN NEW; END $$"))
        s.execute(text("CREATE TRIGGER mark AFTER INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION mark_wal()"))

    def late_rounds() -> list[int]:
        late = []
        for i in range(ROUNDS):
            with transaction(db) as s:
                event = audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="tanaka", object="session:tanaka",
                                     details={"i": i})
                assert event.seq is None  # chained by the commit's message
            flushed = flushed_lsn(db)
            with db() as s:
                if flushed < s.scalar(text("SELECT max(lsn) FROM wal_mark")):
                    late.append(i)
            assert event.seq is not None
        return late

    return late_rounds


def test_events_chained_at_commit_are_on_disk_when_the_commit_returns(db, monkeypatch):
    late_rounds = wal_marked(db)
    assert late_rounds() == []
    monkeypatch.setattr(audit, "COMMIT_DURABLE", "COMMIT")  # the same message without its flush: late, so seen
    assert late_rounds(), "the check cannot tell a flushed commit from an unflushed one"
    with db() as s:
        assert audit.verify(s).ok


def test_a_change_recorded_with_its_event_is_durable_too_and_a_rollback_leaves_nothing_pending(db):
    with transaction(db) as s:
        policy.add_person(s, username="sato", display_name="Sato", actor="admin:test")
        written = s.scalar(text("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))
    assert flushed_lsn(db) >= written
    with db() as s:
        s.begin()
        audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="tanaka", object="session:tanaka")
        assert s.info[audit.PENDING]
        s.execute(text("SELECT 1"))  # a query chains what was recorded before it: the lock is held from here
        assert s.info[audit.UNFLUSHED_COMMIT] and not s.info.get(audit.PENDING)
        s.rollback()
        assert audit.UNFLUSHED_COMMIT not in s.info  # the next transaction of this session waits for nothing it did not do
    with db() as s:
        s.begin()
        audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="tanaka", object="session:tanaka")
        s.rollback()
        assert audit.PENDING not in s.info
    with db() as s:
        assert audit.count(s) == 1


def test_without_the_ledger_lock_a_transaction_commits_as_configured(db):
    with transaction(db) as s:
        assert s.scalar(text("SHOW synchronous_commit")) == "on"
        assert audit.UNFLUSHED_COMMIT not in s.info


def test_a_commit_message_failing_part_way_stores_nothing_and_leaves_no_autocommit_connection(db):
    """The commit's message opens its own transaction (its own BEGIN, sent past the driver): when the server refuses
    an event, nothing of the message stays, the caller hears the error, and the pooled connection is transactional
    again, so the next caller's change is still all or nothing."""
    with transaction(db) as s:
        s.execute(text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                       "IF NEW.actor = 'boom' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"))
        s.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION refuse()"))
    with pytest.raises(DBAPIError, match="refused"), transaction(db) as s:
        audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="fine", object="session:fine")
        audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="boom", object="session:boom")
    with pytest.raises(RuntimeError), transaction(db) as s:
        policy.add_person(s, username="sato", display_name="Sato", actor="admin:test")
        s.flush()
        raise RuntimeError("the change failed after its row was sent")
    with db() as s:
        assert audit.count(s) == 0 and s.scalar(text("SELECT count(*) FROM person")) == 0
    with transaction(db) as s:
        audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="fine", object="session:fine")
    with db() as s:
        assert audit.count(s) == 1 and audit.verify(s).ok
