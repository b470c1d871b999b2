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

The operations view calls `catch_up` before it reads, so what it shows is as
new as the ledger. Concurrent catch-ups are serialised on the cursor row.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from access_control.entry import load_terminals, match_terminal
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent, Facility, UTCDateTime
from onsite_base.db import Base, transaction

log = logging.getLogger(__name__)

SEQ = BigInteger().with_variant(Integer, "sqlite")
FOLDED = (AuditEventType.ENTRY_DECIDE, AuditEventType.SESSION_START, AuditEventType.SESSION_STOP)
BATCH = 20_000
"""Events folded per transaction: a first catch-up over a long ledger commits as it goes."""
SESSION_PREFIX = "session:"


class UsageSession(Base):
    """One session (a SESSION_START OK), at the facility of the terminal it started from (None: no terminal
    matched), until its SESSION_STOP (`ended_at` None: live, as far as the ledger says)."""

    __tablename__ = "usage_session"
    __table_args__ = (
        Index("ix_usage_session_facility_started", "facility_id", "started_at"),
        Index("ix_usage_session_username_started", "username", "started_at"),
    )

    start_seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(200))
    facility_id: Mapped[int | None] = mapped_column(Integer, default=None)
    terminal: Mapped[str | None] = mapped_column(String(64), default=None)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    stop_seq: Mapped[int | None] = mapped_column(SEQ, default=None)


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
            if events:
                Folder(session).fold(events)
                session.execute(update(UsageCursor).where(UsageCursor.id == 1).values(seq=events[-1].seq))
        folded += len(events)
        if len(events) < batch:
            if folded:
                log.debug("usage: folded %d ledger events", folded)
            return folded


class Folder:
    """Folds one batch of events in one transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.terminals = load_terminals(session)
        self.facility_ids = dict(session.execute(select(Facility.name, Facility.id)).all())
        self.open = {s.username: s for s in session.scalars(select(UsageSession).where(UsageSession.ended_at.is_(None)))}
        self.seen: dict[str, tuple[datetime, int]] = {}

    def fold(self, events: Sequence[Any]) -> None:
        for event in events:
            details = json.loads(event.details)
            if event.action is AuditEventType.ENTRY_DECIDE:
                self.entry(event, details)
            elif event.action is AuditEventType.SESSION_START and event.outcome is Outcome.OK:
                self.start(event, details)
            elif event.action is AuditEventType.SESSION_STOP:
                self.stop(event)
        self.store_seen()

    def entry(self, event: Any, details: dict[str, Any]) -> None:
        if details.get("terminal"):
            self.seen[str(details["terminal"])] = (event.created_at, event.seq)
        if event.outcome is Outcome.DENIED:
            self.session.add(UsageRefusal(
                seq=event.seq, created_at=event.created_at, username=event.actor,
                facility_id=self.facility_ids.get(details.get("facility")),
                client_address=str(details.get("client_address", ""))[:64], stage=str(details.get("stage", ""))[:40],
                reasons=json.dumps([str(r) for r in details.get("reasons", [])]),
            ))

    def start(self, event: Any, details: dict[str, Any]) -> None:
        username = event.object.removeprefix(SESSION_PREFIX)
        previous = self.open.pop(username, None)
        if previous is not None:  # the hub runs one server a person: a start without a stop ended the one before
            previous.ended_at = event.created_at
        address = str(details.get("client_address", ""))
        terminal = match_terminal(self.terminals, address) if address else None
        if terminal is not None:
            self.seen[str(terminal.network)] = (event.created_at, event.seq)
        row = UsageSession(
            start_seq=event.seq, username=username, client_address=address[:64], started_at=event.created_at,
            terminal=str(terminal.network) if terminal else None,
            facility_id=self.facility_ids.get(terminal.facility) if terminal else None,
        )
        self.session.add(row)
        self.open[username] = row

    def stop(self, event: Any) -> None:
        row = self.open.pop(event.object.removeprefix(SESSION_PREFIX), None)
        if row is not None:
            row.ended_at, row.stop_seq = event.created_at, event.seq

    def store_seen(self) -> None:
        if not self.seen:
            return
        stored = {r.terminal: r for r in self.session.scalars(select(TerminalSeen).where(TerminalSeen.terminal.in_(self.seen)))}
        for terminal, (when, seq) in self.seen.items():
            row = stored.get(terminal)
            if row is None:
                self.session.add(TerminalSeen(terminal=terminal, last_seen_at=when, last_seq=seq))
            elif seq > row.last_seq:
                row.last_seen_at, row.last_seq = when, seq
