"""Facility usage read from the ledger: sessions by facility, entry refusals, when each terminal was last seen.

The ledger is the record of who entered where, but it is a chain of JSON events:
a session is a SESSION_START and, later, its SESSION_STOP; its facility is the
terminal its client address falls in. Answering "sessions this month at Osaka"
or "who is in now" from it means reading and pairing every event each time. So
these tables are a projection of the ledger, folded in by `catch_up`: only
events newer than the cursor are read, in seq order, and each is folded once.
They hold nothing the ledger does not; dropped and re-read they come back the
same (except that a session's facility is the terminal registered when it was
folded in).

`catch_up` runs outside page requests: the admin service folds at start and
then on a timer (`OperationsView.catch_up_seconds`, in a worker thread), and
pages read the tables as they are, saying how current they are (the cursor's
`caught_up_at`). Folding is bulk: rows are inserted and updated a batch at a
time, and a session's terminal is found by a lookup per prefix length
(`entry.TerminalIndex`), not a scan of every terminal. Concurrent catch-ups
are serialised on the cursor row.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from access_control.entry import TerminalIndex, load_terminals
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent, Facility, UTCDateTime
from onsite_base.db import Base, transaction

log = logging.getLogger(__name__)

SEQ = BigInteger().with_variant(Integer, "sqlite")
FOLDED = (AuditEventType.ENTRY_DECIDE, AuditEventType.SESSION_START, AuditEventType.SESSION_STOP)
BATCH = 50_000
"""Events folded per transaction: a first catch-up over a long ledger commits as it goes."""
SESSION_PREFIX = "session:"


class UsageSession(Base):
    """One session (a SESSION_START OK), at the facility of the terminal it started from (None: no terminal
    matched), until its SESSION_STOP (`ended_at` None: live, as far as the ledger says)."""

    __tablename__ = "usage_session"
    __table_args__ = (
        Index("ix_usage_session_facility_started", "facility_id", "started_at"),
        Index("ix_usage_session_username_started", "username", "started_at"),
        Index("ix_usage_session_facility_month", "facility_id", "month"),
    )

    start_seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(200))
    facility_id: Mapped[int | None] = mapped_column(Integer, default=None)
    terminal: Mapped[str | None] = mapped_column(String(64), default=None)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    stop_seq: Mapped[int | None] = mapped_column(SEQ, default=None)
    month: Mapped[str | None] = mapped_column(String(7), default=None)
    """YYYY-MM of `started_at` in the facility's time zone when folded (None: no facility), what usage groups by."""
    seconds: Mapped[float | None] = mapped_column(Float, default=None)
    """Its length once ended (None: live)."""


class UsageRefusal(Base):
    """An entry decision that refused (ENTRY_DECIDE DENIED), with its reason codes (a JSON list)."""

    __tablename__ = "usage_refusal"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    username: Mapped[str] = mapped_column(String(200))
    facility_id: Mapped[int | None] = mapped_column(Integer, default=None)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    stage: Mapped[str] = mapped_column(String(40), default="")
    reasons: Mapped[str] = mapped_column(Text, default="[]")


class TerminalSeen(Base):
    """The newest entry decision or session start from a terminal network (its normalised CIDR text)."""

    __tablename__ = "usage_terminal_seen"

    terminal: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column(SEQ)


class UsageCursor(Base):
    """The seq of the newest ledger event folded in (one row, id 1, made by the migration)."""

    __tablename__ = "usage_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(SEQ)
    caught_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When a catch-up last reached the ledger's end (None: never): what the pages show as "as of"."""


def caught_up_at(session: Session) -> datetime | None:
    """When the projection last reached the ledger's end."""
    return session.scalar(select(UsageCursor.caught_up_at).where(UsageCursor.id == 1))


def catch_up(factory: sessionmaker[Session], *, batch: int = BATCH) -> int:
    """Fold every ledger event newer than the cursor into the usage tables; the number of events folded."""
    folded = 0
    while True:
        with transaction(factory) as session:
            # The row lock makes a second catch-up wait, then read the moved cursor (PostgreSQL);
            # SQLite transactions here begin IMMEDIATE, which serialises them the same way.
            cursor = session.scalar(select(UsageCursor).where(UsageCursor.id == 1).with_for_update())
            if cursor is None:
                raise RuntimeError("usage_cursor has no row: the store is not migrated")
            events = session.execute(
                select(AuditEvent.seq, AuditEvent.created_at, AuditEvent.action, AuditEvent.actor, AuditEvent.object,
                       AuditEvent.outcome, AuditEvent.details)
                .where(AuditEvent.seq > cursor.seq, AuditEvent.action.in_(FOLDED))
                .order_by(AuditEvent.seq).limit(batch)
            ).all()
            values: dict[str, Any] = {"seq": events[-1].seq} if events else {}
            if len(events) < batch:
                values["caught_up_at"] = datetime.now(timezone.utc)
            if events:
                Folder(session).fold(events)
            if values:
                session.execute(update(UsageCursor).where(UsageCursor.id == 1).values(**values))
        folded += len(events)
        if len(events) < batch:
            if folded:
                log.debug("usage: folded %d ledger events", folded)
            return folded


