"""The ledger: appends with concurrent writers, verifying a large log, an inclusion proof in a huge one (issue 17).

Ours is the ledger with its Merkle tree (access_control.ledger); the peer is today's hash chain alone
(access_control.audit), in the same run on the same machine:

- appends/s: WRITERS processes each appending one event per transaction (`audit.record`, the path
  every action takes) for SECONDS; ours with a head signer running beside them (`ledger.sign_head`
  every HEAD_INTERVAL_S, as the hub's anchor service does every anchor_interval_s), the peer without.
  Ours chains the events at commit (on PostgreSQL the server does, in the commit's own message: the
  ledger lock over no client round trip); the peer is the append as it was before that
  (`append_as_before`: the client chains the event under the lock, inserts it through the ORM and
  commits, the group commit's flush on a second connection). PostgreSQL: 127.0.0.1:5432,
  `$ONSITE_BENCH_PG`, a scratch database dropped at exit.
- verify: `ledger.verify` (chain, tree, heads) vs `audit.verify` (chain) over a log of VERIFY_EVENTS.
- proof: `ledger.inclusion_proof` of a random event in a log of PROOF_EVENTS (SQLite) vs what the
  chain offers instead, re-checking the chain from that event to its head (timed once).

The logs are made directly (events hashed and chained as `audit.record` does, the tree's nodes from
the same pass), not through a million transactions. `python -m bench.bench_ledger` prints the
report for bench/RESULTS.md; the harness (`python -m bench ledger`) times verify on a smaller log.
"""
from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access_control import audit, ledger, merkle
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent
from bench import Case, Context
from bench.bench_entry import scratch_database
from onsite.migrations import migrate
from onsite_base.db import make_engine, session_factory, transaction

WRITERS = 8
SECONDS = 10.0
VERIFY_EVENTS = 1_000_000
PROOF_EVENTS = 10_000_000
HARNESS_EVENTS = 100_000
BATCH = 20_000
HEAD_INTERVAL_S = 1.0  # the signer's pause between heads: 600 times as often as the hub's default
EVENTS_PER_TRANSACTION = 20
"""The batched rows: events a transaction, as the hub's session-event sink writes a server's queued events."""


def scratch_directory() -> Path:
    """A temporary folder for the SQLite logs (gigabytes for 10M events), removed at exit."""
    work = Path(tempfile.mkdtemp(prefix="onsite-bench-ledger-"))
    atexit.register(shutil.rmtree, work, True)
    return work


def scratch_postgresql() -> str:
    """A new migrated database, dropped at exit."""
    url = scratch_database()
    migrate(url)
    return url


def scratch_sqlite(directory: Path, name: str) -> str:
    url = f"sqlite:///{directory / name}"
    migrate(url)
    return url


