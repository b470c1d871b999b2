"""The entry decision: may this person enter from this address now?

`load_entry_facts` takes a frozen snapshot of the policy; `decide_entry` is a
pure function of that snapshot and the time, returning every reason that
applies (so a refused researcher learns everything to fix at once);
`record_entry` writes the decision to the ledger either way.
"""
from __future__ import annotations

import enum
import ipaddress
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control import audit
from access_control.enums import AuditEventType, Outcome, Role
from access_control.models import Facility, Membership, Person, Project, ProjectStatus, Terminal

DEFAULT_TIMEZONE = "Asia/Tokyo"
MAX_SHOWN_NAME = 64
"""How much of an invalid user name or address is kept in facts and the ledger."""


def shown_name(raw: str) -> str:
    """An invalid user name as the ledger may hold it: NFKC, control and unencodable
    characters escaped (PostgreSQL text holds no NUL, UTF-8 no lone surrogate), bounded."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch).startswith("C") else ch for ch in text)[:MAX_SHOWN_NAME]


ROLES_WITHOUT_PROJECT = frozenset({Role.REVIEWER, Role.ADMINISTRATOR})
"""Roles that may enter without an active project (they work on others' outputs)."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DenialReason(enum.Enum):
    """Why entry (or a login) is refused; each carries its message in Japanese and English."""

    def __new__(cls, value: str, ja: str, en: str) -> DenialReason:
        member = object.__new__(cls)
        member._value_ = value
        member.ja = ja  # type: ignore[attr-defined]
        member.en = en  # type: ignore[attr-defined]
        return member

    BAD_CREDENTIALS = (
        "BAD_CREDENTIALS",
        "ユーザー名またはパスワードが正しくありません。",
        "Wrong user name or password.",
    )
    ACCOUNT_UNKNOWN = (
        "ACCOUNT_UNKNOWN",
        "このアカウントは登録されていません。",
        "This account is not registered.",
    )
    ACCOUNT_DISABLED = (
        "ACCOUNT_DISABLED",
        "このアカウントは無効化されています。管理者に連絡してください。",
        "This account is disabled. Contact the administrator.",
    )
    ACCOUNT_LOCKED = (
        "ACCOUNT_LOCKED",
        "ログインの失敗が続いたため、アカウントは一時的にロックされています。しばらく待つか、管理者に解除を依頼してください。",
        "This account is locked after repeated failed logins. Wait and retry, or ask the administrator to unlock it.",
    )
    NO_ROLE = (
        "NO_ROLE",
        "このアカウントには役割(研究者・審査者・管理者)が割り当てられていません。",
        "This account has no role (researcher, reviewer or administrator).",
    )
    NO_ACTIVE_PROJECT = (
        "NO_ACTIVE_PROJECT",
        "本日有効な利用プロジェクトがありません(期間外、停止中または終了)。",
        "You have no project that is active today (outside its dates, suspended or closed).",
    )
    TERMINAL_NOT_REGISTERED = (
        "TERMINAL_NOT_REGISTERED",
        "この端末は利用施設の端末として登録されていません。",
        "This terminal is not registered at any facility.",
    )

    def message(self, lang: str = "en") -> str:
        return self.ja if lang == "ja" else self.en  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ProjectFacts:
    id: str
    status: ProjectStatus
    start_date: date
    end_date: date

    def is_active_on(self, day: date) -> bool:
        return self.status is ProjectStatus.ACTIVE and self.start_date <= day <= self.end_date


@dataclass(frozen=True)
class TerminalFacts:
    network: IPNetwork
    label: str
    facility: str
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class EntryFacts:
    """Everything the decision needs, read in one go; no database access after this."""

    username: str
    client_address: str
    known: bool
    disabled: bool = False
    locked_until: datetime | None = None
    roles: frozenset[Role] = frozenset()
    projects: tuple[ProjectFacts, ...] = ()
    terminals: tuple[TerminalFacts, ...] = ()


@dataclass(frozen=True)
class EntryDecision:
    allowed: bool
    reasons: tuple[DenialReason, ...]
    terminal: TerminalFacts | None = None
    """The most specific registered terminal containing the client address."""
    active_projects: tuple[str, ...] = ()
    """Projects active on the facility's date (what the session may work on)."""
    day: date | None = None
    """The date in the facility's time zone the decision was taken for."""

    @property
    def facility(self) -> str | None:
        return self.terminal.facility if self.terminal else None

    def messages(self, lang: str = "en") -> list[str]:
        return [r.message(lang) for r in self.reasons]


def parse_client_address(raw: str) -> IPAddress | None:
    """An IP address from what the proxy reports ('::ffff:10.0.0.1', '[::1]', 'fe80::1%eth0')."""
    text = raw.strip().strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def match_terminal(terminals: tuple[TerminalFacts, ...], client_address: str) -> TerminalFacts | None:
    address = parse_client_address(client_address)
    if address is None:
        return None
    containing = [t for t in terminals if t.network.version == address.version and address in t.network]
    return max(containing, key=lambda t: t.network.prefixlen, default=None)


def decide_entry(facts: EntryFacts, now: datetime) -> EntryDecision:
    """Allow or deny entry at `now` (timezone-aware), with every reason that applies."""
    if now.tzinfo is None:
        raise ValueError("decide_entry needs a timezone-aware time")
    reasons: list[DenialReason] = []
    terminal = match_terminal(facts.terminals, facts.client_address)
    day = now.astimezone(ZoneInfo(terminal.timezone if terminal else DEFAULT_TIMEZONE)).date()
    active = tuple(sorted(p.id for p in facts.projects if p.is_active_on(day)))
    if not facts.known:
        reasons.append(DenialReason.ACCOUNT_UNKNOWN)
    else:
        if facts.disabled:
            reasons.append(DenialReason.ACCOUNT_DISABLED)
        if facts.locked_until is not None and facts.locked_until > now:
            reasons.append(DenialReason.ACCOUNT_LOCKED)
        if not facts.roles:
            reasons.append(DenialReason.NO_ROLE)
        elif not (facts.roles & ROLES_WITHOUT_PROJECT) and not active:
            reasons.append(DenialReason.NO_ACTIVE_PROJECT)
    if terminal is None:
        reasons.append(DenialReason.TERMINAL_NOT_REGISTERED)
    return EntryDecision(allowed=not reasons, reasons=tuple(reasons), terminal=terminal, active_projects=active, day=day)


def load_terminals(session: Session) -> tuple[TerminalFacts, ...]:
    rows = session.execute(select(Terminal, Facility).join(Facility, Terminal.facility_id == Facility.id)).all()
    return tuple(
        TerminalFacts(ipaddress.ip_network(t.address), t.label, f.name, f.timezone or DEFAULT_TIMEZONE) for t, f in rows
    )


def load_entry_facts(session: Session, username: str, client_address: str) -> EntryFacts:
    """Snapshot the policy for one entry decision. `username` is canonicalised;
    a name that is not valid at all is simply unknown."""
    from access_control.identity import canonical_username  # identity imports DenialReason from here
    from onsite.errors import UserError

    terminals = load_terminals(session)
    try:
        name = canonical_username(username)
    except UserError:  # not a name anyone can have; keep a bounded, normalised form for the ledger
        return EntryFacts(username=shown_name(username), client_address=client_address, known=False, terminals=terminals)
    person = session.scalar(select(Person).where(Person.username == name))
    if person is None:
        return EntryFacts(username=name, client_address=client_address, known=False, terminals=terminals)
    projects = session.scalars(
        select(Project).join(Membership, Membership.project_id == Project.id).where(Membership.person_id == person.id)
    ).all()
    return EntryFacts(
        username=name,
        client_address=client_address,
        known=True,
        disabled=person.disabled,
        locked_until=person.locked_until,
        roles=frozenset(person.role_set),
        projects=tuple(ProjectFacts(p.id, p.status, p.start_date, p.end_date) for p in projects),
        terminals=terminals,
    )


def record_entry(
    session: Session,
    decision: EntryDecision,
    *,
    username: str,
    client_address: str,
    stage: str = "login",
) -> audit.AuditEvent:
    """Write the decision as an ENTRY_DECIDE audit event (OK or DENIED, with the reasons).
    `stage` says where it was taken: login, spawn or a periodic re-check."""
    details: dict[str, audit.DetailValue] = {
        "stage": stage,
        "client_address": client_address,
        "reasons": [r.value for r in decision.reasons],
        "active_projects": list(decision.active_projects),
    }
    if decision.terminal is not None:
        details["facility"] = decision.terminal.facility
        details["terminal"] = str(decision.terminal.network)
    if decision.day is not None:
        details["day"] = decision.day.isoformat()
    return audit.record(
        session,
        AuditEventType.ENTRY_DECIDE,
        actor=username,
        object=f"person:{username}",
        outcome=Outcome.OK if decision.allowed else Outcome.DENIED,
        details=details,
    )
