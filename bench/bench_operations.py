"""The operations view on a national network's store (PostgreSQL): 20 facilities × 50 terminals, 5,000
researchers, 1,000 projects and a year of bookings, sessions, entry decisions and release requests.

A scratch database (bench_entry.scratch_database) is filled with bulk rows: the ledger's events are written
as the hub writes their details, with stand-in hashes (a read benchmark: the chain is not verified here).
The usage projection is then folded in once (`usage.catch_up`, timed), and the real admin app (make_app,
in a thread of this process, identity through its test seam) answers over HTTP:

- ours: GET operations (every facility), operations/<n> (one facility with its year by month),
  operations.json (the refresh) and usage (every facility, 12 months) — read from the projection as it is,
  the app's keeper thread folding new events beside them, as in production;
- peer (`cases()`): the figures of the overview read straight from the ledger without the projection
  (live sessions by pairing SESSION_START/STOP, refusals of the last hour by time) in hand-written SQL on
  a bare psycopg connection: what the projection saves.

`python -m bench.bench_operations` prints the load average, the fill and fold times, p50/p95 of each page, and p50/p99 of
the entry decision (load_entry_facts + decide_entry, as bench_entry) on this store. Goals (issue 16):
pages < 1 s p95, the entry decision < 50 ms p99.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import os
import random
import statistics
import threading
import time
from datetime import datetime, time as clock, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import requests
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from access_control.entry import decide_entry, load_entry_facts
from access_control.usage import catch_up
from admin_service.app import make_app
from bench import Case, Context
from bench.bench_entry import percentiles, scratch_database
from hub_config.config import free_port
from onsite.migrations import migrate
from onsite_base.db import Base, make_engine, session_factory, transaction
from onsite_base.settings import Settings

FACILITIES = 20
TERMINALS_EACH = 50
PEOPLE = 5_000
PROJECTS = 1_000
SESSIONS_PER_DAY = 30
"""Sessions a facility has on a weekday (each with a booking, a login and a spawn decision, a start and a stop)."""
REFUSED_SHARE = 0.05
DAYS = 365
RELEASES = 3_000
LIVE_EACH = 20
REQUESTS = 30
DECISIONS = 200
PEER_TIMEOUT_S = 120
"""The peer pairs every session's events in SQL: on a year's ledger it runs for minutes (7.5 min, then stopped, once)."""
ADMIN = "benchadmin"
TOKYO = ZoneInfo("Asia/Tokyo")
ZONES = ["Asia/Tokyo"] * (FACILITIES - 1) + ["Pacific/Honolulu"]


def address(facility: int, terminal: int) -> str:
    return f"10.{facility}.0.{terminal + 1}"


class Ledger:
    """Rows of audit_event in seq order, with stand-in hashes (unique, as the columns require)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, at: datetime, action: str, actor: str, obj: str, outcome: str, details: dict) -> None:
        seq = len(self.rows) + 1
        self.rows.append({"seq": seq, "created_at": at, "actor": actor, "action": action, "object": obj, "outcome": outcome,
                          "details": json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
                          "prev_hash": f"{seq - 1:064x}", "hash": f"{seq:064x}"})