def naive_utc(value: Any) -> Any:
    """A value as UTCDateTime stores it (naive UTC), for COPY, which bypasses the column types."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if isinstance(value, datetime) else value


class Folder:
    """Folds one batch of events in one transaction: new rows inserted together, ended sessions updated together."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.terminals = TerminalIndex(load_terminals(session))
        self.facility_ids = dict(session.execute(select(Facility.name, Facility.id)).all())
        self.open: dict[str, dict[str, Any]] = {
            s.username: {"start_seq": s.start_seq, "started_at": s.started_at, "stored": True}
            for s in session.execute(select(UsageSession.username, UsageSession.start_seq, UsageSession.started_at)
                                     .where(UsageSession.ended_at.is_(None)))}
        self.new_sessions: list[dict[str, Any]] = []
        self.ended: list[dict[str, Any]] = []
        self.refusals: list[dict[str, Any]] = []
        self.seen: dict[str, tuple[datetime, int]] = {}

    def fold(self, events: Sequence[Any]) -> None:
        for event in events:
            details = json.loads(event.details)
            if event.action is AuditEventType.ENTRY_DECIDE:
                self.entry(event, details)
            elif event.action is AuditEventType.SESSION_START and event.outcome is Outcome.OK:
                self.start(event, details)
            elif event.action is AuditEventType.SESSION_STOP:
                self.stop(event.object.removeprefix(SESSION_PREFIX), event.created_at, event.seq)
        self.insert(UsageSession, self.new_sessions)
        if self.ended:
            self.session.execute(update(UsageSession), self.ended)
        self.insert(UsageRefusal, self.refusals)
        self.store_seen()

    def insert(self, table: type[Base], rows: list[dict[str, Any]]) -> None:
        """Many rows at once: on PostgreSQL by COPY (an executemany sends a statement a row, and a first catch-up
        folds a year's sessions), elsewhere (SQLite, in process) by executemany."""
        if not rows:
            return
        connection = self.session.connection()
        if connection.dialect.name != "postgresql":
            self.session.execute(insert(table), rows)
            return
        columns = list(rows[0])
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(
                f"COPY {table.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([naive_utc(row[c]) for c in columns])


    def entry(self, event: Any, details: dict[str, Any]) -> None:
        if details.get("terminal"):
            self.seen[str(details["terminal"])] = (event.created_at, event.seq)
        if event.outcome is Outcome.DENIED:
            self.refusals.append({
                "seq": event.seq, "created_at": event.created_at, "username": event.actor,
                "facility_id": self.facility_ids.get(details.get("facility")),
                "client_address": str(details.get("client_address", ""))[:64], "stage": str(details.get("stage", ""))[:40],
                "reasons": json.dumps([str(r) for r in details.get("reasons", [])]),
            })

    def start(self, event: Any, details: dict[str, Any]) -> None:
        username = event.object.removeprefix(SESSION_PREFIX)
        # the hub runs one server a person: a start without a stop ended the one before
        self.stop(username, event.created_at, None)
        address = str(details.get("client_address", ""))
        terminal = self.terminals.match(address) if address else None
        if terminal is not None:
            self.seen[str(terminal.network)] = (event.created_at, event.seq)
        row = {
            "start_seq": event.seq, "username": username, "client_address": address[:64], "started_at": event.created_at,
            "terminal": str(terminal.network) if terminal else None,
            "facility_id": self.facility_ids.get(terminal.facility) if terminal else None,
            "month": event.created_at.astimezone(ZoneInfo(terminal.timezone)).strftime("%Y-%m") if terminal else None,
            "ended_at": None, "stop_seq": None, "seconds": None,
        }
        self.new_sessions.append(row)
        self.open[username] = row

    def stop(self, username: str, at: datetime, seq: int | None) -> None:
        row = self.open.pop(username, None)
        if row is None:
            return
        ended = {"ended_at": at, "stop_seq": seq, "seconds": (at - row["started_at"]).total_seconds()}
        if row.pop("stored", False):  # a row of an earlier batch
            self.ended.append({"start_seq": row["start_seq"], **ended})
        else:
            row.update(ended)

    def store_seen(self) -> None:
        if not self.seen:
            return
        stored = dict(self.session.execute(select(TerminalSeen.terminal, TerminalSeen.last_seq)
                                           .where(TerminalSeen.terminal.in_(self.seen))).all())
        new = [{"terminal": t, "last_seen_at": when, "last_seq": seq} for t, (when, seq) in self.seen.items() if t not in stored]
        newer = [{"terminal": t, "last_seen_at": when, "last_seq": seq} for t, (when, seq) in self.seen.items()
                 if t in stored and seq > stored[t]]
        if new:
            self.session.execute(insert(TerminalSeen), new)
        if newer:
            self.session.execute(update(TerminalSeen), newer)
