"""Live sessions, shared by the admin pages, `onsite admin sessions` and the review service: which
projects a session opened and from which terminal (from the ledger), whether it is running (the Hub
API), and ending one through the Hub API, recorded as SESSION_END."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access_control import audit
from onsite_base.db import read_transaction, transaction
from onsite_base.netaddr import normalise
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent
from access_control.hub_api import HubApiUnavailable, HubClient

log = logging.getLogger(__name__)


def session_projects(session: Session, username: str) -> list[str]:
    """The projects of the person's newest SESSION_START (what the spawner opened; a failed set-up opened none)."""
    event = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == AuditEventType.SESSION_START, AuditEvent.object == session_object(username),
               AuditEvent.outcome == Outcome.OK)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return list(event.details_dict.get("projects", [])) if event else []


@dataclass(frozen=True)
class LiveSession:
    """A running session: the terminal it was started from and the projects it opened (its SESSION_START)."""

    username: str
    terminal: str
    projects: frozenset[str]
    started: datetime


def session_object(username: str) -> str:
    """The object of a person's SESSION_START and SESSION_STOP events (whoever the actor)."""
    return f"session:{username}"[: audit.MAX_OBJECT]


def started_session(session: Session, username: str, since: datetime) -> LiveSession | None:
    """The session the person's running server is: their newest successful SESSION_START written at or after
    `since` (the hub's start time of that server; the spawner writes the event once the server runs), unless a
    SESSION_STOP follows it. None when there is no such event: a server the ledger does not know is no session."""
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.object == session_object(username),
               AuditEvent.action.in_((AuditEventType.SESSION_START, AuditEventType.SESSION_STOP)),
               AuditEvent.created_at >= since)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).all()
    newest = events[0] if events else None
    if newest is None or newest.action is not AuditEventType.SESSION_START or newest.outcome is not Outcome.OK:
        return None
    details = newest.details_dict
    terminal = details.get("client_address")
    if not terminal:
        return None
    return LiveSession(username, normalise(terminal), frozenset(details.get("projects", [])), newest.created_at)


async def session_at(hub: HubClient, factory: sessionmaker[Session], username: str, client: str) -> LiveSession | None:
    """The person's running session when `client` is its terminal, else None.

    Running: the Hub reports their server ready, and the ledger holds the SESSION_START of that server.
    Raises HubApiUnavailable when the Hub cannot say: the caller fails closed.
    """
    server = await hub.server(username)
    if server is None or not server.ready or server.pending or server.started is None:
        return None
    with read_transaction(factory) as session:
        live = started_session(session, username, server.started)
    return live if live is not None and live.terminal == normalise(client) else None


async def end_session(
    hub: HubClient, factory: sessionmaker[Session], username: str, actor: str, *, reason: str | None = None
) -> None:
    """Ask the hub to stop `username`'s server and record the request as SESSION_END by `actor` (the
    spawner writes the session's one SESSION_STOP); when the hub refuses, SESSION_END is recorded as
    FAILED and HubApiUnavailable is raised."""
    details: dict[str, str] = {"requested_by": actor}
    if reason:
        details["reason"] = reason
    target = session_object(username)
    try:
        await hub.stop_server(username)
    except HubApiUnavailable as e:
        with transaction(factory) as session:
            audit.record(session, AuditEventType.SESSION_END, actor=actor, object=target, outcome=Outcome.FAILED,
                         details={**details, "error": str(e)[:300]})
        raise
    with transaction(factory) as session:
        audit.record(session, AuditEventType.SESSION_END, actor=actor, object=target, details=details)
    log.info("session of %s ended by administrator %s", username, actor)
