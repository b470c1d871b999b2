"""The audit ledger: chaining, and tampering through raw SQL that verify must name."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from access_control import audit
from access_control.audit import GENESIS_HASH, LedgerAnchor, event_hash
from onsite_base.db import transaction
from access_control.enums import AuditEventType, Outcome

N = 6


@pytest.fixture
def ledger(db):
    """A ledger of N events (seq 1..N)."""
    with transaction(db) as s:
        for i in range(1, N + 1):
            audit.record(s, AuditEventType.PERSON_ADD, actor="admin:test", object=f"person:p{i}", details={"i": i, "name": "テスト"})
    return db


def verify(db, anchor=None):
    with db() as s:
        return audit.verify(s, anchor)


def sql(db, statement: str, **params) -> None:
    with transaction(db) as s:
        s.execute(text(statement), params)


def row(db, seq: int) -> dict:
    with db() as s:
        return dict(s.execute(text("SELECT * FROM audit_event WHERE seq = :seq"), {"seq": seq}).mappings().one())


def test_chain_links_every_event_to_its_predecessor(ledger):
    rows = [row(ledger, i) for i in range(1, N + 1)]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, N))
    assert rows[2]["action"] == "PERSON_ADD" and rows[2]["outcome"] == "OK"  # stored by value
    first = rows[0]
    created_at = first["created_at"]
    if isinstance(created_at, str):  # SQLite hands back text
        created_at = datetime.fromisoformat(created_at)
    expected = event_hash(
        seq=1,
        created_at=created_at.replace(tzinfo=timezone.utc),
        actor="admin:test",
        action="PERSON_ADD",
        object="person:p1",
        outcome="OK",
        details={"i": 1, "name": "テスト"},
        prev_hash=GENESIS_HASH,
    )
    assert first["hash"] == expected
    result = verify(ledger)
    assert (result.ok, result.checked, result.head_seq, result.head_hash) == (True, N, N, rows[-1]["hash"])


def test_empty_ledger_verifies(db):
    assert verify(db).ok and verify(db).checked == 0


def test_event_is_written_only_if_the_change_commits(ledger):
    with pytest.raises(RuntimeError):
        with transaction(ledger) as s:
            audit.record(s, AuditEventType.GRANT_ADD, actor="admin:test", object="grant:1")
            raise RuntimeError("the change failed")
    with ledger() as s:
        assert audit.count(s) == N


@pytest.mark.parametrize(
    "column, value",
    [
        ("actor", "mallory"),
        ("details", '{"i":99,"name":"テスト"}'),
        ("outcome", "DENIED"),
        ("action", "NOT_A_TYPE"),
        ("details", "not json"),
        ("created_at", datetime(2020, 1, 1)),
    ],
)
def test_edited_event_is_named(ledger, column, value):
    sql(ledger, f"UPDATE audit_event SET {column} = :v WHERE seq = 3", v=value)
    result = verify(ledger)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
    assert "event 3" in result.problem


def test_edited_hash_is_caught_at_the_next_event(ledger):
    """Re-hashing an edited event is not enough: its successor still names the old hash."""
    sql(ledger, "UPDATE audit_event SET object = 'person:zzz' WHERE seq = 3")
    r = row(ledger, 3)
    created_at = r["created_at"] if not isinstance(r["created_at"], str) else datetime.fromisoformat(r["created_at"])
    new_hash = event_hash(
        seq=3,
        created_at=created_at.replace(tzinfo=timezone.utc),
        actor=r["actor"],
        action=r["action"],
        object="person:zzz",
        outcome=r["outcome"],
        details=json.loads(r["details"]),
        prev_hash=r["prev_hash"],
    )
    sql(ledger, "UPDATE audit_event SET hash = :h WHERE seq = 3", h=new_hash)
    result = verify(ledger)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "prev_hash" in result.problem


def test_deleted_event_is_named(ledger):
    sql(ledger, "DELETE FROM audit_event WHERE seq = 3")
    result = verify(ledger)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "missing" in result.problem


def test_deleted_and_renumbered_event_is_named(ledger):
    sql(ledger, "DELETE FROM audit_event WHERE seq = 3")
    for seq in range(4, N + 1):  # one row at a time: the primary key stays unique throughout
        sql(ledger, "UPDATE audit_event SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    result = verify(ledger)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_inserted_event_is_named(ledger):
    for seq in range(N, 2, -1):  # make room at 3
        sql(ledger, "UPDATE audit_event SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    sql(
        ledger,
        "INSERT INTO audit_event (seq, created_at, actor, action, object, outcome, details, prev_hash, hash) "
        "VALUES (3, :t, 'mallory', 'GRANT_ADD', 'grant:9', 'OK', '{}', :prev, :h)",
        t=datetime(2026, 1, 1),
        prev="f" * 64,
        h="e" * 64,
    )
    result = verify(ledger)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)


def test_forged_fork_cannot_be_stored(ledger):
    """A second event following event 2 (a fork, even with a correct hash) is refused by the store."""
    prev = row(ledger, 2)["hash"]
    with pytest.raises(IntegrityError):
        sql(
            ledger,
            "INSERT INTO audit_event (seq, created_at, actor, action, object, outcome, details, prev_hash, hash) "
            "VALUES (100, :t, 'mallory', 'GRANT_ADD', 'grant:9', 'OK', '{}', :prev, :h)",
            t=datetime(2026, 1, 1),
            prev=prev,
            h="e" * 64,
        )
    assert verify(ledger).ok


def test_swapped_events_are_named(ledger):
    sql(ledger, "UPDATE audit_event SET seq = -1 WHERE seq = 3")
    sql(ledger, "UPDATE audit_event SET seq = 3 WHERE seq = 5")
    sql(ledger, "UPDATE audit_event SET seq = 5 WHERE seq = -1")
    result = verify(ledger)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_forged_event_appended_with_bad_hash_is_named(ledger):
    sql(
        ledger,
        "INSERT INTO audit_event (seq, created_at, actor, action, object, outcome, details, prev_hash, hash) "
        "VALUES (:seq, :t, 'mallory', 'GRANT_ADD', 'grant:9', 'OK', '{}', :prev, :h)",
        seq=N + 1,
        t=datetime(2026, 1, 1),
        prev=row(ledger, N)["hash"],
        h="e" * 64,
    )
    result = verify(ledger)
    assert (result.ok, result.first_bad_seq) == (False, N + 1)


def rewrite_whole_chain(db, actor: str) -> None:
    """What someone with full database access can do: rebuild a consistent chain."""
    prev = GENESIS_HASH
    for seq in range(1, N + 1):
        r = row(db, seq)
        created_at = r["created_at"] if not isinstance(r["created_at"], str) else datetime.fromisoformat(r["created_at"])
        h = event_hash(
            seq=seq,
            created_at=created_at.replace(tzinfo=timezone.utc),
            actor=actor,
            action=r["action"],
            object=r["object"],
            outcome=r["outcome"],
            details=json.loads(r["details"]),
            prev_hash=prev,
        )
        sql(db, "UPDATE audit_event SET actor = :a, hash = :h, prev_hash = :p WHERE seq = :s", a=actor, h=h, p=prev, s=seq)
        prev = h


def test_anchor_catches_whole_table_rewrite_and_truncation(ledger, tmp_path):
    anchor_file = tmp_path / "anchor.jsonl"
    with transaction(ledger) as s:
        anchor = audit.anchor_head(s, anchor_file)
    assert anchor.seq == N and LedgerAnchor.read(anchor_file) == anchor
    assert verify(ledger, anchor).ok

    sql(ledger, "DELETE FROM audit_event WHERE seq = :s", s=N)  # truncating the tail leaves a valid chain ...
    assert verify(ledger).ok
    result = verify(ledger, anchor)  # ... but not the anchored head
    assert (result.ok, result.first_bad_seq) == (False, N)


def test_anchor_catches_consistent_rewrite(ledger, tmp_path):
    anchor_file = tmp_path / "anchor.jsonl"
    with transaction(ledger) as s:
        anchor = audit.anchor_head(s, anchor_file)
    # Rewrite bottom-up so that prev_hash stays unique at every step.
    sql(ledger, "UPDATE audit_event SET prev_hash = 'tmp' || CAST(seq AS VARCHAR(10))")
    rewrite_whole_chain(ledger, "mallory")
    assert verify(ledger).ok  # a consistent forgery passes the chain check alone
    result = verify(ledger, anchor)
    assert (result.ok, result.first_bad_seq) == (False, N)
    with transaction(ledger) as s, pytest.raises(ValueError, match="not anchoring"):
        audit.anchor_head(s, anchor_file)


def test_export_writes_recheckable_json_lines(ledger):
    out = io.StringIO()
    with ledger() as s:
        assert audit.export(s, out) == N
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, N + 1))
    for line in lines:
        assert line["schema"] == "onsite.audit_event/v1"
        recomputed = event_hash(
            seq=line["seq"],
            created_at=datetime.fromisoformat(line["created_at"]),
            actor=line["actor"],
            action=line["action"],
            object=line["object"],
            outcome=line["outcome"],
            details=line["details"],
            prev_hash=line["prev_hash"],
        )
        assert recomputed == line["hash"]
    assert lines[0]["details"] == {"i": 1, "name": "テスト"}


def test_record_refuses_strings_for_enums(db):
    with transaction(db) as s, pytest.raises(TypeError):
        audit.record(s, "PERSON_ADD", actor="x")  # type: ignore[arg-type]
    with transaction(db) as s:
        event = audit.record(s, AuditEventType.LOGIN_FAIL, actor="x", outcome=Outcome.DENIED)
    assert event.seq == 1 and event.prev_hash == GENESIS_HASH


ODD = {"quote": "'; DROP TABLE audit_event; --", "backslash": "C:\\temp\\%s %(x)s", "text": "東京\u2028\n\"x\"",
       "number": 1.5, "none": None, "nested": {"b": [1, True], "a": -0.0}}


def test_events_are_chained_at_commit_or_by_a_query_after_them_with_odd_text(db):
    """`record` leaves the event pending: a query in the transaction chains it first (as an autoflush), the commit
    chains the rest (on PostgreSQL the server computes the hash: text the driver quotes must hash as Python does)."""
    with transaction(db) as s:
        first = audit.record(s, AuditEventType.PERSON_ADD, actor="o'brien\\ %s", object="person:東京", details=ODD)
        assert first.seq is None
        assert audit.count(s) == 1 and first.seq == 1 and first.prev_hash == GENESIS_HASH
        second = audit.record(s, AuditEventType.PERSON_CHANGE, actor="x", object="person:y", details=ODD)
        third = audit.record(s, AuditEventType.PERSON_CHANGE, actor="x", object="person:z")
        assert second.seq is None
    assert (second.seq, third.seq) == (2, 3) and second.prev_hash == first.hash and third.prev_hash == second.hash
    for event in (first, second, third):
        stored = row(db, event.seq)
        assert stored["hash"] == event.hash == event_hash(
            seq=event.seq, created_at=event.created_at, actor=event.actor, action=event.action.value,
            object=event.object, outcome=event.outcome.value, details=json.loads(event.details),
            prev_hash=event.prev_hash)
    assert json.loads(row(db, 1)["details"]) == ODD
    assert verify(db).ok


def test_an_event_recorded_in_a_savepoint_rolled_back_is_not_stored(db):
    with transaction(db) as s:
        kept = audit.record(s, AuditEventType.PERSON_ADD, actor="x", object="person:kept")
        with pytest.raises(RuntimeError), s.begin_nested():
            audit.record(s, AuditEventType.PERSON_ADD, actor="x", object="person:gone")
            raise RuntimeError("the inner change failed")
        after = audit.record(s, AuditEventType.PERSON_ADD, actor="x", object="person:after")
    assert (kept.seq, after.seq) == (1, 2)
    with db() as s:
        assert [e.object for e in audit.find_events(s)] == ["person:after", "person:kept"]
        assert audit.verify(s).ok
