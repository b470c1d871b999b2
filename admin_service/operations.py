"""The operations view of the admin pages: every facility at a glance, one facility in full, usage by month.

    GET ./operations                      every facility now (refreshes itself from operations.json)
    GET ./operations.json[?facility=<n>]  the figures of that page, for the refresh
    GET ./operations/<n>                  one facility: terminals, live sessions, refusals, bookings, its months
    GET ./usage[?facility=<n>]            usage by facility and month: table and chart
    GET ./usage.csv[?facility=<n>]        the same table as CSV

Administrators, and facility managers restricted to their facilities (`self.scope`):
the same pages showing only those facilities, their sessions, refusals, terminals
and months (no refusal from no terminal, no witnesses); another facility's page,
refresh or usage by number answers as one that does not exist, and the attempt is
an ADMIN_ACCESS event. A manager's reads of the pages and refreshes that name
people (sessions, refusals) are ADMIN_ACCESS events (OK) as her other reads are.
Judged as every admin page (AdminHandler.prepare: the client address, then the
role), the JSON endpoint included. A request reads in
one read transaction (access_control.operations; the review figures from
disclosure_review.workflow.usage) and never folds the ledger itself: `UsageKeeper`,
a thread of the service, folds new events into the usage tables
(access_control.usage.catch_up) at start, on a timer and when a page asks for it,
and the pages say the time their figures are as of.
"""
from __future__ import annotations

import csv
import io
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy.orm import Session, sessionmaker
from tornado import web

from access_control import ledger, operations, usage
from access_control.operations import OperationsView
from access_control.entry import DenialReason
from access_control.admin import record_manager_read
from admin_service.handlers import AdminHandler
from admin_service.i18n import translator
from disclosure_review.workflow.usage import ReviewMonth, review_usage
from onsite_base import times
from onsite_base.db import read_transaction

log = logging.getLogger(__name__)

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell starting with one of these as a formula: such text is written with a leading '."""


def reason_text(code: str, language: str) -> str:
    try:
        return DenialReason(code).message(language)
    except ValueError:  # a reason added after this page was written: its code
        return code


def local_clock(state: operations.FacilityState) -> str:
    return state.local_now.strftime("%H:%M %Z")


def live_figures(view: operations.Overview | operations.FacilityView, t: Callable[..., str], language: str,
                 names: dict[int, str], zone: str) -> dict[str, Any]:
    """What the page refreshes: each figure's text by its `data-live` key, and the refusals' rows."""
    states = view.facilities if isinstance(view, operations.Overview) else (view.state,)
    refusals = view.refusals
    figures: dict[str, str] = {}
    for f in states:
        key = f"f{f.id}."
        figures |= {
            key + "open": t("open_now") if f.open_now else t("closed_now"),
            key + "clock": local_clock(f),
            key + "booked": t("booked_of_seats", booked=f.booked_today, seats=f.seats) if f.seats is not None else str(f.booked_today),
            key + "in_use": str(f.in_use),
            key + "refusals": str(f.refusals_last_hour),
            key + "never_seen": str(f.never_seen),
            key + "silent": str(f.silent),
        }
    return {
        "updated": times.shown(view.now, zone, seconds=True),
        "figures": figures,
        "closed": [f.id for f in states if not f.open_now],
        "refusals": [{"when": times.shown(r.at, zone, seconds=True), "person": r.username,
                      "facility": names.get(r.facility_id, t("no_facility")) if r.facility_id is not None else t("no_facility"),
                      "address": r.client_address, "reasons": [reason_text(code, language) for code in r.reasons]}
                     for r in refusals],
    }


class UsageKeeper:
    """Keeps the usage tables caught up with the ledger from a daemon thread: from the service's start, every
    `OperationsView.catch_up_seconds`, and soon after a page asks (`wake`), so that no request waits for a fold
    (the first over a long ledger takes minutes). A failed fold (store unreachable) is logged and retried."""

    def __init__(self, factory: sessionmaker[Session], interval_s: float) -> None:
        self.factory = factory
        self.interval_s = interval_s
        self.asked = threading.Event()
        self.stopped = threading.Event()
        self.starting = threading.Lock()
        self.thread = threading.Thread(target=self.run, name="usage-catch-up", daemon=True)

    def start(self) -> UsageKeeper:
        """Fold from now on (the service's start calls it; a page's `wake` too, for an app started without)."""
        with self.starting:
            if not self.thread.is_alive() and not self.stopped.is_set():
                self.thread.start()
        return self

    def wake(self) -> None:
        self.asked.set()
        self.start()

    def stop(self) -> None:
        self.stopped.set()
        self.asked.set()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.asked.clear()
            try:
                usage.catch_up(self.factory)
            except Exception:  # the store may be away for a while: the next round tries again
                log.warning("usage: catch-up failed, retrying in %g s", self.interval_s, exc_info=True)
            self.asked.wait(self.interval_s)


