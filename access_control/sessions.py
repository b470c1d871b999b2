"""Live sessions, shared by the admin pages and `onsite admin sessions`: which projects a
session opened (from the ledger) and ending one through the Hub API, recorded as SESSION_STOP."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access_control import audit
from onsite_base.db import transaction
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent
from access_control.hub_api import HubApiUnavailable, HubClient

log = logging.getLogger(__name__)


def session_projects(session: Session, username: str) -> list[str]:
    """The projects of the person's newest SESSION_START (what the spawner opened; a failed set-up opened none)."""
    event = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == AuditEventType.SESSION_START, AuditEvent.actor == username,
               AuditEvent.outcome == Outcome.OK)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return list(event.details_dict.get("projects", [])) if event else []


async def end_session(
    hub: HubClient, factory: sessionmaker[Session], username: str, actor: str, *, reason: str | None = None
) -> None:
    """Ask the hub to stop `username`'s server and record SESSION_STOP by `actor`; when the hub
    refuses, the attempt is recorded as FAILED and HubApiUnavailable is raised."""
    details: dict[str, str] = {"requested_by": actor}
    if reason:
        details["reason"] = reason
    target = f"session:{username}"[: audit.MAX_OBJECT]
    try:
        await hub.stop_server(username)
    except HubApiUnavailable as e:
        with transaction(factory) as session:
            audit.record(session, AuditEventType.SESSION_STOP, actor=actor, object=target, outcome=Outcome.FAILED,
                         details={**details, "error": str(e)[:300]})
        raise
    with transaction(factory) as session:
        audit.record(session, AuditEventType.SESSION_STOP, actor=actor, object=target, details=details)
    log.info("session of %s ended by administrator %s", username, actor)
