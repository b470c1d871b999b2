"""Reading what an administrator types, the same for `onsite admin …` and the admin pages.

Every parser takes the text as typed (a command-line argument or a form
field), reads it after NFKC normalisation (so full-width digits and letters
from a Japanese input method are accepted) and raises `InputInvalid` saying
what to write instead, in Japanese and English.

Changing a field (`onsite admin project change`, `facility change`, the change
forms): a field not given or left empty stays as it is; `-` (CLEAR) clears a
field that may be empty (purpose, legal basis, address, required
accreditation); anything else is the new value.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Collection, Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from access_control.entry import MINUTES_PER_DAY, OpeningInterval
from access_control.enums import Role
from access_control.errors import InputInvalid, Label, RecordNotFound
from access_control.models import OpeningHours, ProjectStatus
from onsite_base import times

CLEAR = "-"
"""Typed as a changed field's value: make the field empty."""
ALWAYS_OPEN = "always"
"""Typed as a facility's opening hours (or left empty): no hours, always open."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_ROW_NUMBER = 2**31 - 1
"""Beyond the id columns' range a number names nothing (PostgreSQL would refuse the query itself)."""
ACCREDITATION_KIND_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
UNUSABLE_NETWORKS = tuple(
    (ipaddress.ip_network(network), kind)
    for network, kind in (
        ("0.0.0.0/8", "range_unspecified"), ("169.254.0.0/16", "range_link_local"), ("224.0.0.0/4", "range_multicast"),
        ("240.0.0.0/4", "range_reserved"), ("::/128", "range_unspecified"), ("fe80::/10", "range_link_local"),
        ("fec0::/10", "range_site_local"), ("ff00::/8", "range_multicast"), ("::ffff:0:0/96", "range_ipv4_mapped"),
    )
)
"""Addresses no client of a terminal can have as the proxy reports it (`onsite_base.netaddr`: zone ids
dropped, IPv4-mapped read as IPv4): a terminal network that includes any of them is refused."""


def normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def parse_change(text: str | None) -> str | None:
    """A changed field: None (not given or empty) leaves it as it is, CLEAR gives '', else the value."""
    if text is None or not normal(text):
        return None
    return "" if normal(text) == CLEAR else text.strip()


def text_field(text: str, what: str, limit: int, *, required: bool = False) -> str:
    """A free-text field (name, title, label, purpose…), stripped, at most `limit` characters; `what` is its
    field_… message key. The same limits on both faces; the stored columns hold at least as much."""
    value = text.strip()
    if required and not value:
        raise InputInvalid("empty", what=Label(what))
    if len(value) > limit:
        raise InputInvalid("too_long", what=Label(what), limit=limit)
    return value


def parse_preset(text: str, known: Collection[str]) -> str:
    """A disclosure-control rule preset by name: one of `known` (the review service's, `sdc.rules.preset_names()`)."""
    name = normal(text)
    if name not in known:
        raise InputInvalid("preset_unknown", text=text, choices=", ".join(sorted(known)))
    return name


def parse_date(text: str | None, what: str, *, required: bool = False) -> date | None:
    """A day, YYYY-MM-DD; empty is None unless `required`. `what` is the field's message key (field_…)."""
    value = normal(text or "")
    if not value:
        if required:
            raise InputInvalid("date_required", what=Label(what))
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputInvalid("date_invalid", what=Label(what), text=text) from None


def parse_time(text: str, what: str) -> datetime:
    """A date-time, 'YYYY-MM-DD HH:MM' or with 'T'; without an offset it stays naive: facility time (see policy.add_booking)."""
    try:
        return datetime.fromisoformat(normal(text))
    except ValueError:
        raise InputInvalid("time_invalid", what=Label(what), text=text) from None


def parse_moment(text: str, what: str, zone_name: str) -> datetime:
    """A moment for filtering the ledger: a day (its midnight) or a date-time, in the zone `zone_name` that
    times are shown in (`Settings.timezone`) unless it has an offset."""
    try:
        value = datetime.fromisoformat(normal(text))
    except ValueError:
        raise InputInvalid("moment_invalid", what=Label(what), text=text) from None
    return times.typed(value, zone_name)


def parse_role(text: str) -> Role:
    """researcher, reviewer or administrator, in any case."""
    try:
        return Role(normal(text).upper())
    except ValueError:
        raise InputInvalid("role_unknown", text=text, choices=", ".join(r.value.lower() for r in Role)) from None


def parse_project_status(text: str) -> ProjectStatus:
    """active, suspended or closed, in any case."""
    try:
        return ProjectStatus(normal(text).upper())
    except ValueError:
        raise InputInvalid("status_unknown", text=text) from None


def parse_row_number(text: str | int, kind: str) -> int:
    """The number of a grant, accreditation or booking (`kind`) as listed; one that cannot exist is unknown."""
    value = normal(str(text))
    if not value.isdigit() or int(value) > MAX_ROW_NUMBER:
        raise RecordNotFound(f"unknown_{kind}", id=text)
    return int(value)


