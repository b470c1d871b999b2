"""Entry decision latency on the PostgreSQL store: 10,000 people, 2,000 projects.

A scratch database on 127.0.0.1:5432 (`$ONSITE_BENCH_PG`, default
postgresql://postgres@127.0.0.1:5432/postgres) is created, migrated and filled
with PEOPLE researchers (each a member of MEMBERSHIPS_EACH projects, with an
accreditation and a booking for today), PROJECTS projects, and one facility
(opening hours, booking required, accreditation required) with 50 terminals;
it is dropped at exit.

The harness times medians of whole calls, not percentiles, so this module
does both: `cases()` gives the harness one Case (DECISIONS entry decisions in a
row, ours: `load_entry_facts` + `decide_entry` through SQLAlchemy, one
transaction each, as the periodic re-check does; peer: the same facts read
with three hand-written SQL queries on a bare psycopg connection, a lower
bound), and `python -m bench.bench_entry` prints p50/p99 of single decisions,
also with the ledger write a login adds (`record_entry`).
"""
from __future__ import annotations

import atexit
import ipaddress
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, time as clock, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from access_control.entry import decide_entry, load_entry_facts, record_entry
from bench import Case, Context
from onsite.migrations import migrate
from onsite_base.db import Base, make_engine, session_factory, transaction

PEOPLE = 10_000
PROJECTS = 2_000
MEMBERSHIPS_EACH = 2
TERMINALS = 50
DECISIONS = 200
PG_ADMIN_URL = os.environ.get("ONSITE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKYO = ZoneInfo("Asia/Tokyo")


def scratch_database() -> str:
    """A new empty database, dropped at exit; its SQLAlchemy URL."""
    name = f"onsite_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
    return make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def fill(url: str, today: date) -> None:
    """Bulk rows through SQLAlchemy Core (the policy functions would write 30k ledger events first)."""
    migrate(url)
    t = Base.metadata.tables
    now = datetime.now(timezone.utc)
    rng = random.Random(5)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(t["facility"]), [{"id": 1, "name": "Tokyo", "address": "", "timezone": "Asia/Tokyo",
                                              "booking_required": True, "accreditation_kind": "onsite-training"}])
        conn.execute(insert(t["facility_hours"]), [{"facility_id": 1, "weekday": d, "opens": 0, "closes": 1440} for d in range(7)])
        conn.execute(insert(t["terminal"]), [{"facility_id": 1, "address": f"10.0.{i}.0/28", "label": f"seat {i}"} for i in range(TERMINALS)])
        conn.execute(insert(t["project"]), [
            {"id": f"p{i:05d}", "title": f"Project {i}", "purpose": "", "legal_basis": "", "start_date": today - timedelta(days=30),
             "end_date": today + timedelta(days=rng.randrange(-10, 300)), "status": "ACTIVE", "preset": "acro-default",
             "created_at": now} for i in range(PROJECTS)])
        conn.execute(insert(t["person"]), [
            {"id": i + 1, "username": f"r{i:05d}", "display_name": f"Researcher {i}", "email": "", "disabled": False,
             "password_hash": None, "failed_logins": 0, "locked_until": None, "created_at": now} for i in range(PEOPLE)])
        conn.execute(insert(t["person_role"]), [{"person_id": i + 1, "role": "RESEARCHER"} for i in range(PEOPLE)])
        conn.execute(insert(t["membership"]), [
            {"project_id": f"p{p:05d}", "person_id": i + 1, "added_at": now}
            for i in range(PEOPLE) for p in rng.sample(range(PROJECTS), MEMBERSHIPS_EACH)])
        conn.execute(insert(t["accreditation"]), [
            {"person_id": i + 1, "kind": "onsite-training", "issued": today - timedelta(days=100),
             "expiry": today + timedelta(days=200), "revoked_at": None, "created_by": "bench", "created_at": now}
            for i in range(PEOPLE)])
        day_start = datetime.combine(today, clock(0), TOKYO)
        conn.execute(insert(t["booking"]), [
            {"person_id": i + 1, "facility_id": 1, "starts_at": day_start + timedelta(days=d),
             "ends_at": day_start + timedelta(days=d + 1), "cancelled_at": None, "created_by": "bench", "created_at": now}
            for i in range(PEOPLE) for d in (-1, 0, 1)])
    engine.dispose()


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


