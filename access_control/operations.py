"""The operations view's reads: every facility at a glance, one facility in full, usage by month.

Plain dataclasses out, a fixed number of queries in (one a panel, whatever the
number of facilities, terminals or sessions: no query per row). Sessions,
refusals and when terminals were last seen come from the usage projection of
the ledger (`access_control.usage`); the caller runs `usage.catch_up` first.
"Now" is an argument, so that a page and its JSON refresh agree and tests can
pin it.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session, lazyload
from traitlets import Float, Int

from access_control.entry import OpeningInterval
from access_control.models import Booking, Facility, Person, Terminal, is_override_network
from access_control.usage import TerminalSeen, UsageRefusal, UsageSession
from onsite_base.config import Section

REFUSAL_WINDOW = timedelta(hours=1)
"""How far back the view lists entry refusals."""
USAGE_MONTHS = 12
"""How many months (this one included) the usage statistics show by default."""


class OperationsView(Section):
    """The operations view of the admin pages (every facility at a glance)."""

    terminal_silent_after_hours = Float(
        72.0,
        min=0.1,
        help="""After how many hours without an entry decision or a session start from a terminal
        the operations view flags it as silent (a terminal never seen at all is flagged as never
        seen). Default 72 hours: a weekend and a day. Lower it where terminals are used every
        day; it only changes what is flagged, never who may enter.""",
    ).tag(config=True, env="ONSITE_TERMINAL_SILENT_AFTER_HOURS")

    refresh_seconds = Int(
        30,
        min=5,
        help="""How often (seconds) an open operations page fetches its figures again
        (`operations.json`) and updates them in place, without reloading the page.""",
    ).tag(config=True, env="ONSITE_OPERATIONS_REFRESH_SECONDS")

    catch_up_seconds = Float(
        10.0,
        min=0.5,
        help="""How often (seconds) the admin service folds new ledger events (sessions, entry
        refusals, terminals seen) into the usage tables the operations view reads. It folds once
        at start and then on this timer, in a worker thread: pages never wait for it and show
        the time their figures are as of. Lower it for fresher figures; each run reads only the
        events that are new.""",
    ).tag(config=True, env="ONSITE_USAGE_CATCH_UP_SECONDS")

    @property
    def silent_after(self) -> timedelta:
        return timedelta(hours=self.terminal_silent_after_hours)


# ---------------------------------------------------------------- what the view shows


@dataclass(frozen=True)
class Refusal:
    seq: int
    at: datetime
    username: str
    facility_id: int | None
    client_address: str
    stage: str
    reasons: tuple[str, ...]
    """DenialReason codes (access_control.entry)."""


@dataclass(frozen=True)
class TerminalState:
    address: str
    label: str
    facility_id: int
    last_seen: datetime | None
    silent: bool
    """Seen, but not for longer than OperationsView.terminal_silent_after_hours."""
    override: bool
    """A network broader than /24 or /56 (registered with an explicit override)."""

    @property
    def never_seen(self) -> bool:
        return self.last_seen is None


@dataclass(frozen=True)
class LiveUse:
    username: str
    facility_id: int | None
    terminal: str | None
    client_address: str
    started_at: datetime


@dataclass(frozen=True)
class BookedSeat:
    username: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class FacilityState:
    id: int
    name: str
    timezone: str
    local_now: datetime
    open_now: bool
    emergency_reason: str | None
    """Set while the facility is closed for an emergency."""
    closed_note: str | None
    """Today is a closed day (holiday) with this note."""
    seats: int | None
    booked_today: int
    """People with a booking overlapping today (the facility's day)."""
    in_use: int
    """Live sessions started from its terminals."""
    refusals_last_hour: int
    terminals: int
    never_seen: int
    silent: int
    overrides: int


@dataclass(frozen=True)
class Overview:
    now: datetime
    facilities: tuple[FacilityState, ...]
    refusals: tuple[Refusal, ...]
    """The last hour's refusals everywhere, newest first (facility None: no registered terminal)."""
    live_elsewhere: int
    """Live sessions from an address no terminal matched when they started."""


@dataclass(frozen=True)
class FacilityView:
    now: datetime
    state: FacilityState
    terminals: tuple[TerminalState, ...]
    live: tuple[LiveUse, ...]
    refusals: tuple[Refusal, ...]
    booked: tuple[BookedSeat, ...]


@dataclass
class MonthUsage:
    """One facility's month (in the facility's own time zone)."""

    facility_id: int
    month: str
    """YYYY-MM"""
    sessions: int = 0
    hours: float = 0.0
    """Sessions' lengths, each counted in the month it started; a live session up to now."""
    researchers: int = 0
    """Distinct people with a session."""


# ---------------------------------------------------------------- queries


def facility_open(facility: Facility, now: datetime) -> tuple[bool, str | None]:
    """(open now, the closed day's note if today is one), by the facility's hours, closed days and emergency."""
    if facility.emergency_closed_at is not None:
        return False, None
    local = now.astimezone(ZoneInfo(facility.timezone))
    for closure in facility.closures:
        if closure.day == local.date():
            return False, closure.note
    intervals = [OpeningInterval(h.weekday, h.opens, h.closes) for h in facility.hours]
    return (not intervals or any(i.contains(local) for i in intervals)), None


def local_day(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """Today in `zone`: [its midnight, the next midnight)."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    return (datetime.combine(today, datetime.min.time(), tz),
            datetime.combine(today + timedelta(days=1), datetime.min.time(), tz))


def load_facilities(session: Session, facility_id: int | None = None, names: frozenset[str] | None = None) -> list[Facility]:
    """Every facility, or the one numbered `facility_id`, among those named `names` (None: any)."""
    query = select(Facility).options(lazyload(Facility.terminals)).order_by(Facility.name)
    if facility_id is not None:
        query = query.where(Facility.id == facility_id)
    if names is not None:
        query = query.where(Facility.name.in_(names))
    return list(session.scalars(query))


def bookings_today(session: Session, facilities: list[Facility], now: datetime) -> dict[int, list[BookedSeat]]:
    """Each facility's bookings overlapping its own today: one query over the widest window, then per zone."""
    days = {f.id: local_day(now, f.timezone) for f in facilities}
    if not days:
        return {}
    rows = session.execute(
        select(Booking.facility_id, Person.username, Booking.starts_at, Booking.ends_at)
        .join(Person, Person.id == Booking.person_id)
        .where(Booking.facility_id.in_(list(days)), Booking.cancelled_at.is_(None),
               Booking.starts_at < max(end for _, end in days.values()),
               Booking.ends_at > min(start for start, _ in days.values()))
        .order_by(Booking.starts_at)
    ).all()
    booked: dict[int, list[BookedSeat]] = defaultdict(list)
    for facility_id, username, starts, ends in rows:
        start, end = days[facility_id]
        if starts < end and ends > start:
            booked[facility_id].append(BookedSeat(username, starts, ends))
    return booked


def live_sessions(session: Session, facility_id: int | None = None, among: list[int] | None = None) -> list[LiveUse]:
    """Live sessions, of one facility or of those `among` (None: everywhere, also from no terminal)."""
    query = select(UsageSession).where(UsageSession.ended_at.is_(None)).order_by(UsageSession.started_at)
    if facility_id is not None:
        query = query.where(UsageSession.facility_id == facility_id)
    if among is not None:
        query = query.where(UsageSession.facility_id.in_(among))
    return [LiveUse(s.username, s.facility_id, s.terminal, s.client_address, s.started_at) for s in session.scalars(query)]


def recent_refusals(session: Session, now: datetime, facility_id: int | None = None,
                    among: list[int] | None = None) -> list[Refusal]:
    query = select(UsageRefusal).where(UsageRefusal.created_at >= now - REFUSAL_WINDOW).order_by(UsageRefusal.seq.desc())
    if facility_id is not None:
        query = query.where(UsageRefusal.facility_id == facility_id)
    if among is not None:
        query = query.where(UsageRefusal.facility_id.in_(among))
    return [Refusal(r.seq, r.created_at, r.username, r.facility_id, r.client_address, r.stage, tuple(json.loads(r.reasons)))
            for r in session.scalars(query)]


def terminal_states(session: Session, now: datetime, silent_after: timedelta, facility_id: int | None = None,
                    among: list[int] | None = None) -> list[TerminalState]:
    query = (select(Terminal.address, Terminal.label, Terminal.facility_id, TerminalSeen.last_seen_at)
             .outerjoin(TerminalSeen, TerminalSeen.terminal == Terminal.address).order_by(Terminal.address))
    if facility_id is not None:
        query = query.where(Terminal.facility_id == facility_id)
    if among is not None:
        query = query.where(Terminal.facility_id.in_(among))
    return [TerminalState(address, label, fid, seen, seen is not None and now - seen > silent_after, is_override_network(address))
            for address, label, fid, seen in session.execute(query)]


def facility_states(facilities: Iterable[Facility], now: datetime, booked: dict[int, list[BookedSeat]],
                    live: list[LiveUse], refusals: list[Refusal], terminals: list[TerminalState]) -> list[FacilityState]:
    states = []
    for f in facilities:
        open_now, note = facility_open(f, now)
        mine = [t for t in terminals if t.facility_id == f.id]
        states.append(FacilityState(
            id=f.id, name=f.name, timezone=f.timezone, local_now=now.astimezone(ZoneInfo(f.timezone)), open_now=open_now,
            emergency_reason=(f.emergency_reason or "") if f.emergency_closed_at is not None else None, closed_note=note,
            seats=f.seats, booked_today=len({b.username for b in booked.get(f.id, [])}),
            in_use=sum(1 for s in live if s.facility_id == f.id),
            refusals_last_hour=sum(1 for r in refusals if r.facility_id == f.id),
            terminals=len(mine), never_seen=sum(t.never_seen for t in mine), silent=sum(t.silent for t in mine),
            overrides=sum(t.override for t in mine),
        ))
    return states


def overview(session: Session, now: datetime, silent_after: timedelta, names: frozenset[str] | None = None) -> Overview:
    """Every facility at a glance; only those named `names` (a facility manager's), with their sessions and
    refusals only (none from no terminal), when given."""
    facilities = load_facilities(session, names=names)
    among = None if names is None else [f.id for f in facilities]
    live = live_sessions(session, among=among)
    refusals = recent_refusals(session, now, among=among)
    states = facility_states(facilities, now, bookings_today(session, facilities, now), live, refusals,
                             terminal_states(session, now, silent_after, among=among))
    return Overview(now, tuple(states), tuple(refusals), sum(1 for s in live if s.facility_id is None))


def facility_view(session: Session, facility_id: int, now: datetime, silent_after: timedelta,
                  names: frozenset[str] | None = None) -> FacilityView | None:
    """One facility in full; None when there is no such facility (among those named `names`, when given)."""
    facilities = load_facilities(session, facility_id, names)
    if not facilities:
        return None
    booked = bookings_today(session, facilities, now)
    live = live_sessions(session, facility_id)
    refusals = recent_refusals(session, now, facility_id)
    terminals = terminal_states(session, now, silent_after, facility_id)
    [state] = facility_states(facilities, now, booked, live, refusals, terminals)
    return FacilityView(now, state, tuple(terminals), tuple(live), tuple(refusals), tuple(booked.get(facility_id, [])))


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m")


def first_month(now: datetime, months: int) -> date:
    """The first day of the month `months - 1` before now's (UTC) month."""
    year, month = divmod(now.year * 12 + now.month - 1 - (months - 1), 12)
    return date(year, month + 1, 1)


def monthly_usage(session: Session, now: datetime, *, months: int = USAGE_MONTHS,
                  facility_id: int | None = None) -> dict[tuple[int, str], MonthUsage]:
    """Sessions, hours and distinct researchers by (facility, month), the last `months` months: one GROUP BY over
    the projection (each session's month in its facility's zone and its length are folded in with it), and the
    live sessions' time so far added to theirs."""
    conditions = [UsageSession.facility_id.is_not(None), UsageSession.month >= first_month(now, months).strftime("%Y-%m")]
    if facility_id is not None:
        conditions.append(UsageSession.facility_id == facility_id)
    grouped = session.execute(
        select(UsageSession.facility_id, UsageSession.month, func.count(), func.coalesce(func.sum(UsageSession.seconds), 0.0),
               func.count(distinct(UsageSession.username)))
        .where(*conditions).group_by(UsageSession.facility_id, UsageSession.month)
    )
    usage = {(fid, month): MonthUsage(fid, month, sessions, seconds / 3600, researchers)
             for fid, month, sessions, seconds, researchers in grouped}
    live = session.execute(select(UsageSession.facility_id, UsageSession.month, UsageSession.started_at)
                           .where(*conditions, UsageSession.ended_at.is_(None)))
    for fid, month, started in live:
        usage[(fid, month)].hours += (now - started).total_seconds() / 3600
    return usage


def months_between(now: datetime, months: int = USAGE_MONTHS) -> list[str]:
    """The last `months` months, oldest first, as YYYY-MM."""
    start = first_month(now, months)
    return [f"{(start.year * 12 + start.month - 1 + i) // 12}-{(start.month - 1 + i) % 12 + 1:02d}" for i in range(months)]
