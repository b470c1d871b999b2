"""Who may use Onsite from which address: every request to the hub and to the web services is judged by it.

The rule (`decide_access`), for a signed-in person at a client address:

- a researcher only from a registered terminal, and only while their entry
  decision allows (`access_control.entry.decide_entry`: project, terminal,
  accreditation, opening hours, booking);
- a reviewer or an administrator only from a staff network
  (`AddressPolicy.staff_networks`, and every registered facility terminal
  while `AddressPolicy.staff_at_terminals`), with an account that is not
  disabled or locked;
- a person with several roles is allowed if any of them allows it from that
  address (a researcher who also reviews may review from a staff network and
  analyse only at a terminal: the spawn still takes the researcher's entry
  decision).

Requests that carry an API token and did not pass through the proxy come from a
process on this host (a session's server posting session events, the outbox
forwarder, a service asking the hub whose token it holds): they are not a
browser and are not judged by address (`onsite_base.netaddr.is_direct`).

A refusal is an `ENTRY_DECIDE` audit event with `stage` "request", the service,
the method, the path, the client address and the reasons; when the policy store
cannot be read the request is refused (`STORE_UNAVAILABLE`) and logged.
The hub calls `judge_request` from `OnsiteAuthenticator.refresh_user`; the web
services through `ClientCheck`, which `onsite_base.web.service.HubServiceHandler`
calls for every request of a signed-in person.
"""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Bool, List, TraitError, Unicode, validate
from traitlets.config import Config

from access_control import audit
from access_control.entry import (
    ROLES_WITHOUT_PROJECT,
    DenialReason,
    EntryDecision,
    EntryFacts,
    TerminalFacts,
    account_reasons,
    decide_entry,
    load_entry_facts,
    match_terminal,
)
from access_control.enums import AuditEventType, Outcome, Role
from access_control.errors import InputInvalid
from access_control.forms import parse_network
from onsite_base.config import Section
from onsite_base.db import read_transaction, transaction
from onsite_base.netaddr import client_address, is_direct, parse_client_address

log = logging.getLogger(__name__)

STAFF_ROLES = ROLES_WITHOUT_PROJECT
"""Reviewers and administrators: judged by the staff networks, not by the entry decision."""
MAX_PATH = 300
"""How much of a refused request's path the ledger keeps."""


class AddressPolicy(Section):
    """From which client addresses people may use the hub, the review service and the admin
    service, and which proxies are believed about the client address."""

    staff_networks = List(
        Unicode(),
        ["127.0.0.1/32", "::1/128"],
        help="""Networks (CIDR, e.g. 192.0.2.0/24) from which reviewers and administrators may
        use the hub, the review service and the admin service, besides the facility terminals
        (see staff_at_terminals). Default: this machine's own loopback address (127.0.0.1 and
        ::1, not the rest of 127.0.0.0/8). Researchers are never allowed from these unless they
        are registered terminals. In the environment: separated by spaces.""",
    ).tag(config=True, env="ONSITE_STAFF_NETWORKS")

    staff_at_terminals = Bool(
        True,
        help="""Whether reviewers and administrators may also work from every terminal registered
        at a facility (the policy store's terminals). Set it to False (in the environment: 0) to
        allow staff only from staff_networks.""",
    ).tag(config=True, env="ONSITE_STAFF_AT_TERMINALS")

    trusted_proxies = List(
        Unicode(),
        ["127.0.0.1", "::1"],
        help="""Addresses of the proxies in front of the hub whose `X-Forwarded-For` entries are
        believed, by the hub, the single-user servers and the web services alike. Default:
        loopback, where configurable-http-proxy runs. Add the address of a TLS front end if
        there is one. Every other peer's headers are ignored and its own address is the client
        address. Security: a local process that can reach the hub's or a service's port directly
        could claim any address; those ports listen on loopback only.""",
    ).tag(config=True)

    @validate("staff_networks")
    def _networks(self, proposal: Any) -> list[str]:
        networks = []
        for text in proposal.value:
            try:  # the terminals' rule: a network of addresses a client can have
                networks.append(str(parse_network(text)))
            except InputInvalid as error:
                raise TraitError(f"{text!r} is not a staff network: write it as 192.0.2.0/24 or 2001:db8::/64 ({error})") from None
        return networks

    @validate("trusted_proxies")
    def _addresses(self, proposal: Any) -> list[str]:
        addresses = []
        for text in proposal.value:
            address = parse_client_address(text)
            if address is None:
                raise TraitError(f"{text!r} is not an IP address: give each proxy's address, e.g. 127.0.0.1")
            addresses.append(str(address))
        return addresses

    @property
    def proxies(self) -> set[str]:
        return set(self.trusted_proxies)

    def is_staff_address(self, address: str, terminals: Iterable[TerminalFacts]) -> bool:
        """Whether `address` is in a staff network (or a facility terminal, when staff work there)."""
        parsed = parse_client_address(address)
        if parsed is None:
            return False
        networks = [ipaddress.ip_network(n) for n in self.staff_networks]
        if self.staff_at_terminals:
            networks += [t.network for t in terminals]
        return any(n.version == parsed.version and parsed in n for n in networks)

    def is_known_address(self, address: str, terminals: tuple[TerminalFacts, ...]) -> bool:
        """Whether anyone at all could be allowed from `address`: a registered terminal or a staff network.
        A log-in from anywhere else is refused before its password is checked."""
        return match_terminal(terminals, address) is not None or self.is_staff_address(address, terminals)


