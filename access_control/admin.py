"""How both admin faces — `onsite admin …` and the admin pages — make a change.

The administrative actions themselves are the functions of `policy` (each
validates, changes, and records its audit event in the caller's transaction);
input is read by `forms`; refusals are `errors.PolicyError` with a Japanese and
an English text. This module gives both faces the rest, so that neither has
its own:

- `change(factory)`: the one transaction of one administrative change, taking
  the ledger lock first (serialized with every other writer, so its checks see
  any concurrent change), with a database conflict or an LDAP failure turned
  into a refusal; nothing is changed then.
- `ldap_directory()`: the LDAP directory whose groups follow roles and
  memberships, when one is configured.
- `live_sessions`, `end_session_in_scope`, `close_for_emergency`: the running
  sessions with the facility of the terminal each was started from, so that a
  facility manager sees and ends only those at their facilities, and an
  emergency closure ends every session at the facility (the admin's own
  session-ending path, `access_control.sessions.end_session`).
- `record_manager_read`: a facility manager's read of their facilities' entry
  log or live sessions, in the ledger as their changes are.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from access_control import audit, policy
from access_control.entry import load_terminals, match_terminal
from access_control.enums import AuditEventType, Outcome
from access_control.errors import ChangeInvalid, PolicyError
from access_control.hub_api import HubApiUnavailable, HubClient, LiveServer
from access_control.ldap import DirectoryUnavailable, LdapDirectory, LdapSettings, LdapSettingsInvalid
from access_control.policy import EVERYTHING, GroupDirectory, OutOfScope, Scope
from access_control.sessions import end_session, session_projects, started_session
from onsite_base.db import read_transaction, transaction


def ldap_directory() -> GroupDirectory | None:
    """The LDAP directory (LdapSettings, e.g. $ONSITE_LDAP_URI) whose groups role and membership changes maintain;
    None without one. Invalid settings refuse the change."""
    try:
        settings = LdapSettings.load()
    except LdapSettingsInvalid as e:
        raise PolicyError("ldap_settings_invalid", error=str(e)) from None
    return LdapDirectory(settings) if settings is not None else None


@contextmanager
def change(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for one administrative change; any refusal rolls all of it back."""
    try:
        with transaction(factory) as session:
            # Serialize with every other writer first, so that the checks see any concurrent change
            # already committed (SQLite: BEGIN IMMEDIATE does it).
            audit.lock_ledger(session)
            yield session
    except IntegrityError as e:  # a change that slipped past the checks concurrently
        raise ChangeInvalid("conflict", error=str(e.orig)) from None
    except DirectoryUnavailable as e:  # raised inside the transaction: the database change rolled back
        raise ChangeInvalid("ldap_refused", error=e.reason) from None


def record_manager_read(factory: sessionmaker[Session], scope: Scope, actor: str, what: str, *, rows: int,
                        **details: audit.DetailValue) -> None:
    """A facility manager's successful read of personal records of their facilities (`what`: the entry log, the
    live sessions) as an ADMIN_ACCESS event (OK) naming the facilities, how many rows were shown and how they were
    asked for. Written before the records are shown: a ledger that cannot take it refuses the read. An
    administrator's reads are not recorded (as before)."""
    if scope.everything:
        return
    with transaction(factory) as session:
        audit.record(session, AuditEventType.ADMIN_ACCESS, actor=actor[: audit.MAX_ACTOR], object=f"read:{what}",
                     outcome=Outcome.OK,
                     details={"read": what, "facilities": sorted(scope.facilities or ()), "rows": rows, **details})


@dataclass(frozen=True)
class FacilitySession:
    """A running server, the facility of the terminal its session started from (None: not known) and its projects."""

    server: LiveServer
    facility: str | None
    projects: list[str]


async def live_sessions(hub: HubClient, factory: sessionmaker[Session], scope: Scope = EVERYTHING) -> list[FacilitySession]:
    """The servers the hub runs; outside everything, only those whose session started at a terminal of the scope's
    facilities. Raises HubApiUnavailable when the hub cannot say."""
    servers = await hub.live_servers()
    with read_transaction(factory) as session:
        terminals = load_terminals(session)
        found = []
        for server in servers:
            live = started_session(session, server.user, server.started) if server.started else None
            terminal = match_terminal(terminals, live.terminal) if live else None
            facility = terminal.facility if terminal else None
            if scope.everything or (facility is not None and scope.covers(facility)):
                found.append(FacilitySession(server, facility, session_projects(session, server.user)))
    return found


async def end_session_in_scope(
    hub: HubClient, factory: sessionmaker[Session], username: str, actor: str, *, scope: Scope = EVERYTHING, reason: str | None = None
) -> None:
    """End a person's session (`sessions.end_session`); a facility manager only one running at their facilities."""
    if not scope.everything and not any(s.server.user == username for s in await live_sessions(hub, factory, scope)):
        raise OutOfScope("no_session_here", name=username)
    await end_session(hub, factory, username, actor, reason=reason)


async def close_for_emergency(
    hub: HubClient | None, factory: sessionmaker[Session], facility: str, reason: str, actor: str, *, scope: Scope = EVERYTHING
) -> list[str]:
    """Close the facility for an emergency (committed first: from then on nobody enters there) and end every session
    running at its terminals with the reason; returns whose sessions were ended. Raises HubApiUnavailable when the hub
    cannot list or stop them (None: no hub known): the closure stands, and the sessions stop at their next entry re-check."""
    with change(factory) as session:
        closed = policy.close_for_emergency(session, facility, reason, actor=actor, scope=scope)
        name, reason = closed.name, closed.emergency_reason
    if hub is None:
        raise HubApiUnavailable("the hub is not running")
    ended = []
    for running in await live_sessions(hub, factory, Scope(frozenset({name}))):
        await end_session(hub, factory, running.server.user, actor, reason=f"emergency closure of {name}: {reason}")
        ended.append(running.server.user)
    return ended