def parse_timezone(name: str) -> str:
    """An IANA time zone name such as Asia/Tokyo."""
    name = normal(name)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputInvalid("timezone_unknown", name=name) from None
    return name


MAX_SEATS = 10_000


def parse_year(text: str) -> int:
    """A calendar year, e.g. 2027."""
    value = normal(text)
    if not re.fullmatch(r"\d{4}", value):
        raise InputInvalid("year_invalid", text=text)
    return int(value)


def parse_seats(text: str) -> int | None:
    """A facility's seats: a whole number 0…MAX_SEATS (0: nobody can book), or '' (cleared with '-'): not limited."""
    value = normal(text)
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_SEATS:
        raise InputInvalid("seats_invalid", text=text, limit=MAX_SEATS)
    return int(value)


def parse_accreditation_kind(kind: str) -> str:
    kind = normal(kind).lower()
    if not ACCREDITATION_KIND_PATTERN.fullmatch(kind):
        raise InputInvalid("accreditation_kind_invalid", kind=kind)
    return kind


def parse_network(text: str, *, registering: bool = True) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A terminal address: an IPv4/IPv6 address or CIDR network, host bits clear, that a client can have
    (no zone id, nothing link-local, multicast, unspecified, reserved or IPv4-mapped, not every address).
    Not `registering` (naming a terminal already stored, to remove it), only the form is checked."""
    value = normal(text)
    if registering and "%" in value:
        raise InputInvalid("network_zone", text=text)
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        try:
            suggestion = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise InputInvalid("network_malformed", text=text, error=str(e)) from None
        raise InputInvalid("network_host_bits", text=text, suggestion=str(suggestion), error=str(e)) from None
    if not registering:
        return network
    if network.prefixlen == 0:
        raise InputInvalid("network_everything", text=text)
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        suggestion = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        raise InputInvalid("network_mapped", text=text, suggestion=str(suggestion.network_address if suggestion.prefixlen == 32 else suggestion))
    for unusable, kind in UNUSABLE_NETWORKS:
        if unusable.version == network.version and unusable.overlaps(network):
            raise InputInvalid("network_unusable", text=text, kind=Label(kind), range=str(unusable))
    return network


# ---------------------------------------------------------------- opening hours


def parse_minute(text: str) -> int:
    """'09:00' -> 540; '24:00' is the end of the day."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", normal(text))
    minute = int(match[1]) * 60 + int(match[2]) if match and int(match[2]) < 60 else -1
    if not 0 <= minute <= MINUTES_PER_DAY:
        raise InputInvalid("time_of_day_invalid", text=text)
    return minute


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_opening_hours(text: str) -> list[OpeningInterval]:
    """A weekly schedule such as 'mon-fri 09:00-17:30, sat 10:00-12:00' (days mon…sun, ranges or
    single days; several intervals a day are separate entries). Empty or 'always': always open."""
    text = normal(text).lower()
    if text == ALWAYS_OPEN:
        return []
    intervals: list[OpeningInterval] = []
    for entry in filter(None, (e.strip() for e in re.split(r"[,;]", text))):
        match = re.fullmatch(r"([a-z]{3})(?:-([a-z]{3}))?\s+(\S+)-(\S+)", entry)
        if match is None or match[1] not in WEEKDAYS or (match[2] and match[2] not in WEEKDAYS):
            raise InputInvalid("hours_not_understood", entry=entry)
        first = WEEKDAYS.index(match[1])
        last = WEEKDAYS.index(match[2]) if match[2] else first
        if last < first:
            raise InputInvalid("hours_backwards", entry=entry)
        opens, closes = parse_minute(match[3]), parse_minute(match[4])
        if closes <= opens:
            raise InputInvalid("hours_closing_first", entry=entry)
        intervals += [OpeningInterval(day, opens, closes) for day in range(first, last + 1)]
    intervals.sort(key=lambda i: (i.weekday, i.opens))
    for before, after in zip(intervals, intervals[1:]):
        if before.weekday == after.weekday and after.opens < before.closes:
            raise InputInvalid("hours_overlap", day=WEEKDAYS[before.weekday], first=format_hours([before]), second=format_hours([after]))
    return intervals


def format_hours(intervals: Iterable[OpeningInterval | OpeningHours]) -> str:
    """The inverse of parse_opening_hours, one entry per day and interval ('' when always open)."""
    return ", ".join(f"{WEEKDAYS[i.weekday]} {format_minute(i.opens)}-{format_minute(i.closes)}" for i in intervals)


def shown_hours(intervals: Iterable[OpeningInterval | OpeningHours]) -> str | Label:
    """Opening hours for a message: the schedule, or 'always open' in the message's language."""
    return format_hours(intervals) or Label("always_open")
