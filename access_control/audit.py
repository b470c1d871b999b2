"""The audit ledger: append-only, hash-chained audit events.

Each event's hash is SHA-256 over a canonical JSON of its own fields and the
previous event's hash, so editing, deleting, inserting or reordering any event
breaks the chain at that point. Appends are serialized across processes (hub,
review service, CLI): PostgreSQL takes a transaction-scoped advisory lock,
SQLite takes the write lock at BEGIN IMMEDIATE (see onsite_base.db), and
`prev_hash` is unique so a fork cannot even be stored.

Chained at commit. `record` leaves the event pending in the session; it is
chained (seq, prev_hash, hash) when the transaction commits, or earlier when the
session runs a query first (as an autoflush), so read an event's `.seq` after
the commit. On PostgreSQL the server chains it (`onsite_chain_event`, migration
ac0007: lock, head, insert, the hash over the client's part of the entry and
the head), and at commit one message carries BEGIN, the events, COMMIT and the
WAL flush: the ledger lock is held over no client round trip (issue 17).

Group commit (PostgreSQL). The lock is held until the transaction ends, so a
writer that waited for its commit's WAL flush inside the lock made every other
writer wait for one disk flush per event. A transaction that takes the lock
commits without waiting for the flush (`synchronous_commit` off for it alone),
which releases the lock at once; `commit()` then returns only once the WAL is
flushed past that commit (a synchronous statement of its own after it, in the
same message or `wait_until_durable`), and the writers waiting at the same
moment share one flush. The caller learns of its commit only when the event is
on disk, as before. A later event that chained on it is in the WAL after it, so
a server crash keeps a prefix of the chain, never a fork.

Every event names its client (`client_address` in its details, so the hash
covers it): the process that serves a request names it once with
`set_client` (the hub and the web services per request, the `onsite` command
as `local` with the OS account) and every `record` in that context adds it.
asyncio tasks and `asyncio.to_thread` inherit the context; a plain thread pool
does not (the web services' default executor copies it:
`onsite_base.web.service.ContextCopyingExecutor`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]  # the C encoder, its escaper
from pathlib import Path
from typing import IO, Any

from sqlalchemy import String, func, insert, select, text, type_coerce
from sqlalchemy.exc import DBAPIError
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
"""prev_hash of the first event."""
LEDGER_LOCK_KEY = 0x4F4E534954454C47  # "ONSITELG": the advisory lock every PostgreSQL writer takes
EXPORT_SCHEMA = "onsite.audit_event/v1"
PROGRESS_STEP = 1000
MAX_ACTOR = AuditEvent.__table__.c.actor.type.length
MAX_OBJECT = AuditEvent.__table__.c.object.type.length

DetailValue = str | int | float | bool | None | list[Any] | dict[str, Any]


@dataclass(frozen=True)
class Client:
    """Who asked for what an event records: a client address as the hub reads it, or
    `local` and the OS account for a command run on this host."""

    address: str
    os_user: str | None = None

    def details(self) -> dict[str, str]:
        return {"client_address": self.address, **({"os_user": self.os_user} if self.os_user else {})}


LOCAL = "local"
"""The client address of a command run on this host (the `onsite` CLI, the hub's own work)."""

_client: ContextVar[Client | None] = ContextVar("onsite_audit_client", default=None)


def set_client(client: Client) -> None:
    """Name the client of every event recorded from now on in this context (a request's task)."""
    _client.set(client)


@contextmanager
def client_context(client: Client) -> Iterator[Client]:
    """Name the client of every event recorded inside the block."""
    token = _client.set(client)
    try:
        yield client
    finally:
        _client.reset(token)


def current_client() -> Client | None:
    return _client.get()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _bare_canonical_encoder() -> Callable[[Any], str]:
    """`canonical_json` without the Python layers around the C encoder (per call: a new encoder and two wrappers),
    for `verify`'s million calls on JSON it just parsed (never circular). The plain encoder where the C one is
    missing or encodes differently (checked on a sample now)."""
    if c_make_encoder is None:
        return _CANONICAL.encode
    bare = c_make_encoder(None, None, encode_basestring, None, ":", ",", True, False, True)

    def encode(value: Any) -> str:
        return "".join(bare(value, 0))

    sample = [1, "2026-01-01T00:00:00+00:00", "東京\n\"x\"", {"b": [1.5, None, True], "a": {"z": "\u2028", "y": -0.0}}]
    try:
        return encode if encode(sample) == _CANONICAL.encode(sample) else _CANONICAL.encode
    except TypeError:  # another signature
        return _CANONICAL.encode


_VERIFY_ENCODE = _bare_canonical_encoder()


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, text as is: what every hash and signature of the ledger is taken over."""
    return _CANONICAL.encode(value)  # one encoder: json.dumps with arguments builds a new one per call


def event_entry(
    *,
    seq: int,
    created_at: datetime | str,
    actor: str,
    action: str,
    object: str,
    outcome: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> bytes:
    """The bytes the ledger commits to for an event: canonical JSON of every stored column but `hash`.
    Its SHA-256 is the event's chain hash; SHA-256(0x00 || it) its Merkle leaf (access_control.ledger)."""
    when = created_at if isinstance(created_at, str) else created_at.isoformat()
    return canonical_json([seq, when, actor, action, object, outcome, dict(details), prev_hash]).encode("utf-8")


def event_hash(**fields: Any) -> str:
    """The hash that chains an event (`event_entry`'s fields); every stored column but `hash` is covered."""
    return hashlib.sha256(event_entry(**fields)).hexdigest()


def exported_entry(event: Mapping[str, Any]) -> bytes:
    """`event_entry` of an exported event (`event_as_dict`): what a proof's checker rebuilds."""
    return event_entry(**{name: event[name] for name in
                          ("seq", "created_at", "actor", "action", "object", "outcome", "details", "prev_hash")})


def chain_rows(session: Session, *, after: int = 0, upto: int | None = None, where: Any = None):
    """Stored events in seq order (those after seq `after`, up to `upto`, matching `where`), with
    action and outcome as the raw stored text so a tampered, unknown value is reported rather than
    crashing the reader."""
    cols = (
        AuditEvent.seq,
        AuditEvent.created_at,
        AuditEvent.actor,
        type_coerce(AuditEvent.action, String).label("action"),
        AuditEvent.object,
        type_coerce(AuditEvent.outcome, String).label("outcome"),
        AuditEvent.details,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    )
    query = select(*cols).order_by(AuditEvent.seq)
    if after:
        query = query.where(AuditEvent.seq > after)
    if upto is not None:
        query = query.where(AuditEvent.seq <= upto)
    if where is not None:
        query = query.where(where)
    return session.execute(query.execution_options(yield_per=1000))


VERIFY_FETCH = 5000
"""Rows `verify` reads at a time (a server-side cursor on PostgreSQL: the log is never all in memory)."""


def stored_values(session: Session) -> Iterator[tuple[Any, ...]]:
    """Every stored event as a plain tuple (seq, created_at, actor, action, object, outcome, details, prev_hash,
    hash) of the driver's own values, in seq order: `verify`'s read, with no ORM or type processing per row."""
    result = session.connection().execution_options(stream_results=True).exec_driver_sql(
        "SELECT seq, created_at, actor, action, object, outcome, details, prev_hash, hash FROM audit_event ORDER BY seq")
    for rows in result.partitions(VERIFY_FETCH):
        yield from rows


def stored_time(value: datetime | str) -> str:
    """A stored created_at as `event_entry` writes it: SQLite's text or the driver's naive UTC datetime, made
    timezone-aware as models.UTCDateTime returns it."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value + "+00:00").isoformat()  # SQLite's naive UTC text, in one call
        except ValueError:
            value = datetime.fromisoformat(value)
    return (value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)).isoformat()


def stored_entry(row: Any) -> bytes:
    """`event_entry` of a stored row (`chain_rows`)."""
    return event_entry(
        seq=row.seq,
        created_at=row.created_at,
        actor=row.actor,
        action=row.action,
        object=row.object,
        outcome=row.outcome,
        details=json.loads(row.details),
        prev_hash=row.prev_hash,
    )


def lock_ledger(session: Session) -> None:
    """Hold the ledger's append lock until the transaction ends. `record` takes it
    itself; take it first to serialize a whole read-check-write change with every
    other writer (the admin CLI does, so concurrent edits see each other).
    PostgreSQL: the transaction then commits as a group commit (see the module's doc)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: the transaction already holds the database write lock (BEGIN IMMEDIATE).
    session.info[UNFLUSHED_COMMIT] = True
    session.execute(LOCK_FOR_GROUP_COMMIT)  # one round trip: no parameters, so both statements in one message


LOCK_FOR_GROUP_COMMIT = text(f"SET LOCAL synchronous_commit TO OFF; SELECT pg_advisory_xact_lock({LEDGER_LOCK_KEY})")
HEAD_QUERY = "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1"
LOCK_AND_HEAD = f"SET LOCAL synchronous_commit TO OFF; SELECT pg_advisory_xact_lock({LEDGER_LOCK_KEY}); {HEAD_QUERY}"
"""One message, one round trip: each statement reads its own snapshot (READ COMMITTED), so the head is read after
the lock is granted, as it must be."""
TRANSACTION_HEAD = "onsite_ledger_transaction_head"
"""Session.info: (transaction, seq, hash) of the ledger's head as the transaction holding the lock last appended it."""


def locked_head(session: Session) -> tuple[int, str]:
    """Take the ledger lock and read its head (seq, hash), or (0, GENESIS_HASH) when empty; the head this transaction
    appended last when it already holds the lock (nobody else can append until it ends)."""
    known = session.info.get(TRANSACTION_HEAD)
    if known is not None and known[0] is session.get_transaction():
        return known[1], known[2]
    connection = session.connection()
    if connection.dialect.name != "postgresql":  # SQLite: the transaction holds the write lock (BEGIN IMMEDIATE)
        head = connection.exec_driver_sql(HEAD_QUERY).first()
        return (head[0], head[1]) if head else (0, GENESIS_HASH)
    session.info[UNFLUSHED_COMMIT] = True
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.cursor()  # the driver's own: three statements, one message (no parameters)
    try:
        cursor.execute(LOCK_AND_HEAD)
        while cursor.nextset():
            pass  # to the last statement's rows, the head
        head = cursor.fetchone()
    except dbapi.Error as e:  # as SQLAlchemy raises it, for the callers' fail-closed handling
        raise DBAPIError.instance(LOCK_AND_HEAD, None, e, dbapi.Error, dialect=connection.dialect) from e
    finally:
        cursor.close()
    return (head[0], head[1]) if head else (0, GENESIS_HASH)
FLUSH_WAL = text("SELECT pg_logical_emit_message(true, 'onsite-ledger-flush', '')")
UNFLUSHED_COMMIT = "onsite_ledger_unflushed_commit"
"""Session.info flag: this transaction holds the ledger lock and commits without waiting for its WAL flush."""


@orm_event.listens_for(Session, "after_commit")
def wait_until_durable(session: Session) -> None:
    """Return from `commit()` only once the WAL is on disk past the commit the ledger lock made asynchronous.

    A transaction that writes WAL commits synchronously, which flushes the WAL up to its own commit record
    and so past ours; writers doing this at the same moment share one flush. Its one write is an empty
    logical-decoding message (no table, no row lock: flushers never wait for each other; merely taking a
    transaction id writes no WAL, and PostgreSQL then skips the flush). Raises when the store is gone:
    the caller then does not learn of a commit that may be lost."""
    if session.info.pop(UNFLUSHED_COMMIT, False):
        # Autocommit: the statement is its own transaction, committed (and so flushed) before it answers; one round
        # trip, no BEGIN and COMMIT of their own.
        with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(FLUSH_WAL)


@orm_event.listens_for(Session, "after_rollback")
def _forget_unflushed(session: Session) -> None:
    session.info.pop(UNFLUSHED_COMMIT, None)


@orm_event.listens_for(Session, "after_commit")
@orm_event.listens_for(Session, "after_soft_rollback")
def _forget_head(session: Session, *_: object) -> None:
    session.info.pop(TRANSACTION_HEAD, None)  # a savepoint rolled back may have taken the head's event with it


PENDING = "onsite_ledger_pending"
"""Session.info: events `record` made in this transaction, not yet chained (`chain_pending`)."""


def record(
    session: Session,
    action: AuditEventType,
    *,
    actor: str,
    object: str = "",
    outcome: Outcome = Outcome.OK,
    details: Mapping[str, DetailValue] | None = None,
) -> AuditEvent:
    """Append one audit event in the caller's transaction: it is stored if and
    only if the caller's change commits. The context's client (`set_client`) goes
    into the details, unless the caller names one.

    The event is chained (seq, prev_hash, hash set) when the transaction commits, or
    earlier when the session runs a query first (`chain_pending`): read its `.seq`
    after the commit."""
    if not isinstance(action, AuditEventType) or not isinstance(outcome, Outcome):
        raise TypeError("action must be an AuditEventType and outcome an Outcome")
    # The same limits on every backend (SQLite would store longer text silently).
    if len(actor) > MAX_ACTOR or len(object) > MAX_OBJECT:
        raise ValueError(f"audit actor or object too long (at most {MAX_ACTOR} / {MAX_OBJECT} characters)")
    client = _client.get()
    details_text = canonical_json({**(client.details() if client else {}), **dict(details or {})})
    event = AuditEvent(created_at=datetime.now(timezone.utc), actor=actor, action=action, object=object,
                       outcome=outcome, details=details_text)
    session.info.setdefault(PENDING, []).append(event)
    if session.in_nested_transaction():
        chain_pending(session)  # a savepoint rolled back takes its events with it
    log.debug("audit event %s by %s", action.value, actor)
    return event


def chain_pending(session: Session, *, commit: bool = False, connection: Any = None) -> None:
    """Chain and insert the events `record` left pending in this transaction (on `connection`, by default the
    session's), holding the ledger lock until it ends. PostgreSQL: one message (`CHAIN_EVENT`); with `commit`, the
    same message commits and waits for the WAL flush too, so the lock is held by no client round trip at all."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    connection = connection or session.connection()
    if connection.dialect.name == "postgresql":
        _chain_on_postgresql(session, connection, pending, commit)
        return
    head = connection.exec_driver_sql(HEAD_QUERY).first()  # SQLite: the transaction holds the write lock
    last_seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
    for event in pending:
        event.seq, event.prev_hash = last_seq + 1, prev_hash
        event.hash = hashlib.sha256(_entry_head(event.seq) + _entry_middle(event) + _entry_tail(prev_hash)).hexdigest()
        last_seq, prev_hash = event.seq, event.hash
    # Core, not the ORM: a query inside a flush may chain (`_chain_before_query`), and the event stays a plain object.
    connection.execute(insert(AuditEvent.__table__), [{column: getattr(event, column) for column in INSERTED}
                                                      for event in pending])


INSERTED = ("seq", "created_at", "actor", "action", "object", "outcome", "details", "prev_hash", "hash")


def _entry_middle(event: AuditEvent) -> bytes:
    """`event_entry`'s bytes between seq and prev_hash: all the client knows before it holds the lock."""
    return canonical_json([event.created_at.isoformat(), event.actor, event.action.value, event.object,
                           event.outcome.value, json.loads(event.details)])[1:-1].encode("utf-8")


def _entry_head(seq: int) -> bytes:
    return f"[{seq},".encode()


def _entry_tail(prev_hash: str) -> bytes:
    return f',"{prev_hash}"]'.encode()


CHAIN_EVENT = "SELECT o_seq AS seq, o_prev_hash, o_hash FROM onsite_chain_event ({}, {}, {}, {}, {}, {}, {})"
"""One event chained by the server (migration ac0007): the ledger lock, the head, the insert, the hash SHA-256 of
`event_entry`'s bytes, the client's part (`_entry_middle`) between the seq and prev_hash the server fills in."""
COMMIT_DURABLE = "COMMIT; SELECT pg_logical_emit_message(true, 'onsite-ledger-flush', '')"
"""After the asynchronous commit, a statement of its own transaction (synchronous) flushes the WAL past it."""


def _chain_on_postgresql(session: Session, connection: Any, pending: list[AuditEvent], commit: bool) -> None:
    """Sent as one simple-query message through libpq itself, not a psycopg cursor: the cursor's machinery (its own
    BEGIN, switched off by toggling autocommit; a result object per statement) was half the client's CPU of an
    append with 8 writers on 2 cores (issue 17)."""
    raw = connection.connection.dbapi_connection
    dbapi = connection.dialect.loaded_dbapi
    pgconn, encoding = raw.pgconn, raw.info.encoding
    # Nothing sent yet in this transaction: its BEGIN rides in the same message (psycopg, bypassed, sends none).
    begin = pgconn.transaction_status == dbapi.pq.TransactionStatus.IDLE
    literal = dbapi.pq.Escaping(pgconn).escape_literal
    parts = ["BEGIN"] if begin else []
    try:
        for event in pending:
            values = (event.created_at.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" "), event.actor,
                      event.action.value, event.object, event.outcome.value, event.details,
                      _entry_middle(event).decode("utf-8"))
            if any("\x00" in value for value in values):  # libpq's quoting would cut the text there
                raise dbapi.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
            parts.append(CHAIN_EVENT.format(*(literal(value.encode(encoding)).decode(encoding) for value in values)))
        query = "; ".join(parts + ([COMMIT_DURABLE] if commit else []))
        with raw.lock:
            pgconn.send_query(query.encode(encoding))
            results = raw.wait(dbapi.generators.execute(pgconn))
        chained = []
        for result in results:
            if result.status == dbapi.pq.ExecStatus.FATAL_ERROR:
                raise dbapi.errors.error_from_result(result, encoding=encoding)
            if result.status == dbapi.pq.ExecStatus.TUPLES_OK and result.fname(0) == b"seq":
                chained.append((int(result.get_value(0, 0)), result.get_value(0, 1).decode(),
                                result.get_value(0, 2).decode()))
    except dbapi.Error as e:  # as SQLAlchemy raises it, for the callers' fail-closed handling
        if commit and begin and pgconn.transaction_status != dbapi.pq.TransactionStatus.IDLE:
            with suppress(dbapi.Error):  # the message's own transaction, failed part-way
                raw.execute("ROLLBACK")
        raise DBAPIError.instance(CHAIN_EVENT, None, e, dbapi.Error, dialect=connection.dialect) from e
    for event, (seq, prev_hash, hash_) in zip(pending, chained, strict=True):
        event.seq, event.prev_hash, event.hash = seq, prev_hash, hash_
    if commit:
        session.info.pop(UNFLUSHED_COMMIT, None)  # this message flushed the WAL already
    else:
        session.info[UNFLUSHED_COMMIT] = True


@orm_event.listens_for(Session, "do_orm_execute")
def _chain_before_query(state: Any) -> None:
    """As an autoflush: a query in the transaction sees the events recorded before it."""
    if state.session.info.get(PENDING):
        chain_pending(state.session)


@orm_event.listens_for(Session, "before_commit")
def _chain_at_commit(session: Session) -> None:
    if session.info.get(PENDING) and not session.in_nested_transaction():
        session.flush()  # the caller's own rows first: the message below commits
        chain_pending(session, commit=True)


@orm_event.listens_for(Session, "after_transaction_create")
def _chain_before_savepoint(session: Session, transaction: Any) -> None:
    """Events recorded before a savepoint are chained outside it: its rollback must not take them."""
    if transaction.nested and session.info.get(PENDING):
        chain_pending(session, connection=transaction.parent.connection(None))


@orm_event.listens_for(Session, "after_transaction_end")
def _forget_pending(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(PENDING, None)  # rolled back or closed: the events go with the change


@dataclass(frozen=True)
class LedgerVerification:
    ok: bool
    checked: int
    """Events read before the verdict (all of them when ok)."""
    first_bad_seq: int | None = None
    problem: str = ""
    head_seq: int = 0
    head_hash: str = GENESIS_HASH


def verify(
    session: Session,
    anchor: LedgerAnchor | None = None,
    progress: Callable[[int], object] | None = None,
    entries: Callable[[int, bytes], str | None] | None = None,
) -> LedgerVerification:
    """Walk the chain from the first event; name the first event that breaks it.

    Edited event: its hash no longer matches. Deleted: a gap in seq, or the next
    event's prev_hash names a hash that is not its predecessor. Inserted or
    reordered: the same two checks fail at the first misplaced event. With an
    `anchor` (a head recorded outside the database), a rewrite of the whole
    table or a truncation of its tail is detected too. `progress(n)` is told of
    every n events checked (e.g. a tqdm bar's update). `entries(seq, entry)` hears of
    every event that chains, in order, and may name a problem that fails the
    verification there (the Merkle tree's check, access_control.ledger).
    """
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    anchor_seen = anchor is None
    sha256, encode, loads = hashlib.sha256, _VERIFY_ENCODE, json.loads  # a tight loop: a million events in seconds
    for seq, created_at, actor, action, object_, outcome, details, stored_prev, stored_hash in stored_values(session):
        if seq != expected_seq:
            problem = (
                f"event {expected_seq} is missing (next stored event is {seq})"
                if seq > expected_seq
                else f"event {seq} is out of order"
            )
            return LedgerVerification(False, checked, min(expected_seq, seq), problem)
        if stored_prev != prev_hash:
            return LedgerVerification(
                False, checked, seq, f"event {seq} does not follow event {seq - 1}: its prev_hash differs"
            )
        try:  # event_entry's bytes, inline
            entry = encode([seq, stored_time(created_at), actor, action, object_, outcome, dict(loads(details)),
                            stored_prev]).encode("utf-8")
        except (ValueError, TypeError) as e:  # details no longer JSON, a created_at no longer a time
            return LedgerVerification(False, checked, seq, f"event {seq} is unreadable: {e}")
        if sha256(entry).hexdigest() != stored_hash:
            return LedgerVerification(False, checked, seq, f"event {seq} was altered: its hash does not match its contents")
        if anchor is not None and seq == anchor.seq:
            if stored_hash != anchor.hash:
                return LedgerVerification(
                    False, checked, seq, f"event {seq} differs from the anchor written at {anchor.written_at}"
                )
            anchor_seen = True
        if entries is not None and (problem := entries(seq, entry)):
            return LedgerVerification(False, checked, seq, problem)
        prev_hash = stored_hash
        expected_seq += 1
        checked += 1
        if progress is not None and checked % PROGRESS_STEP == 0:
            progress(PROGRESS_STEP)
    if not anchor_seen:
        assert anchor is not None
        return LedgerVerification(
            False, checked, anchor.seq, f"event {anchor.seq} named by the anchor written at {anchor.written_at} is missing"
        )
    return LedgerVerification(True, checked, head_seq=expected_seq - 1, head_hash=prev_hash)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def find_events(
    session: Session,
    *,
    action: AuditEventType | None = None,
    actor: str | None = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The newest events matching every filter given (since inclusive, until exclusive)."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    return list(session.scalars(query))


def event_as_dict(event: Any) -> dict[str, Any]:
    """One exported event (an AuditEvent or a stored row)."""
    return {
        "schema": EXPORT_SCHEMA,
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor,
        "action": getattr(event.action, "value", event.action),
        "object": event.object,
        "outcome": getattr(event.outcome, "value", event.outcome),
        "details": json.loads(event.details),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def export(session: Session, fh: IO[str]) -> int:
    """Write every event as one JSON object per line, in chain order; returns the count.
    Each line carries what is needed to re-check its hash (see `event_hash`)."""
    n = 0
    for event in chain_rows(session):
        fh.write(canonical_json(event_as_dict(event)) + "\n")
        n += 1
    return n


@dataclass(frozen=True)
class LedgerAnchor:
    """The chain head written outside the database: whoever rewrites the table
    cannot rewrite this file too (keep it on other storage or print it)."""

    seq: int
    hash: str
    written_at: str

    @classmethod
    def read(cls, path: Path) -> LedgerAnchor:
        """The last anchor line in `path` (one JSON object per line)."""
        try:
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            last = json.loads(lines[-1])
            return cls(seq=int(last["seq"]), hash=str(last["hash"]), written_at=str(last["written_at"]))
        except (OSError, IndexError, KeyError, ValueError) as e:
            raise ValueError(f"cannot read a ledger anchor from {path}: {e}") from e

    def append_to(self, path: Path) -> None:
        """One line more in `path`, made (with its directory) private to this account."""
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(canonical_json({"seq": self.seq, "hash": self.hash, "written_at": self.written_at}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


SYSTEM_ANCHOR_DIR = Path("/var/lib/onsite-anchors")
"""Where a hub running as root keeps ledger anchors by default (outside $ONSITE_HOME)."""


def default_anchor_file(db_url: str, environ: Mapping[str, str] | None = None) -> Path:
    """The anchor file of the ledger in `db_url` when none is configured: outside the state directory.

    Root: /var/lib/onsite-anchors/; any other account: $XDG_STATE_HOME/onsite-anchors/
    (default ~/.local/state/onsite-anchors/). One file per store (named by a hash of its
    URL without the password), so the ledgers of several state directories on one
    machine never share an anchor. It is still the same machine: a site keeps a copy on
    other storage (see docs/how-to/operator.md).
    """
    return anchor_directory(environ) / f"ledger-anchor-{store_id(db_url)}.jsonl"


def anchor_directory(environ: Mapping[str, str] | None = None) -> Path:
    """/var/lib/onsite-anchors/ for root, else $XDG_STATE_HOME/onsite-anchors/ (see `default_anchor_file`)."""
    env = os.environ if environ is None else environ
    if os.geteuid() == 0:
        return SYSTEM_ANCHOR_DIR
    state = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(state) / "onsite-anchors"


def store_id(db_url: str) -> str:
    """A short name of the store at `db_url` for files kept per store; the password never decides it."""
    store = re.sub(r"(://[^:/@]+:)[^@]+@", r"\1@", db_url)
    return hashlib.sha256(store.encode()).hexdigest()[:16]


def anchor_head(session: Session, path: Path) -> LedgerAnchor:
    """Verify the ledger and append its head to the anchor file `path`.
    Refuses (ValueError) to anchor a chain that does not verify against the last anchor."""
    previous = LedgerAnchor.read(path) if path.exists() and path.stat().st_size else None
    result = verify(session, previous)
    if not result.ok:
        raise ValueError(f"ledger does not verify, not anchoring: {result.problem}")
    anchor = LedgerAnchor(result.head_seq, result.head_hash, datetime.now(timezone.utc).isoformat())
    anchor.append_to(path)
    return anchor