def decide_access(facts: EntryFacts, now: datetime, policy: AddressPolicy) -> EntryDecision:
    """May the person of `facts` use the hub or a service from `facts.client_address` at `now`?

    Allowed when one of their roles allows it (see the module doc). Refused with the reasons
    of every role they hold: the entry decision's for a researcher, the account's and
    NOT_STAFF_ADDRESS for a reviewer or an administrator.
    """
    entry = decide_entry(facts, now)
    if Role.RESEARCHER in facts.roles and entry.allowed:
        return entry
    reasons = list(entry.reasons) if Role.RESEARCHER in facts.roles or not facts.roles & STAFF_ROLES else []
    if facts.roles & STAFF_ROLES:
        staff = account_reasons(facts, now)
        if not policy.is_staff_address(facts.client_address, facts.terminals):
            staff.append(DenialReason.NOT_STAFF_ADDRESS)
        if not staff:
            return EntryDecision(True, (), entry.terminal, entry.active_projects, entry.day)
        reasons += [r for r in staff if r not in reasons]
    return EntryDecision(False, tuple(reasons), entry.terminal, entry.active_projects, entry.day)


@dataclass(frozen=True)
class RequestSeen:
    """A request as the ledger names it."""

    service: str
    method: str
    path: str


def judge_request(factory: sessionmaker[Session], policy: AddressPolicy, username: str, address: str,
                  seen: RequestSeen) -> EntryDecision:
    """`decide_access` for one request, the refusal written to the ledger. Fail closed: a store
    that cannot be read refuses the request (STORE_UNAVAILABLE), recorded if the store takes it."""
    try:
        with read_transaction(factory) as session:
            facts = load_entry_facts(session, username, address)
        decision = decide_access(facts, datetime.now(timezone.utc), policy)
    except SQLAlchemyError as error:
        log.error("refused %s %s of %s from %s at %s: the policy store cannot be read: %s",
                  seen.method, seen.path, username, address, seen.service, error)
        decision = EntryDecision(False, (DenialReason.STORE_UNAVAILABLE,))
    if decision.allowed:
        return decision
    log.warning("refused %s %s of %s from %s at %s: %s", seen.method, seen.path, username, address, seen.service,
                [r.value for r in decision.reasons])
    try:
        with transaction(factory) as session:
            record_refusal(session, decision, username=username, address=address, seen=seen)
    except SQLAlchemyError as error:
        log.error("the refusal of %s from %s could not be written to the ledger: %s", username, address, error)
    return decision


def record_refusal(session: Session, decision: EntryDecision, *, username: str, address: str, seen: RequestSeen) -> None:
    audit.record(
        session,
        AuditEventType.ENTRY_DECIDE,
        actor=username[: audit.MAX_ACTOR],
        object=f"person:{username}"[: audit.MAX_OBJECT],
        outcome=Outcome.DENIED,
        details={"stage": "request", "service": seen.service, "method": seen.method, "path": seen.path[:MAX_PATH],
                 "client_address": address, "reasons": [r.value for r in decision.reasons]},
    )


def refusal_message(reasons: Iterable[DenialReason]) -> str:
    """The refusal as a person reads it, in Japanese and English."""
    reasons = tuple(reasons)
    ja = " ".join(r.message("ja") for r in reasons)
    en = " ".join(r.message("en") for r in reasons)
    return f"この場所からは利用できません: {ja}\nRefused from this address: {en}"


class ClientCheck:
    """The web services' hook (`onsite_base.web.service.HubServiceHandler`): names the request's
    client for the ledger, then judges it; the refusal text (ja/en) or None."""

    def __init__(self, policy: AddressPolicy, service: str) -> None:
        self.policy = policy
        self.service = service
        self.trusted_proxies = policy.proxies

    def __call__(self, handler: Any, username: str) -> str | None:
        request = handler.request
        address = client_address(request, self.trusted_proxies)
        audit.set_client(audit.Client(address))
        if getattr(handler, "_token_authenticated", False) and is_direct(request):
            return None  # a process on this host with its Hub token (the outbox forwarder), not a browser
        decision = judge_request(handler.settings["session_factory"], self.policy, username, address,
                                 RequestSeen(self.service, request.method, request.path))
        return None if decision.allowed else refusal_message(decision.reasons)


def service_check(config: Config, service: str) -> ClientCheck:
    """The `ClientCheck` of the web service `service`, its AddressPolicy from `config`."""
    return ClientCheck(AddressPolicy(config=config), service)