class EntryBench:
    def __init__(self) -> None:
        self.url = scratch_database()
        fill(self.url, datetime.now(TOKYO).date())
        self.engine = make_engine(self.url)
        atexit.register(self.engine.dispose)
        self.factory = session_factory(self.engine)
        rng = random.Random(11)
        self.who = [(f"r{rng.randrange(PEOPLE):05d}", f"10.0.{rng.randrange(TERMINALS)}.{rng.randrange(1, 15)}") for _ in range(DECISIONS)]

    def decide(self, username: str, address: str, record: bool = False) -> bool:
        with transaction(self.factory) as session:
            facts = load_entry_facts(session, username, address)
            decision = decide_entry(facts, datetime.now(timezone.utc))
            if record:
                record_entry(session, decision, username=facts.username, client_address=address, stage="bench")
            return decision.allowed

    def ours(self) -> int:
        return sum(self.decide(u, a) for u, a in self.who)

    def peer(self) -> Callable[[], int]:
        """Three hand-written queries per decision on a bare psycopg connection; allowed if the facts are there."""
        url = make_url(self.url)
        conn = psycopg.connect(dbname=url.database, user=url.username, host=url.host, port=url.port)
        atexit.register(conn.close)

        def run() -> int:
            allowed = 0
            now = datetime.now(timezone.utc)
            for username, address in self.who:
                with conn.transaction():
                    terminals = conn.execute("SELECT t.address FROM terminal t JOIN facility f ON f.id = t.facility_id").fetchall()
                    person = conn.execute(
                        "SELECT p.id, (SELECT count(*) FROM project j JOIN membership m ON m.project_id = j.id "
                        " WHERE m.person_id = p.id AND j.status = 'ACTIVE' AND %(d)s BETWEEN j.start_date AND j.end_date) "
                        "FROM person p WHERE p.username = %(u)s AND NOT p.disabled", {"u": username, "d": now.astimezone(TOKYO).date()}).fetchone()
                    ok = conn.execute(
                        "SELECT EXISTS (SELECT 1 FROM accreditation a WHERE a.person_id = %(p)s AND a.revoked_at IS NULL "
                        " AND %(d)s BETWEEN a.issued AND a.expiry) AND EXISTS (SELECT 1 FROM booking b WHERE b.person_id = %(p)s "
                        " AND b.cancelled_at IS NULL AND b.starts_at <= %(n)s AND b.ends_at > %(n)s)",
                        {"p": person[0], "d": now.astimezone(TOKYO).date(), "n": now.replace(tzinfo=None)}).fetchone()[0]
                    at_terminal = any(ipaddress.ip_address(address) in ipaddress.ip_network(t) for (t,) in terminals)
                    allowed += bool(person[1] and ok and at_terminal)
            return allowed

        return run

    def single_latencies(self, record: bool) -> list[float]:
        times = []
        for username, address in self.who:
            start = time.perf_counter()
            self.decide(username, address, record)
            times.append(time.perf_counter() - start)
        return times


def cases(ctx: Context) -> list[Case]:
    bench = EntryBench()
    peer = bench.peer()
    ours_allowed, peer_allowed = bench.ours(), peer()
    if ours_allowed != peer_allowed:
        raise AssertionError(f"ours allowed {ours_allowed} of {DECISIONS}, the hand-written SQL {peer_allowed}")
    return [Case("entry_decisions_pg", bench.ours, "psycopg, 3 hand-written queries", peer, repeat=5,
                 note=f"{DECISIONS} decisions, {PEOPLE:,} people, {PROJECTS:,} projects, {ours_allowed} allowed")]


def main() -> None:
    started = time.perf_counter()
    bench = EntryBench()
    print(f"filled {PEOPLE:,} people, {PROJECTS:,} projects, {PEOPLE * MEMBERSHIPS_EACH:,} memberships, "
          f"{PEOPLE * 3:,} bookings in {time.perf_counter() - started:.1f} s")
    bench.ours()  # warm-up: connections, statement caches
    for label, record in (("re-check (load_entry_facts + decide_entry)", False), ("login (… + record_entry, a ledger write)", True)):
        samples = bench.single_latencies(record)
        p50, p99 = percentiles(samples)
        print(f"{label}: n={len(samples)} p50 {p50 * 1000:.2f} ms  p99 {p99 * 1000:.2f} ms  max {max(samples) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
