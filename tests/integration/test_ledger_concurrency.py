"""Several OS processes append to the ledger at once: the chain must not fork;
administrators editing at the same moment see each other's changes.

Run as a script, this file is one writer:
`python test_ledger_concurrency.py events URL NAME N BARRIER_DIR` or `… admin URL NAME BARRIER_DIR`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

WRITERS = 4
EVENTS_PER_WRITER = 25


def wait_for_go(barrier: Path, name: str) -> None:
    """Say ready, then wait until the test says go: every writer starts at the same moment."""
    (barrier / f"ready-{name}").touch()
    deadline = time.time() + 120
    while not (barrier / "go").exists():
        if time.time() > deadline:
            raise TimeoutError("no go signal")
        time.sleep(0.002)


def start_together(args: list[list[str]], barrier: Path) -> list[subprocess.Popen]:
    processes = [subprocess.Popen([sys.executable, __file__, *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in args]
    deadline = time.time() + 120
    while len(list(barrier.glob("ready-*"))) < len(processes):
        assert time.time() < deadline and all(p.poll() is None for p in processes), [p.communicate() for p in processes if p.poll() is not None]
        time.sleep(0.01)
    (barrier / "go").touch()
    return processes


def write_events(url: str, name: str, n: int, barrier: Path) -> None:
    from access_control import audit, policy
    from onsite_base.db import make_engine, session_factory, transaction
    from access_control.enums import AuditEventType

    factory = session_factory(make_engine(url))
    wait_for_go(barrier, name)
    began = time.time()
    for i in range(n):
        with transaction(factory) as session:
            if i % 5 == 0:  # a policy change and its event, as the admin CLI does
                policy.add_person(session, username=f"{name}_{i}", display_name=name, actor=f"writer:{name}")
            else:
                audit.record(session, AuditEventType.SESSION_START, actor=f"writer:{name}", object=f"n:{i}", details={"i": i})
    print(began, time.time())


@pytest.mark.integration
def test_concurrent_writers_never_fork_the_chain(db_url, db, tmp_path):
    writers = start_together([["events", db_url, f"w{k}", str(EVENTS_PER_WRITER), str(tmp_path)] for k in range(WRITERS)], tmp_path)
    windows = []
    for writer in writers:
        out, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err
        windows.append(tuple(map(float, out.split())))
    # The writers really ran at the same time: every one started before any finished.
    assert max(start for start, _ in windows) < min(end for _, end in windows), windows

    from access_control import audit

    with db() as session:
        result = audit.verify(session)
        assert result.ok, result.problem
        assert result.checked == WRITERS * EVENTS_PER_WRITER
        forks = session.execute(text("SELECT prev_hash FROM audit_event GROUP BY prev_hash HAVING COUNT(*) > 1")).all()
        assert forks == []
        actors = [row[0] for row in session.execute(text("SELECT actor FROM audit_event ORDER BY seq"))]
        people = session.execute(text("SELECT COUNT(*) FROM person")).scalar_one()
    assert {a: actors.count(a) for a in set(actors)} == {f"writer:w{k}": EVENTS_PER_WRITER for k in range(WRITERS)}
    assert people == WRITERS * EVENTS_PER_WRITER // 5


def add_same_person(url: str, name: str, barrier: Path) -> int:
    """What `onsite admin person add bob …` does, at the same moment as the others."""
    from access_control import policy
    from onsite.commands import admin as cli
    from onsite_base.errors import UserError
    from onsite_base.settings import Settings

    settings = Settings(home=barrier, db_url=url)
    cli.migrate(url)

    def work(session) -> int:
        policy.add_person(session, username="bob", display_name=f"Bob by {name}", actor=f"admin:{name}")
        return 0

    wait_for_go(barrier, name)  # not inside the transaction: the ledger lock would hold the others back
    try:
        return cli.in_transaction(settings, work)
    except UserError as e:
        print(e)
        return 2


@pytest.mark.integration
def test_concurrent_admins_adding_the_same_person(db_url, db, tmp_path):
    admins = start_together([["admin", db_url, f"a{k}", str(tmp_path)] for k in range(WRITERS)], tmp_path)
    results = [(a.wait(timeout=120), a.stdout.read(), a.stderr.read()) for a in admins]
    assert sorted(code for code, _, _ in results) == [0] + [2] * (WRITERS - 1), results
    assert all("person 'bob' already exists" in out for code, out, _ in results if code == 2), results

    from access_control import audit

    with db() as session:
        assert audit.verify(session).ok
        assert session.execute(text("SELECT COUNT(*) FROM person WHERE username = 'bob'")).scalar_one() == 1
        assert session.execute(text("SELECT COUNT(*) FROM audit_event WHERE action = 'PERSON_ADD'")).scalar_one() == 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    if sys.argv[1] == "events":
        write_events(sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))
    else:
        sys.exit(add_same_person(sys.argv[2], sys.argv[3], Path(sys.argv[4])))