def fill(url: str, now: datetime) -> dict[str, int]:
    """Bulk rows through SQLAlchemy Core; the counts written."""
    migrate(url)
    t = Base.metadata.tables
    rng = random.Random(16)
    today = now.astimezone(TOKYO).date()
    engine = make_engine(url)
    events: list[tuple[datetime, str, str, str, str, dict]] = []
    bookings = []
    with engine.begin() as conn:
        conn.execute(insert(t["facility"]), [
            {"id": f + 1, "name": f"施設 {f + 1:02d}", "address": "", "timezone": ZONES[f], "booking_required": True,
             "accreditation_kind": "onsite-training", "seats": 40, "emergency_reason": ""} for f in range(FACILITIES)])
        conn.execute(insert(t["facility_hours"]), [
            {"facility_id": f + 1, "weekday": d, "opens": 9 * 60, "closes": 18 * 60} for f in range(FACILITIES) for d in range(5)])
        conn.execute(insert(t["terminal"]), [
            {"facility_id": f + 1, "address": f"{address(f, i)}/32", "label": f"seat {i + 1}"}
            for f in range(FACILITIES) for i in range(TERMINALS_EACH)]
            + [{"facility_id": 1, "address": "172.16.0.0/16", "label": "override"}])
        conn.execute(insert(t["project"]), [
            {"id": f"p{i:04d}", "title": f"Project {i}", "purpose": "", "legal_basis": "", "start_date": today - timedelta(days=400),
             "end_date": today + timedelta(days=rng.randrange(-30, 400)), "status": "ACTIVE", "preset": "acro-default",
             "created_at": now} for i in range(PROJECTS)])
        conn.execute(insert(t["person"]), [
            {"id": i + 1, "username": f"r{i:04d}", "display_name": f"Researcher {i}", "email": "", "disabled": False,
             "password_hash": None, "failed_logins": 0, "locked_until": None, "created_at": now} for i in range(PEOPLE)]
            + [{"id": PEOPLE + 1, "username": ADMIN, "display_name": "Bench", "email": "", "disabled": False, "password_hash": None,
                "failed_logins": 0, "locked_until": None, "created_at": now}])
        conn.execute(insert(t["person_role"]), [{"person_id": i + 1, "role": "RESEARCHER"} for i in range(PEOPLE)]
                     + [{"person_id": PEOPLE + 1, "role": "ADMINISTRATOR"}])
        conn.execute(insert(t["membership"]), [
            {"project_id": f"p{p:04d}", "person_id": i + 1, "added_at": now}
            for i in range(PEOPLE) for p in rng.sample(range(PROJECTS), 2)])
        conn.execute(insert(t["accreditation"]), [
            {"person_id": i + 1, "kind": "onsite-training", "issued": today - timedelta(days=400), "expiry": today + timedelta(days=200),
             "revoked_at": None, "created_by": "bench", "created_at": now} for i in range(PEOPLE)])

        def session(f: int, person: int, start: datetime, end: datetime | None) -> None:
            name, addr = f"r{person:04d}", address(f, rng.randrange(TERMINALS_EACH))
            entry = {"active_projects": ["p0001"], "client_address": addr, "facility": f"施設 {f + 1:02d}", "reasons": [],
                     "terminal": f"{addr}/32", "day": start.astimezone(TOKYO).date().isoformat()}
            events.append((start - timedelta(seconds=40), "ENTRY_DECIDE", name, f"person:{name}", "OK", entry | {"stage": "login"}))
            events.append((start - timedelta(seconds=20), "ENTRY_DECIDE", name, f"person:{name}", "OK", entry | {"stage": "spawn"}))
            events.append((start, "SESSION_START", name, f"session:{name}", "OK",
                           {"client_address": addr, "projects": ["p0001"], "datasets": {}, "isolated": True, "started_by": name}))
            if end is not None:
                events.append((end, "SESSION_STOP", name, f"session:{name}", "OK", {"stopped_by": name, "reason": "STOP_REQUESTED"}))
            bookings.append({"person_id": person + 1, "facility_id": f + 1, "starts_at": start.replace(minute=0, second=0),
                             "ends_at": (end or start + timedelta(hours=4)).replace(minute=0, second=0) + timedelta(hours=1),
                             "cancelled_at": None, "created_by": "bench", "created_at": start - timedelta(days=3)})
            if rng.random() < REFUSED_SHARE:
                other = f"r{rng.randrange(PEOPLE):04d}"
                events.append((start - timedelta(minutes=5), "ENTRY_DECIDE", other, f"person:{other}", "DENIED",
                               entry | {"stage": "login", "reasons": ["NO_BOOKING"]}))

        for back in range(DAYS, 0, -1):
            day = today - timedelta(days=back)
            if day.weekday() >= 5:
                continue
            for f in range(FACILITIES):
                zone = ZoneInfo(ZONES[f])
                for _ in range(SESSIONS_PER_DAY):
                    start = datetime.combine(day, clock(9), zone) + timedelta(minutes=rng.randrange(7 * 60))
                    end = min(start + timedelta(minutes=rng.randrange(30, 6 * 60)), datetime.combine(day, clock(18), zone))
                    session(f, rng.randrange(PEOPLE), start, end)
        for f in range(FACILITIES):  # today: live sessions, refusals in the last hour
            for i in range(LIVE_EACH):
                session(f, (f * LIVE_EACH + i) % PEOPLE, now - timedelta(hours=2, minutes=i), None)
            for i in range(5):
                who = f"r{rng.randrange(PEOPLE):04d}"
                events.append((now - timedelta(minutes=5 + 10 * i), "ENTRY_DECIDE", who, f"person:{who}", "DENIED",
                               {"client_address": address(f, i), "facility": f"施設 {f + 1:02d}", "reasons": ["FACILITY_CLOSED"],
                                "stage": "login", "terminal": f"{address(f, i)}/32", "active_projects": []}))
        events.sort(key=lambda e: e[0])
        ledger = Ledger()
        for event in events:
            ledger.add(*event)
        for chunk in range(0, len(ledger.rows), 50_000):
            conn.execute(insert(t["audit_event"]), ledger.rows[chunk:chunk + 50_000])
        conn.execute(insert(t["booking"]), bookings)
        requests_, outputs, packages = [], [], []
        starts = [e for e in events if e[1] == "SESSION_START"]
        for i in range(RELEASES):
            at, _, name, *_ = starts[rng.randrange(len(starts))]
            submitted = at + timedelta(minutes=30)
            decided = submitted + timedelta(hours=rng.randrange(2, 200))
            released = decided < now
            requests_.append({"id": i + 1, "project_id": "p0001", "requester": name, "title": "t", "purpose": "p",
                              "status": "RELEASED" if released else "SUBMITTED", "preset": "acro-default", "required_approvals": 2,
                              "return_comment": None, "created_at": submitted, "updated_at": submitted})
            for position in range(2):
                outputs.append({"request_id": i + 1, "position": position, "name": f"o{position}", "kind": "FILE", "verdict": "review",
                                "verified": False, "cells": 0, "size_bytes": 0, "decision": "APPROVE" if released else None,
                                "decided_at": decided if released else None})
            if released:
                packages.append({"request_id": i + 1, "path": f"/egress/{i + 1}", "manifest_sha256": "0" * 64, "files": [],
                                 "created_at": decided})
        conn.execute(insert(t["release_request"]), requests_)
        conn.execute(insert(t["release_output"]), outputs)
        conn.execute(insert(t["release_package"]), packages)
    engine.dispose()
    return {"events": len(events), "bookings": len(bookings), "sessions": len(starts), "releases": RELEASES}


