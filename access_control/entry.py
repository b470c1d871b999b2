"""The entry decision: may this person enter from this address now?

`load_entry_facts` takes a frozen snapshot of the policy (person, roles,
projects, accreditations, bookings, terminals with their facility's time zone,
opening hours, closed days, booking and accreditation rules); `decide_entry`
is a pure function of that snapshot and the time, returning every reason that
applies (so a refused researcher learns everything to fix at once);
`record_entry` writes the decision to the ledger either way.
"""
from __future__ import annotations

import enum
import functools
import ipaddress
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session, lazyload

from access_control import audit
from access_control.accounts import canonical_username, is_locked_out
from access_control.enums import AuditEventType, Outcome, Role
from access_control.models import (
    Accreditation, Booking, Facility, FacilityClosure, Membership, OpeningHours, Person, PersonRole, Project, ProjectStatus, Terminal,
)
from access_control.errors import InputInvalid
from onsite_base.netaddr import parse_client_address
from onsite_base.times import DEFAULT_TIMEZONE

MAX_SHOWN_NAME = 64
"""How much of an invalid user name or address is kept in facts and the ledger."""


def shown_name(raw: str) -> str:
    """An invalid user name as the ledger may hold it: NFKC, control and unencodable
    characters escaped (PostgreSQL text holds no NUL, UTF-8 no lone surrogate), bounded."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch).startswith("C") else ch for ch in text)[:MAX_SHOWN_NAME]


ROLES_WITHOUT_PROJECT = frozenset({Role.REVIEWER, Role.ADMINISTRATOR, Role.FACILITY_MANAGER})
"""Roles that may enter without an active project (they work on others' outputs)."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network



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
    ACCREDITATION_MISSING = (
        "ACCREDITATION_MISSING",
        "この施設の利用に必要な認定(研修修了など)がありません。管理者に登録を依頼してください。",
        "You hold no accreditation of the kind this facility requires (e.g. the completed training). Ask the administrator.",
    )
    ACCREDITATION_EXPIRED = (
        "ACCREDITATION_EXPIRED",
        "この施設の利用に必要な認定の有効期限が切れています。更新してください。",
        "Your accreditation of the kind this facility requires has expired. Renew it.",
    )
    FACILITY_CLOSED = (
        "FACILITY_CLOSED",
        "現在は施設の利用時間外です(休館日または開館時間外)。",
        "The facility is closed now (outside its opening hours, or a closed day).",
    )
    EMERGENCY_CLOSURE = (
        "EMERGENCY_CLOSURE",
        "施設は臨時休館中です(緊急閉鎖)。施設の案内に従ってください。",
        "The facility is closed for an emergency. Follow the facility's instructions.",
    )
    NO_BOOKING = (
        "NO_BOOKING",
        "この施設は予約制です。現在の時間帯の予約がありません。",
        "This facility needs a booking, and you have none for the present time.",
    )
    NOT_STAFF_ADDRESS = (
        "NOT_STAFF_ADDRESS",
        "審査者・管理者・施設管理者の業務は、職員用ネットワークまたは施設の端末からのみ行えます。",
        "Reviewers, administrators and facility managers can work only from a staff network or a facility terminal.",
    )
    STORE_UNAVAILABLE = (
        "STORE_UNAVAILABLE",
        "利用資格を確認できないため、受け付けられません。しばらくしてから再度お試しください。",
        "Your access cannot be checked right now (the policy store did not answer), so this is refused. "
        "Try again in a moment.",
    )
    DIRECTORY_UNAVAILABLE = (
        "DIRECTORY_UNAVAILABLE",
        "利用者ディレクトリ(LDAP)に接続できないため、ログインできません。しばらくしてから再度お試しください。続く場合は管理者に連絡してください。",
        "The user directory (LDAP) is unavailable, so you cannot log in now. Try again in a few minutes; "
        "if it persists, tell the administrator.",
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


MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class OpeningInterval:
    """Open on `weekday` (0 Monday) from minute `opens` (inclusive) to `closes` (exclusive) after local midnight."""

    weekday: int
    opens: int
    closes: int

    def contains(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return local.weekday() == self.weekday and self.opens <= minute < self.closes


@dataclass(frozen=True)
class TerminalFacts:
    network: IPNetwork
    label: str
    facility: str
    timezone: str = DEFAULT_TIMEZONE
    hours: tuple[OpeningInterval, ...] = ()
    """The facility's weekly opening hours; empty: always open."""
    closed_days: frozenset[date] = frozenset()
    booking_required: bool = False
    accreditation_kind: str | None = None
    """Kind of accreditation researchers need at this facility; None: none."""
    emergency_closed: bool = False
    """Closed for an emergency until a manager reopens it, whatever the hours."""

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        if self.emergency_closed or local.date() in self.closed_days:
            return False
        return not self.hours or any(interval.contains(local) for interval in self.hours)


@dataclass(frozen=True)
class AccreditationFacts:
    kind: str
    issued: date
    expiry: date
    """Last valid day (inclusive), read in the facility's time zone."""


@dataclass(frozen=True)
class BookingFacts:
    facility: str
    starts_at: datetime
    ends_at: datetime
    """Exclusive: a booking ending at 12:00 no longer covers 12:00."""

    def covers(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


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
    accreditations: tuple[AccreditationFacts, ...] = ()
    """The person's accreditations that are not revoked (any kind, any dates)."""
    bookings: tuple[BookingFacts, ...] = ()
    """The person's bookings that are not cancelled (those ended before the snapshot may be left out)."""


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


def match_terminal(terminals: tuple[TerminalFacts, ...], client_address: str) -> TerminalFacts | None:
    address = parse_client_address(client_address)
    if address is None:
        return None
    containing = [t for t in terminals if t.network.version == address.version and address in t.network]
    return max(containing, key=lambda t: t.network.prefixlen, default=None)


class TerminalIndex:
    """`match_terminal` for many addresses against one network: a lookup per prefix length in use (most specific
    first) of the address's masked integer, instead of a scan of every terminal (the usage projection folds a
    year of session starts)."""

    def __init__(self, terminals: tuple[TerminalFacts, ...]) -> None:
        self.by_length: dict[tuple[int, int], dict[int, TerminalFacts]] = {}
        for t in terminals:
            self.by_length.setdefault((t.network.version, t.network.prefixlen), {})[int(t.network.network_address)] = t
        bits = {4: 32, 6: 128}
        self.lengths = [(version, length, ((1 << length) - 1) << (bits[version] - length))
                        for version, length in sorted(self.by_length, key=lambda key: -key[1])]

    def match(self, client_address: str) -> TerminalFacts | None:
        address = parse_client_address(client_address)
        if address is None:
            return None
        number = int(address)
        for version, length, mask in self.lengths:
            if version == address.version and (found := self.by_length[version, length].get(number & mask)) is not None:
                return found
        return None


def decide_entry(facts: EntryFacts, now: datetime) -> EntryDecision:
    """Allow or deny entry at `now` (timezone-aware), with every reason that applies."""
    if now.tzinfo is None:
        raise ValueError("decide_entry needs a timezone-aware time")
    terminal = match_terminal(facts.terminals, facts.client_address)
    day = now.astimezone(ZoneInfo(terminal.timezone if terminal else DEFAULT_TIMEZONE)).date()
    active = tuple(sorted(p.id for p in facts.projects if p.is_active_on(day)))
    reasons = account_reasons(facts, now)
    if facts.known and facts.roles and not (facts.roles & ROLES_WITHOUT_PROJECT) and not active:
        reasons.append(DenialReason.NO_ACTIVE_PROJECT)
    if terminal is None:
        reasons.append(DenialReason.TERMINAL_NOT_REGISTERED)
    else:
        reasons.extend(facility_reasons(facts, terminal, now, day))
    return EntryDecision(allowed=not reasons, reasons=tuple(reasons), terminal=terminal, active_projects=active, day=day)


def account_reasons(facts: EntryFacts, now: datetime) -> list[DenialReason]:
    """What the account itself stands in the way of, wherever the person is: unknown, disabled, locked, no role."""
    if not facts.known:
        return [DenialReason.ACCOUNT_UNKNOWN]
    reasons = []
    if facts.disabled:
        reasons.append(DenialReason.ACCOUNT_DISABLED)
    if is_locked_out(facts.locked_until, now):
        reasons.append(DenialReason.ACCOUNT_LOCKED)
    if not facts.roles:
        reasons.append(DenialReason.NO_ROLE)
    return reasons


def accreditation_reason(accreditations: tuple[AccreditationFacts, ...], kind: str, day: date) -> DenialReason | None:
    """None when an accreditation of `kind` is valid on `day`; EXPIRED when one of that kind
    has ended and none is valid; MISSING otherwise (none at all, or only future ones)."""
    of_kind = [a for a in accreditations if a.kind == kind]
    if any(a.issued <= day <= a.expiry for a in of_kind):
        return None
    if any(a.expiry < day for a in of_kind):
        return DenialReason.ACCREDITATION_EXPIRED
    return DenialReason.ACCREDITATION_MISSING


def facility_reasons(facts: EntryFacts, terminal: TerminalFacts, now: datetime, day: date) -> list[DenialReason]:
    """What the facility of the terminal asks of a known person: accreditation (researchers),
    opening hours and a booking covering `now` (everyone entering there)."""
    reasons: list[DenialReason] = []
    if not facts.known:
        return reasons
    if terminal.accreditation_kind is not None and Role.RESEARCHER in facts.roles:
        missing = accreditation_reason(facts.accreditations, terminal.accreditation_kind, day)
        if missing is not None:
            reasons.append(missing)
    if terminal.emergency_closed:
        reasons.append(DenialReason.EMERGENCY_CLOSURE)
    elif not terminal.is_open(now):
        reasons.append(DenialReason.FACILITY_CLOSED)
    if terminal.booking_required and not any(b.facility == terminal.facility and b.covers(now) for b in facts.bookings):
        reasons.append(DenialReason.NO_BOOKING)
    return reasons


@functools.lru_cache(maxsize=65536)
def terminal_network(address: str) -> IPNetwork:
    """A stored terminal network (normalised CIDR text), parsed once per process: parsing is pure, and every
    decision reads every terminal."""
    return ipaddress.ip_network(address)


TERMINAL_CACHE_SIZE = 8
"""Terminal snapshots kept per process (one a store state; a process normally uses one store)."""
_terminal_cache: dict[tuple[str | None, ...], tuple[TerminalFacts, ...]] = {}


def text_field(column: Any) -> Any:
    """A free-text column as `<length>:<text>` (NULL as `-`), so that no text can imitate its neighbours."""
    return case((column.is_(None), "-"), else_=cast(func.length(column), String) + ":" + column)


def terminal_state_query() -> Any:
    """Everything `load_terminals` reads, as four strings made by the database in one round trip: equal
    strings, equal terminals. Row order is the scan's: a changed order only costs a reload."""
    def joined(*parts: Any) -> Any:
        return func.aggregate_strings(functools.reduce(lambda a, b: a + "|" + b, parts), ";")

    return select(
        select(joined(cast(Terminal.id, String), cast(Terminal.facility_id, String), Terminal.address,
                      text_field(Terminal.label))).scalar_subquery(),
        select(joined(cast(Facility.id, String), text_field(Facility.name), text_field(Facility.timezone),
                      cast(Facility.booking_required, String), text_field(Facility.accreditation_kind),
                      case((Facility.emergency_closed_at.is_(None), "open"), else_="closed"))).scalar_subquery(),
        select(joined(cast(OpeningHours.facility_id, String), cast(OpeningHours.weekday, String),
                      cast(OpeningHours.opens, String), cast(OpeningHours.closes, String))).scalar_subquery(),
        select(joined(cast(FacilityClosure.facility_id, String), cast(FacilityClosure.day, String))).scalar_subquery(),
    )


def load_terminals(session: Session) -> tuple[TerminalFacts, ...]:
    """Every registered terminal with its facility's facts. Built once per state of the terminal, facility, hours
    and closure tables: every decision asks the database for that state (one query, its text computed there)
    and rebuilds only when it changed, so a retired terminal, a new closed day or an emergency closure counts
    from the next decision on, while an unchanged network of 1,000 terminals costs one round trip."""
    state = tuple(session.execute(terminal_state_query()).one())
    cached = _terminal_cache.get(state)
    if cached is None:
        cached = read_terminals(session)
        if len(_terminal_cache) >= TERMINAL_CACHE_SIZE:
            _terminal_cache.clear()
        _terminal_cache[state] = cached
    return cached


def read_terminals(session: Session) -> tuple[TerminalFacts, ...]:
    # Each facility's facts once, and the terminals as plain rows: an ORM object and the facility's hours a
    # terminal cost ~0.2 ms each (bench_operations).
    facilities = session.scalars(select(Facility).options(lazyload(Facility.terminals))).all()
    shared = {
        f.id: {
            "facility": f.name,
            "timezone": f.timezone or DEFAULT_TIMEZONE,
            "hours": tuple(OpeningInterval(h.weekday, h.opens, h.closes) for h in f.hours),
            "closed_days": frozenset(c.day for c in f.closures),
            "booking_required": f.booking_required,
            "accreditation_kind": f.accreditation_kind,
            "emergency_closed": f.emergency_closed_at is not None,
        }
        for f in facilities
    }
    rows = session.execute(select(Terminal.address, Terminal.label, Terminal.facility_id)).all()
    return tuple(TerminalFacts(terminal_network(address), label, **shared[facility]) for address, label, facility in rows)


def load_entry_facts(session: Session, username: str, client_address: str, *, as_of: datetime | None = None) -> EntryFacts:
    """Snapshot the policy for one entry decision. `username` is canonicalised;
    a name that is not valid at all is simply unknown. Bookings that ended
    before `as_of` (default: now) are left out: decide for `as_of` or later."""
    terminals = load_terminals(session)
    try:
        name = canonical_username(username)
    except InputInvalid:  # not a name anyone can have; keep a bounded, normalised form for the ledger
        return EntryFacts(username=shown_name(username), client_address=client_address, known=False, terminals=terminals)
    # Plain columns, one query a table: no ORM objects on the path every login and re-check takes.
    person = session.execute(
        select(Person.id, Person.disabled, Person.locked_until, PersonRole.role)
        .outerjoin(PersonRole, PersonRole.person_id == Person.id).where(Person.username == name)
    ).all()
    if not person:
        return EntryFacts(username=name, client_address=client_address, known=False, terminals=terminals)
    person_id, disabled, locked_until, _ = person[0]
    projects = session.execute(
        select(Project.id, Project.status, Project.start_date, Project.end_date)
        .join(Membership, Membership.project_id == Project.id).where(Membership.person_id == person_id)
    ).all()
    accreditations = session.execute(
        select(Accreditation.kind, Accreditation.issued, Accreditation.expiry)
        .where(Accreditation.person_id == person_id, Accreditation.revoked_at.is_(None))
    ).all()
    bookings = session.execute(
        select(Booking.starts_at, Booking.ends_at, Facility.name)
        .join(Facility, Booking.facility_id == Facility.id)
        .where(Booking.person_id == person_id, Booking.cancelled_at.is_(None), Booking.ends_at > (as_of or datetime.now(timezone.utc)))
    ).all()
    return EntryFacts(
        username=name,
        client_address=client_address,
        known=True,
        disabled=disabled,
        locked_until=locked_until,
        roles=frozenset(role for *_, role in person if role is not None),
        projects=tuple(ProjectFacts(*p) for p in projects),
        terminals=terminals,
        accreditations=tuple(AccreditationFacts(*a) for a in accreditations),
        bookings=tuple(BookingFacts(facility, starts, ends) for starts, ends, facility in bookings),
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