class OperationsHandler(AdminHandler):
    """Reads the usage tables as they are (asking the keeper to fold what is new, without waiting); a facility
    manager's within her facilities."""

    for_managers = True
    as_of: datetime | None = None
    """When the usage tables were last caught up with the ledger (`read` sets it)."""

    @property
    def view_settings(self) -> OperationsView:
        return self.settings["operations"]

    def read(self, work: Callable[[Session, datetime], Any]) -> Any:
        self.settings["usage_keeper"].wake()
        now = datetime.now(timezone.utc)
        with read_transaction(self.factory) as session:
            self.as_of = usage.caught_up_at(session)
            return work(session, now)

    def as_of_text(self) -> str:
        if self.as_of is None:
            return translator(self.language)("usage_not_folded_yet")
        return times.shown(self.as_of, self.settings["onsite"].timezone, seconds=True)

    @property
    def names(self) -> frozenset[str] | None:
        """The facilities the person may see (None: every one)."""
        return self.scope.facilities if self.scope is not None else frozenset()

    def no_such_facility(self, number: int | None) -> web.HTTPError:
        """Another facility's number is answered as a number no facility has; a manager's attempt is recorded."""
        if self.names is not None:
            self.record_refusal("outside the facility manager's scope", facility=str(number))
        return web.HTTPError(404, translator(self.language)("no_such_facility", number=number))

    def record_read(self, view: operations.Overview | operations.FacilityView) -> None:
        """A manager's read of the people in the view (live sessions, refusals), in the ledger."""
        live = view.live if isinstance(view, operations.FacilityView) else ()
        record_manager_read(self.factory, self.scope, self.actor, "operations", rows=len(view.refusals) + len(live),
                            path=self.request.path[:300])

    def facility_arg(self) -> int | None:
        text = self.get_query_argument("facility", "")
        if not text:
            return None
        if not text.isdigit():
            raise web.HTTPError(400, translator(self.language)("bad_facility_number", value=text[:40]))
        return int(text)

    def common(self) -> dict[str, Any]:
        return {"refresh_seconds": self.view_settings.refresh_seconds, "as_of": self.as_of_text(),
                "silent_hours": f"{self.view_settings.terminal_silent_after_hours:g}",
                "reason_text": lambda code: reason_text(code, self.language)}


class OperationsPage(OperationsHandler):
    template = "operations.html"

    @web.authenticated
    def get(self) -> None:
        def work(session: Session, now: datetime) -> dict[str, Any]:
            view = operations.overview(session, now, self.view_settings.silent_after, self.names)
            return {"view": view, "witnesses": ledger.last_cosignatures(session) if self.names is None else [],
                    "names": {f.id: f.name for f in view.facilities}}

        context = self.read(work)
        self.record_read(context["view"])
        self.render_page(self.template, **self.common(), **context, json_url=self.prefix + "operations.json")


class FacilityOperationsPage(OperationsHandler):
    template = "operations_facility.html"

    @web.authenticated
    def get(self, number: str) -> None:
        facility_id = int(number)

        def work(session: Session, now: datetime) -> dict[str, Any] | None:
            view = operations.facility_view(session, facility_id, now, self.view_settings.silent_after, self.names)
            if view is None:
                return None
            return {"view": view, "rows": usage_rows(session, now, facility_id), "names": {view.state.id: view.state.name}}

        context = self.read(work)
        if context is None:
            raise self.no_such_facility(facility_id)
        self.record_read(context["view"])
        self.render_page(self.template, **self.common(), **context,
                         json_url=f"{self.prefix}operations.json?facility={facility_id}")


class OperationsJson(OperationsHandler):
    @web.authenticated
    def get(self) -> None:
        facility_id = self.facility_arg()
        t = translator(self.language)

        def work(session: Session, now: datetime) -> tuple[Any, dict[str, Any]] | None:
            if facility_id is None:
                view: operations.Overview | operations.FacilityView | None = operations.overview(
                    session, now, self.view_settings.silent_after, self.names)
            else:
                view = operations.facility_view(session, facility_id, now, self.view_settings.silent_after, self.names)
            if view is None:
                return None
            states = view.facilities if isinstance(view, operations.Overview) else (view.state,)
            return view, live_figures(view, t, self.language, {f.id: f.name for f in states}, self.settings["onsite"].timezone)

        read = self.read(work)
        if read is None:
            raise self.no_such_facility(facility_id)
        view, figures = read
        self.record_read(view)
        figures["figures"]["as_of"] = self.as_of_text()
        self.set_header("Cache-Control", "no-store")
        self.finish(figures)


# ---------------------------------------------------------------- usage statistics