class OperationsBench:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)
        self.url = scratch_database()
        started = time.perf_counter()
        self.counts = fill(self.url, self.now)
        self.fill_s = time.perf_counter() - started
        self.engine = make_engine(self.url)
        atexit.register(self.engine.dispose)
        self.factory = session_factory(self.engine)
        started = time.perf_counter()
        self.folded = catch_up(self.factory)
        self.fold_s = time.perf_counter() - started
        self.base = self.serve()
        self.http = requests.Session()

    def serve(self) -> str:
        """The real admin app in a thread of this process; the person is ADMIN (the app's test seam)."""
        port = free_port()
        app = make_app(Settings(db_url=self.url), prefix="/admin/", test_identity=lambda handler: ADMIN)
        ready = threading.Event()

        def run() -> None:
            async def main() -> None:
                app.listen(port, address="127.0.0.1")
                ready.set()
                await asyncio.Event().wait()

            asyncio.run(main())

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return f"http://127.0.0.1:{port}/admin/"

    def get(self, path: str) -> int:
        response = self.http.get(self.base + path)
        response.raise_for_status()
        return len(response.content)

    def latencies(self, path: str, n: int = REQUESTS) -> list[float]:
        self.get(path)  # warm-up
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            self.get(path)
            samples.append(time.perf_counter() - start)
        return samples

    def decisions(self) -> list[float]:
        rng = random.Random(11)
        who = [(f"r{rng.randrange(PEOPLE):04d}", address(rng.randrange(FACILITIES), rng.randrange(TERMINALS_EACH)))
               for _ in range(DECISIONS)]
        samples = []
        for username, client in [who[0], *who]:
            start = time.perf_counter()
            with transaction(self.factory) as session:
                decide_entry(load_entry_facts(session, username, client), datetime.now(timezone.utc))
            samples.append(time.perf_counter() - start)
        return samples[1:]

    def ledger_peer(self, timeout_s: int | None = None, *, live: bool = True):
        """The overview's ledger figures without the projection: hand-written SQL over audit_event (`live`: with
        the live sessions, found by pairing every session's start and stop)."""
        url = make_url(self.url)
        conn = psycopg.connect(dbname=url.database, user=url.username, host=url.host, port=url.port, autocommit=True)
        if timeout_s:
            conn.execute(f"SET statement_timeout = {int(timeout_s) * 1000}")
        atexit.register(conn.close)

        def run() -> int:
            with conn.transaction():
                sessions = 0 if not live else conn.execute(
                    "SELECT count(*) FROM audit_event s WHERE s.action = 'SESSION_START' AND s.outcome = 'OK' AND NOT EXISTS "
                    "(SELECT 1 FROM audit_event e WHERE e.object = s.object AND e.seq > s.seq "
                    " AND e.action IN ('SESSION_START', 'SESSION_STOP'))").fetchone()[0]
                refused = conn.execute(
                    "SELECT details::jsonb ->> 'facility', count(*) FROM audit_event WHERE action = 'ENTRY_DECIDE' "
                    "AND outcome = 'DENIED' AND created_at >= %s GROUP BY 1",
                    ((datetime.now(timezone.utc) - timedelta(hours=1)).replace(tzinfo=None),)).fetchall()
                seen = conn.execute(
                    "SELECT details::jsonb ->> 'terminal', max(created_at) FROM audit_event WHERE action = 'ENTRY_DECIDE' "
                    "GROUP BY 1").fetchall()
            return sessions + len(refused) + len(seen)

        return run