def fill(url: str, events: int, key_path: Path) -> None:
    """`events` chained events and the stored tree over them, written in bulk (SQLite), then one signed head."""
    engine = make_engine(url)
    frontier = merkle.Frontier()
    nodes: list[tuple] = []
    prev, start = audit.GENESIS_HASH, datetime(2026, 1, 1, tzinfo=timezone.utc)
    actions = [AuditEventType.SESSION_ACTIVITY.value, AuditEventType.ENTRY_DECIDE.value, AuditEventType.PERSON_ADD.value]

    def finished(level: int, index: int, h: bytes) -> None:
        nodes.append((level, index, h))

    rows: list[tuple] = []
    raw = engine.raw_connection()
    try:
        for seq in range(1, events + 1):
            action, actor = actions[seq % 3], f"user{seq % 500}"
            created = start + timedelta(milliseconds=seq)
            details = {"client_address": "192.0.2.10", "kind": "execute", "n": seq}
            entry = audit.event_entry(seq=seq, created_at=created, actor=actor, action=action, object=f"session:{actor}",
                                      outcome="OK", details=details, prev_hash=prev)
            h = hashlib.sha256(entry).hexdigest()
            rows.append((seq, created.strftime("%Y-%m-%d %H:%M:%S.%f"), actor, action, f"session:{actor}", "OK",
                         audit.canonical_json(details), prev, h))
            frontier.push(merkle.leaf_hash(entry), finished, ledger.STORED_LEVEL)
            prev = h
            if len(rows) == BATCH or seq == events:
                cursor = raw.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                cursor.executemany("INSERT INTO audit_event (seq, created_at, actor, action, object, outcome, details, "
                                   "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                cursor.executemany("INSERT INTO audit_tree_node (level, idx, hash) VALUES (?, ?, ?)", nodes)
                cursor.execute("COMMIT")
                rows, nodes = [], []
    finally:
        raw.close()
    ledger.sign_head(session_factory(engine), ledger.signing_key(key_path))
    engine.dispose()


def append(session: Session) -> None:
    audit.record(session, AuditEventType.SESSION_ACTIVITY, actor="bench", object="session:bench",
                 details={"kind": "execute", "code": "x = 1"})


def append_as_before(session: Session) -> None:
    """The peer: the append as it was before this version (cec192b), the event chained by the client under the
    ledger lock: lock and head read in one message, the hash computed here, the row inserted through the ORM, the
    commit asynchronous and its WAL flush waited for after it (group commit, `audit.wait_until_durable`) on a
    second pooled connection; the lock held over two client round trips (insert, commit)."""
    details = audit.canonical_json({"kind": "execute", "code": "x = 1"})
    session.flush()
    last_seq, prev_hash = audit.locked_head(session)
    created_at = datetime.now(timezone.utc)
    event = AuditEvent(seq=last_seq + 1, created_at=created_at, actor="bench", action=AuditEventType.SESSION_ACTIVITY,
                       object="session:bench", outcome=Outcome.OK, details=details, prev_hash=prev_hash)
    event.hash = audit.event_hash(seq=event.seq, created_at=created_at, actor="bench", action=event.action.value,
                                  object="session:bench", outcome="OK", details=json.loads(details), prev_hash=prev_hash)
    session.add(event)
    session.flush()
    session.info[audit.TRANSACTION_HEAD] = (session.get_transaction(), event.seq, event.hash)


def appender(url: str, seconds: float, go: Path, kind: str, key_path: Path, per_transaction: int = 1) -> None:
    """One writer process: wait for `go`, append (`ours`, `peer`: `per_transaction` events a transaction) or sign
    heads (`sign`) for `seconds`, print the count of events."""
    factory = session_factory(make_engine(url))
    while not go.exists():
        time.sleep(0.001)
    end, n = time.perf_counter() + seconds, 0
    key = ledger.signing_key(key_path) if kind == "sign" else None
    write = append if kind == "ours" else append_as_before
    while time.perf_counter() < end:
        if key is not None:
            ledger.sign_head(factory, key)
            time.sleep(HEAD_INTERVAL_S)
            n += 1
        else:
            with transaction(factory) as session:
                for _ in range(per_transaction):
                    write(session)
            n += per_transaction
    print(n)


def appends_per_second(url: str, writers: int, seconds: float, with_signer: bool, work: Path,
                       per_transaction: int = 1) -> float:
    go = work / f"go-{uuid.uuid4().hex}"
    command = [sys.executable, "-m", "bench.bench_ledger", "--writer", url, str(seconds), str(go)]
    kind = "ours" if with_signer else "peer"
    processes = [subprocess.Popen([*command, kind, str(per_transaction)], stdout=subprocess.PIPE, text=True)
                 for _ in range(writers)]
    if with_signer:
        processes.append(subprocess.Popen([*command, "sign", str(work / "key.pem")], stdout=subprocess.PIPE, text=True))
    time.sleep(3.0)  # every process imported and connected
    go.touch()
    counts = [int(p.communicate(timeout=seconds + 120)[0].split()[-1]) for p in processes]
    return sum(counts[:writers]) / seconds


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def verify_pair(factory, public) -> tuple[Callable[[], None], Callable[[], None]]:
    """Ours (chain + Merkle tree + heads) and the peer (today's hash chain) over one store."""

    def ours() -> None:
        with factory() as session:
            assert ledger.verify(session, public).ok

    def peer() -> None:
        with factory() as session:
            assert audit.verify(session).ok

    return ours, peer


def verify_both(url: str, key_path: Path) -> tuple[float, float]:
    engine = make_engine(url)
    try:
        ours, peer = verify_pair(session_factory(engine), ledger.signing_key(key_path).public_key())
        return timed(ours), timed(peer)
    finally:
        engine.dispose()


def proof_both(url: str, samples: int, key_path: Path) -> tuple[float, float, int]:
    """Median time of an inclusion proof of a random event; the chain's re-check from one random event."""
    engine = make_engine(url)
    factory = session_factory(engine)
    rng = random.Random(17)
    try:
        with factory() as session:
            size = session.scalar(select(func.max(AuditEvent.seq)))
            head = ledger.newest_head(session)
            times = []
            for _ in range(samples):
                seq = rng.randint(1, size)
                began = time.perf_counter()
                proof = ledger.inclusion_proof(session, seq, head)
                times.append(time.perf_counter() - began)
            assert "is in" in ledger.check_proof(proof, ledger.signing_key(key_path).public_key())
            seq = rng.randint(1, size)
            began = time.perf_counter()
            prev = None
            for row in audit.chain_rows(session, after=seq - 1):
                entry = audit.stored_entry(row)
                assert hashlib.sha256(entry).hexdigest() == row.hash and (prev is None or row.prev_hash == prev)
                prev = row.hash
            chain = time.perf_counter() - began
        return statistics.median(times), chain, size - seq + 1
    finally:
        engine.dispose()


def cases(ctx: Context) -> list[Case]:
    work = scratch_directory()
    key = work / "key.pem"
    url = scratch_sqlite(work, "verify.sqlite")
    fill(url, HARNESS_EVENTS, key)
    engine = make_engine(url)
    factory = session_factory(engine)
    atexit.register(engine.dispose)
    ours, peer = verify_pair(factory, ledger.signing_key(key).public_key())
    return [Case("ledger_verify", ours, "hash chain (audit.verify)", peer, repeat=3,
                 note=f"SQLite, {HARNESS_EVENTS:,} events: chain + Merkle tree + head vs chain")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=WRITERS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--verify-events", type=int, default=VERIFY_EVENTS)
    parser.add_argument("--proof-events", type=int, default=PROOF_EVENTS)
    parser.add_argument("--only", choices=["appends", "verify", "proof"], action="append")
    args = parser.parse_args(argv)
    only = set(args.only or ["appends", "verify", "proof"])
    work = scratch_directory()
    key = work / "key.pem"
    lines = ["| benchmark | peer (hash chain) | ours (Merkle tree) | ratio | note |", "|---|---|---|---|---|"]

    def row(name: str, peer: str, ours: str, ratio: float, note: str) -> None:
        lines.append(f"| {name} | {peer} | {ours} | {ratio:.3f} | {note} |")
        print(lines[-1], flush=True)

    if "appends" in only:
        for backend in ("sqlite", "postgresql"):
            url = scratch_sqlite(work, f"appends-{backend}.sqlite") if backend == "sqlite" else scratch_postgresql()
            peer = appends_per_second(url, args.writers, args.seconds, False, work)
            ours = appends_per_second(url, args.writers, args.seconds, True, work)
            row(f"appends_{backend}", f"{peer:,.0f}/s", f"{ours:,.0f}/s", peer / ours, f"{args.writers} writer processes, "
                f"{args.seconds:g} s, one event a transaction; ours with a head signer beside them"
                + "; peer: the client chains under the lock (before 50ac66d), ours: chained at commit")
            n = EVENTS_PER_TRANSACTION
            peer = appends_per_second(url, args.writers, args.seconds, False, work, n)
            ours = appends_per_second(url, args.writers, args.seconds, True, work, n)
            row(f"appends_{backend}_batched", f"{peer:,.0f}/s", f"{ours:,.0f}/s", peer / ours, f"as above, {n} events a "
                "transaction (the session-event sink's way: a server's queued events in one transaction)")
    if "verify" in only:
        url = scratch_sqlite(work, "verify.sqlite")
        began = time.perf_counter()
        fill(url, args.verify_events, key)
        print(f"# filled {args.verify_events:,} events in {time.perf_counter() - began:.1f} s", flush=True)
        ours, peer = verify_both(url, key)
        row("verify", f"{peer:.1f} s", f"{ours:.1f} s", ours / peer, f"SQLite, {args.verify_events:,} events, one run each")
    if "proof" in only:
        url = scratch_sqlite(work, "proof.sqlite")
        began = time.perf_counter()
        fill(url, args.proof_events, key)
        print(f"# filled {args.proof_events:,} events in {time.perf_counter() - began:.1f} s", flush=True)
        proof, chain, walked = proof_both(url, 200, key)
        row("inclusion_proof", f"{chain:.1f} s", f"{proof * 1000:.2f} ms", proof / chain,
            f"SQLite, {args.proof_events:,} events; ours: median of 200 random events; peer: chain re-checked from one "
            f"random event to the head ({walked:,} events)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--writer"]:
        url, seconds, go, kind = sys.argv[2], float(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
        appender(url, seconds, go, kind, Path(sys.argv[6]) if kind == "sign" else Path(),
                 1 if kind == "sign" else int(sys.argv[6]))
    else:
        sys.exit(main())
