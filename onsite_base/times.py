"""Times as people read and type them: in the facility's time zone, with the zone shown.

One rule for every page and command (review and admin pages, `onsite admin …`,
`onsite review …`, `onsite audit list`): a moment is shown in the zone of the
setting `Settings.timezone` (a facility's own bookings in that facility's
zone), as "2026-12-07 14:03 JST"; a time typed without an offset is read in
the same zone. Stores keep UTC; machine output (JSON, the ledger's export)
gives ISO 8601 with the offset.
"""
from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Tokyo"
SHOWN = "%Y-%m-%d %H:%M %Z"
SHOWN_SECONDS = "%Y-%m-%d %H:%M:%S %Z"


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (Asia/Tokyo); ValueError naming it when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as {DEFAULT_TIMEZONE}") from None


def shown(value: datetime | None, zone_name: str = DEFAULT_TIMEZONE, *, seconds: bool = False) -> str:
    """`value` (timezone-aware) in the zone `zone_name`, with the zone's abbreviation: '2026-12-07 14:03 JST'
    ('' for None). A zone without an abbreviation shows its offset ('+07')."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("a time to show must be timezone-aware (stores give UTC)")
    return value.astimezone(zone(zone_name)).strftime(SHOWN_SECONDS if seconds else SHOWN)


def typed(value: datetime, zone_name: str = DEFAULT_TIMEZONE) -> datetime:
    """A time as typed: without an offset it is a time in `zone_name` (as shown); with one, as written."""
    return value if value.tzinfo else value.replace(tzinfo=zone(zone_name))


def midnight(day: date, zone_name: str = DEFAULT_TIMEZONE) -> datetime:
    """The start of `day` in `zone_name`: what a day typed as a filter (--since 2026-12-01) means."""
    return datetime.combine(day, time(), zone(zone_name))