def cases(ctx: Context) -> list[Case]:
    bench = OperationsBench()
    return [Case("operations_view_pg", lambda: bench.get("operations"),
                 "refusals and terminals last seen from the ledger, hand-written SQL (without live sessions: minutes)",
                 bench.ledger_peer(live=False), repeat=5,
                 note=f"{FACILITIES} facilities × {TERMINALS_EACH} terminals, {bench.counts['sessions']:,} sessions, "
                      f"{bench.counts['events']:,} ledger events")]


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    print(f"load average at start {load_average()}")
    bench = OperationsBench()
    c = bench.counts
    print(f"filled {FACILITIES} facilities × {TERMINALS_EACH} terminals, {PEOPLE:,} researchers, {PROJECTS:,} projects, "
          f"{c['sessions']:,} sessions, {c['bookings']:,} bookings, {c['events']:,} ledger events, {c['releases']:,} release "
          f"requests in {bench.fill_s:.1f} s; first catch-up folded {bench.folded:,} events in {bench.fold_s:.1f} s")
    for label, path in (("operations (every facility)", "operations"), ("operations/1 (one facility, its 12 months)", "operations/1"),
                        ("operations.json (the refresh)", "operations.json"), ("usage (every facility, 12 months)", "usage")):
        samples = bench.latencies(path)
        cuts = statistics.quantiles(samples, n=20, method="inclusive")
        p50, p95 = cuts[9], cuts[18]
        print(f"{label}: n={len(samples)} p50 {p50 * 1000:.0f} ms  p95 {p95 * 1000:.0f} ms  max {max(samples) * 1000:.0f} ms")
    p50, p99 = percentiles(bench.decisions())
    print(f"entry decision (load_entry_facts + decide_entry) on this store: n={DECISIONS} p50 {p50 * 1000:.2f} ms  p99 {p99 * 1000:.2f} ms")
    peer = bench.ledger_peer(timeout_s=PEER_TIMEOUT_S)
    start = time.perf_counter()
    try:
        peer()
        print(f"peer: the overview's ledger figures without the projection: {time.perf_counter() - start:.1f} s")
    except psycopg.errors.QueryCanceled:
        print(f"peer: the overview's ledger figures without the projection: more than {PEER_TIMEOUT_S} s (stopped)")
    print(f"load average at end {load_average()}")


if __name__ == "__main__":
    main()