def usage_rows(session: Session, now: datetime, facility_id: int | None = None,
               names: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """One row a facility (of those named `names`, None: any) and month of the last twelve, months without any use
    included (zeros)."""
    facilities = operations.load_facilities(session, facility_id, names)
    sessions = operations.monthly_usage(session, now, facility_id=facility_id)
    reviews = review_usage(session, now, facility_id=facility_id)
    rows = []
    for f in facilities:
        for month in operations.months_between(now):
            used = sessions.get((f.id, month)) or operations.MonthUsage(f.id, month)
            reviewed = reviews.get((f.id, month)) or ReviewMonth(f.id, month)
            turnaround = reviewed.median_turnaround_hours
            rows.append({"facility_id": f.id, "facility": f.name, "month": month, "sessions": used.sessions,
                         "hours": round(used.hours, 1), "researchers": used.researchers,
                         "outputs_released": reviewed.outputs_released,
                         "turnaround_hours": None if turnaround is None else round(turnaround, 1)})
    return rows


def chart_svg(rows: list[dict[str, Any]], title: str, sessions_label: str, hours_label: str) -> str:
    """Sessions (bars) and hours (line) a month, summed over the rows' facilities: an inline SVG, made here."""
    months: dict[str, list[float]] = {}
    for row in rows:
        month = months.setdefault(row["month"], [0, 0.0])
        month[0] += row["sessions"]
        month[1] += row["hours"]
    width, height, left, bottom, top = 720, 260, 48, 36, 28
    plot_w, plot_h = width - left - 48, height - bottom - top
    slot = plot_w / max(len(months), 1)
    top_sessions = max((m[0] for m in months.values()), default=0) or 1
    top_hours = max((m[1] for m in months.values()), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'aria-labelledby="chart-title"><title id="chart-title">{escape(title)}</title>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
             f'<text x="{left - 6}" y="{top + 4}" class="tick" text-anchor="end">{int(top_sessions)}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" class="tick" text-anchor="end">0</text>',
             f'<text x="{left + plot_w + 6}" y="{top + 4}" class="tick hours">{top_hours:.0f} h</text>']
    points = []
    for i, (month, (count, hours)) in enumerate(months.items()):
        x = left + i * slot
        bar = plot_h * count / top_sessions
        parts.append(f'<rect x="{x + slot * 0.15:.1f}" y="{top + plot_h - bar:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{bar:.1f}" class="bar"><title>{escape(month)}: {int(count)}</title></rect>')
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 16}" class="tick" text-anchor="middle">'
                     f'{escape(month[2:])}</text>')
        points.append(f"{x + slot / 2:.1f},{top + plot_h - plot_h * hours / top_hours:.1f}")
    if points:
        parts.append(f'<polyline points="{" ".join(points)}" class="hours-line"/>')
    parts.append(f'<g class="legend"><rect x="{left}" y="6" width="12" height="12" class="bar"/>'
                 f'<text x="{left + 16}" y="16">{escape(sessions_label)}</text>'
                 f'<line x1="{left + 160}" y1="12" x2="{left + 180}" y2="12" class="hours-line"/>'
                 f'<text x="{left + 186}" y="16">{escape(hours_label)}</text></g></svg>')
    return "".join(parts)


def csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return "" if value is None else value


CSV_COLUMNS = ("facility", "month", "sessions", "hours", "researchers", "outputs_released", "turnaround_hours")


class UsagePage(OperationsHandler):
    template = "usage.html"

    def rows(self) -> tuple[list[dict[str, Any]], list[tuple[int, str]], int | None]:
        facility_id = self.facility_arg()

        def work(session: Session, now: datetime) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
            return (usage_rows(session, now, facility_id, self.names),
                    [(f.id, f.name) for f in operations.load_facilities(session, names=self.names)])

        rows, facilities = self.read(work)
        if facility_id is not None and facility_id not in dict(facilities):
            raise self.no_such_facility(facility_id)
        return rows, facilities, facility_id

    @web.authenticated
    def get(self) -> None:
        t = translator(self.language)
        rows, facilities, facility_id = self.rows()
        chosen = dict(facilities).get(facility_id, t("all_facilities")) if facility_id is not None else t("all_facilities")
        chart = chart_svg(rows, t("usage_chart_title", facility=chosen), t("col_sessions"), t("ops_col_hours"))
        self.render_page(self.template, rows=rows, facilities=facilities, facility_id=facility_id, chart=chart, as_of=self.as_of_text(),
                         csv_url=self.prefix + "usage.csv" + (f"?facility={facility_id}" if facility_id is not None else ""))


class UsageCsv(UsagePage):
    @web.authenticated
    def get(self) -> None:
        rows, _, _ = self.rows()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([csv_cell(row[c]) for c in CSV_COLUMNS])
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="onsite-usage-{stamp}.csv"')
        self.finish(out.getvalue())


ROUTES = [
    ("operations", OperationsPage),
    ("operations.json", OperationsJson),
    (r"operations/(\d+)", FacilityOperationsPage),
    ("usage", UsagePage),
    ("usage.csv", UsageCsv),
]
"""Paths under the service prefix (admin_service.app registers them)."""
