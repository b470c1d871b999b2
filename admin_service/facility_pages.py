"""The facility pages of the admin app: facilities, terminals, bookings with free seats, the entry log and live
sessions — the pages a facility manager uses too, showing and changing only their facilities (`self.scope`,
`access_control.policy.Scope`), with the same policy calls and refusals as `onsite admin`.

    GET  ./facilities      POST ./facilities  list; add (administrators)
    POST ./facilities/change                 address, time zone, booking required, seats (accreditation kind: administrators)
    POST ./facilities/hours                  weekly opening hours
    POST ./facilities/closed                 add or remove a closed day (op=add|remove)
    POST ./facilities/holidays               close on Japan's public holidays of a year
    POST ./facilities/emergency              close now for an emergency, ending the sessions there (op=close), or reopen
    GET  ./terminals       POST ./terminals   list; add (override=yes for a network broader than /24 or /56)
    POST ./terminals/remove
    GET  ./bookings        POST ./bookings    list (ending within the last week or later), free seats per day; add
    POST ./bookings/<n>/cancel
    GET  ./entries                            ENTRY_DECIDE events, filtered, paginated
    GET  ./sessions                           live sessions (Hub API), with the facility each started at
    POST ./sessions/<name>/stop               end one (Hub API), audited SESSION_END

A record of another facility, named in a form or a URL, is refused as one that does not exist, and the attempt
is an ADMIN_ACCESS event (AdminHandler). A facility manager's reads of the entry log and the live sessions are
ADMIN_ACCESS events too (OK, `access_control.admin.record_manager_read`), written before the page is shown.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session
from tornado import web

from access_control import audit, forms, policy
from access_control.accounts import canonical_username
from access_control.admin import close_for_emergency, end_session_in_scope, live_sessions, record_manager_read
from access_control.entry import DEFAULT_TIMEZONE, DenialReason
from access_control.enums import AuditEventType, Outcome
from access_control.errors import Done, InputInvalid, Label, PolicyError
from access_control.hub_api import HubApiUnavailable, HubClient
from access_control.models import AuditEvent
from admin_service.handlers import AdminHandler, Performed
from admin_service.i18n import MESSAGES, translator
from onsite_base import times
from onsite_base.db import read_transaction

ENTRIES_PER_PAGE = 50
SEAT_DAYS = 14
"""How many days of free seats the bookings page shows."""


class FacilityPage(AdminHandler):
    """A page facility managers may use, within their facilities."""

    for_managers = True


# ---------------------------------------------------------------- facilities


class FacilitiesPage(FacilityPage):
    template = "facilities.html"
    form = "facility-add"

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        facilities = policy.list_facilities(session, self.scope)
        managers = {f.name: [p.username for p in policy.managers_of(session, f.name)] for f in facilities} if self.scope.everything else {}
        return {"facilities": facilities, "managers": managers, "this_year": date.today().year}

    def perform(self, session: Session, *args: str) -> Performed:
        facility = policy.add_facility(
            session, name=self.arg("name"), address=self.arg("address"),
            timezone_name=self.arg("timezone").strip() or DEFAULT_TIMEZONE, actor=self.actor, scope=self.scope,
        )
        return "facilities", Done("done_facility_added", name=facility.name, zone=facility.timezone)


class FacilityChangeForm(FacilitiesPage):
    form = "facility-change"

    def perform(self, session: Session, *args: str) -> Performed:
        policy.change_facility(
            session, self.arg("name"), address=self.changed("address"), timezone_name=self.changed("timezone"),
            booking_required={"yes": True, "no": False}.get(self.arg("booking_required")),
            accreditation_kind=self.changed("accreditation_kind"), seats=self.changed("seats"), actor=self.actor, scope=self.scope,
        )
        return "facilities", Done("done_facility_changed", name=self.arg("name"))


class FacilityHoursForm(FacilitiesPage):
    form = "facility-hours"

    def perform(self, session: Session, *args: str) -> Performed:
        facility = policy.set_opening_hours(session, self.arg("name"), self.arg("hours"), actor=self.actor, scope=self.scope)
        hours = forms.format_hours(facility.hours) or Label("always_open")
        return "facilities", Done("done_hours_set", name=facility.name, zone=facility.timezone, hours=hours)


class FacilityClosedDayForm(FacilitiesPage):
    form = "facility-closed"

    def perform(self, session: Session, *args: str) -> Performed:
        day = forms.parse_date(self.arg("day"), "field_closed_day", required=True)
        reopen = self.arg("op") == "remove"
        if reopen:
            policy.remove_closed_day(session, self.arg("name"), day, actor=self.actor, scope=self.scope)
        else:
            policy.add_closed_day(session, self.arg("name"), day, note=self.arg("note"), actor=self.actor, scope=self.scope)
        return "facilities", Done("done_day_reopened" if reopen else "done_day_closed", name=self.arg("name"), day=day)


class FacilityHolidaysForm(FacilitiesPage):
    form = "facility-holidays"

    def perform(self, session: Session, *args: str) -> Performed:
        year = forms.parse_year(self.arg("year"))
        added = policy.add_public_holidays(session, self.arg("name"), year, actor=self.actor, scope=self.scope)
        return "facilities", Done("done_holidays_closed", name=self.arg("name"), year=year, count=len(added))


class FacilityEmergencyForm(FacilitiesPage):
    """Close now and end the sessions there (`admin.close_for_emergency`), or reopen."""

    form = "facility-emergency"

    @property
    def hub(self) -> HubClient:
        return self.settings["hub_client"]

    @web.authenticated
    async def post(self, *args: str) -> None:
        if self.arg("op") != "close":
            super().post(*args)  # reopen: an ordinary change (perform)
            return
        t = translator(self.language)
        try:
            ended = await close_for_emergency(self.hub, self.factory, self.arg("name"), self.arg("reason"), self.actor, scope=self.scope)
        except PolicyError as e:
            if isinstance(e, policy.OutOfScope):
                self.record_refusal("outside the facility manager's scope", refused=e.key)
            self.show(status=400, error=self.refusal(e), values={"reason": self.arg("reason")})
            return
        except HubApiUnavailable as e:  # closed: the sessions stop at their next entry re-check
            self.show(status=502, error=t("emergency_hub_unavailable", detail=str(e)))
            return
        done = Done("done_emergency_closed", name=self.arg("name"), reason=self.arg("reason").strip(), ended=", ".join(ended) or "-")
        self.redirect(self.done_url(self.prefix + "facilities", done), status=303)

    def perform(self, session: Session, *args: str) -> Performed:
        facility = policy.reopen_after_emergency(session, self.arg("name"), actor=self.actor, scope=self.scope)
        return "facilities", Done("done_emergency_reopened", name=facility.name)


# ---------------------------------------------------------------- terminals


class TerminalsPage(FacilityPage):
    template = "terminals.html"
    form = "terminal-add"

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        return {"terminals": policy.list_terminals(session, self.scope), "facilities": policy.list_facilities(session, self.scope)}

    def perform(self, session: Session, *args: str) -> Performed:
        terminal = policy.add_terminal(session, facility=self.arg("facility"), address=self.arg("address"), label=self.arg("label"),
                                       override=self.arg("override") == "yes", actor=self.actor, scope=self.scope)
        return "terminals", Done("done_terminal_added", network=terminal.address, facility=terminal.facility.name)


class TerminalRemoveForm(TerminalsPage):
    form = "terminals"

    def perform(self, session: Session, *args: str) -> Performed:
        policy.remove_terminal(session, address=self.arg("address"), actor=self.actor, scope=self.scope)
        return "terminals", Done("done_terminal_removed", network=str(forms.parse_network(self.arg("address"), registering=False)))


# ---------------------------------------------------------------- bookings and seats


class BookingsPage(FacilityPage):
    template = "bookings.html"
    form = "booking-add"

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        bookings = policy.list_bookings(session, ending_after=datetime.now(timezone.utc) - timedelta(days=7), scope=self.scope)
        facilities = policy.list_facilities(session, self.scope)
        seats = {f.name: policy.seat_days(session, f.name, datetime.now(ZoneInfo(f.timezone)).date(), SEAT_DAYS) for f in facilities}
        # People are an administrator's to see: a manager types the user name of the person to book.
        people = policy.list_people(session) if self.scope.everything else []
        return {"bookings": bookings, "people": people, "facilities": facilities, "seats": seats}

    def perform(self, session: Session, *args: str) -> Performed:
        booking = policy.add_booking(
            session, username=self.arg("username"), facility=self.arg("facility"),
            starts_at=forms.parse_time(self.arg("starts_at"), "field_booking_start"),
            ends_at=forms.parse_time(self.arg("ends_at"), "field_booking_end"), actor=self.actor, scope=self.scope,
        )
        zone = booking.facility.timezone
        return "bookings", Done("done_booking_added", id=booking.id, name=booking.person.username, facility=booking.facility.name,
                                start=times.shown(booking.starts_at, zone), end=times.shown(booking.ends_at, zone))


class BookingCancelForm(BookingsPage):
    form = "bookings"

    def perform(self, session: Session, *args: str) -> Performed:
        booking = policy.cancel_booking(session, forms.parse_row_number(args[0], "booking"), actor=self.actor, scope=self.scope)
        return "bookings", Done("done_booking_cancelled", id=booking.id, name=booking.person.username, facility=booking.facility.name)

    def page_args(self, *args: str) -> tuple[str, ...]:
        return ()


# ---------------------------------------------------------------- entry log


class EntriesPage(FacilityPage):
    template = "entries.html"

    def filters(self, t: Callable[..., str], facilities: list[str]) -> tuple[dict[str, str], list[Any], str]:
        """The query's filters as typed, the SQL conditions they make, and an error (bad filter: no rows). A facility
        manager sees only the decisions taken at the terminals of their `facilities`."""
        typed = {k: self.get_query_argument(k, "").strip() for k in ("person", "outcome", "since", "until", "facility", "address")}
        conditions: list[Any] = [AuditEvent.action == AuditEventType.ENTRY_DECIDE]
        if not self.scope.everything:
            conditions.append(or_(*(facility_is(name) for name in facilities)) if facilities else false())
        days: dict[str, date] = {}
        for key in ("since", "until"):
            try:
                day = forms.parse_date(typed[key], f"field_{key}")
            except InputInvalid as e:
                return typed, conditions, self.refusal(e)
            if day is not None:
                days[key] = day
        if "since" in days and "until" in days and days["until"] < days["since"]:
            return typed, conditions, t("bad_filter_range")
        zone = self.settings["onsite"].timezone  # days as the log shows its times
        if "since" in days:
            conditions.append(AuditEvent.created_at >= times.midnight(days["since"], zone))
        if "until" in days:
            conditions.append(AuditEvent.created_at < times.midnight(days["until"] + timedelta(days=1), zone))
        if typed["person"]:
            try:
                name = canonical_username(typed["person"])
            except InputInvalid:
                name = typed["person"]
            conditions.append(AuditEvent.actor == name)
        if typed["outcome"] in Outcome.__members__:
            conditions.append(AuditEvent.outcome == Outcome[typed["outcome"]])
        if typed["facility"]:
            conditions.append(facility_is(typed["facility"]))
        if typed["address"]:
            conditions.append(detail_is("client_address", typed["address"]))
        return typed, conditions, ""

    @web.authenticated
    def get(self) -> None:
        t = translator(self.language)
        with read_transaction(self.factory) as session:
            facilities = [f.name for f in policy.list_facilities(session, self.scope)]
        typed, conditions, error = self.filters(t, facilities)
        try:
            page = max(1, int(self.get_query_argument("page", "1")))
        except ValueError:
            page = 1
        rows: list[dict[str, Any]] = []
        total = 0
        with read_transaction(self.factory) as session:
            if not error:
                total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
                events = session.scalars(
                    select(AuditEvent).where(*conditions).order_by(AuditEvent.seq.desc())
                    .offset((page - 1) * ENTRIES_PER_PAGE).limit(ENTRIES_PER_PAGE)
                )
                rows = [self.entry_row(e, t) for e in events]
        record_manager_read(self.factory, self.scope, self.actor, "entries", rows=len(rows), path=self.request.path[:300],
                            filters={k: v[:100] for k, v in typed.items() if v}, page=page)

        def page_url(n: int) -> str:
            return "?" + urlencode({**{k: v for k, v in typed.items() if v}, "page": n})

        first = (page - 1) * ENTRIES_PER_PAGE + 1
        self.render_page(
            "entries.html",
            status=400 if error else 200,
            rows=rows,
            filters=typed,
            error=error,
            facilities=facilities,
            total=total,
            first=first,
            last=first + len(rows) - 1,
            previous_url=page_url(page - 1) if page > 1 else "",
            next_url=page_url(page + 1) if page * ENTRIES_PER_PAGE < total else "",
        )

    def entry_row(self, event: AuditEvent, t: Callable[..., str]) -> dict[str, Any]:
        details = event.details_dict
        reasons = []
        for code in details.get("reasons", []):
            try:
                reasons.append(DenialReason(code).message(self.language))
            except ValueError:  # a reason added after this page was written: show its code
                reasons.append(str(code))
        stage = str(details.get("stage", ""))
        return {
            "seq": event.seq,
            "when": event.created_at,
            "person": event.actor,
            "outcome": event.outcome,
            "stage": t(f"stage_{stage}") if f"stage_{stage}" in MESSAGES else stage,
            "client_address": details.get("client_address", ""),
            "facility": details.get("facility", ""),
            "reasons": reasons,
            "active_projects": details.get("active_projects", []),
        }


def detail_is(field: str, value: str) -> Any:
    """An event whose details hold `field` with exactly `value`: details is canonical JSON (sorted keys, no spaces), so
    that is an exact substring."""
    return AuditEvent.details.contains(f'"{field}":{audit.canonical_json(value)}', autoescape=True)


def facility_is(name: str) -> Any:
    return detail_is("facility", name)


# ---------------------------------------------------------------- live sessions


class SessionsPage(FacilityPage):
    template = "sessions.html"
    form = "sessions"

    @property
    def hub(self) -> HubClient:
        return self.settings["hub_client"]

    async def show_sessions(self, *, status: int = 200, error: str = "") -> None:
        t = translator(self.language)
        rows: list[dict[str, Any]] = []
        hub_error = ""
        try:
            running = await live_sessions(self.hub, self.factory, self.scope)
        except HubApiUnavailable as e:
            running, hub_error = [], t("hub_unavailable", detail=str(e))
        record_manager_read(self.factory, self.scope, self.actor, "sessions", rows=len(running), path=self.request.path[:300])
        with read_transaction(self.factory) as session:
            for live in running:
                person = policy.get_person(session, live.server.user)
                rows.append({"server": live.server, "facility": live.facility or "", "projects": live.projects,
                             "display_name": person.display_name if person else ""})
        self.render_page("sessions.html", status=status, rows=rows, hub_error=hub_error, error=error,
                         error_form=self.form if error else "", values={})

    @web.authenticated
    async def get(self, *args: str) -> None:
        await self.show_sessions()


class SessionStopForm(SessionsPage):
    @web.authenticated
    async def post(self, username: str) -> None:
        try:
            await end_session_in_scope(self.hub, self.factory, username, self.actor, scope=self.scope)
        except HubApiUnavailable as e:
            await self.show_sessions(status=502, error=translator(self.language)("hub_unavailable", detail=str(e)))
            return
        except policy.OutOfScope as e:
            self.record_refusal("outside the facility manager's scope", refused=e.key)
            await self.show_sessions(status=400, error=self.refusal(e))
            return
        self.redirect(self.done_url(f"{self.prefix}sessions", Done("done_session_ended", name=username)), status=303)


def routes(p: str) -> list[tuple[str, type[AdminHandler]]]:
    """The pages under the prefix `p`."""
    name = r"([^/]+)"
    return [
        (rf"{p}facilities", FacilitiesPage),
        (rf"{p}facilities/change", FacilityChangeForm),
        (rf"{p}facilities/hours", FacilityHoursForm),
        (rf"{p}facilities/closed", FacilityClosedDayForm),
        (rf"{p}facilities/holidays", FacilityHolidaysForm),
        (rf"{p}facilities/emergency", FacilityEmergencyForm),
        (rf"{p}bookings", BookingsPage),
        (rf"{p}bookings/(\d+)/cancel", BookingCancelForm),
        (rf"{p}terminals", TerminalsPage),
        (rf"{p}terminals/remove", TerminalRemoveForm),
        (rf"{p}entries", EntriesPage),
        (rf"{p}sessions", SessionsPage),
        (rf"{p}sessions/{name}/stop", SessionStopForm),
    ]
