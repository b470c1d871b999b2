"""Several OS processes append to the ledger at once: the chain must not fork;
administrators editing at the same moment see each other's changes.

Run as a script, this file is one writer:
`python test_ledger_concurrency.py events URL NAME N START` or `… admin URL NAME START`.
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


def write_events(url: str, name: str, n: int, start_at: float) -> None:
    from access_control import audit, policy
    from access_control.db import make_engine, session_factory, transaction
    from access_control.enums import AuditEventType

    factory = session_factory(make_engine(url))
    time.sleep(max(0.0, start_at - time.time()))  # all writers begin together
    began = time.time()
    for i in range(n):
        with transaction(factory) as session:
            if i % 5 == 0:  # a policy change and its event, as the admin CLI does
                policy.add_person(session, username=f"{name}_{i}", display_name=name, actor=f"writer:{name}")
            else:
                audit.record(session, AuditEventType.SESSION_START, actor=f"writer:{name}", object=f"n:{i}", details={"i": i})
    print(began, time.time())


@pytest.mark.integration
def test_concurrent_writers_never_fork_the_chain(db_url, db):
    start_at = time.time() + 3.0  # past every writer's import time
    writers = [
        subprocess.Popen(
            [sys.executable, __file__, "events", db_url, f"w{k}", str(EVENTS_PER_WRITER), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(WRITERS)
    ]
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


def add_same_person(url: str, name: str, start_at: float) -> int:
    """What `onsite admin person add bob …` does, started at the same moment as others."""
    from access_control import cli, policy
    from onsite.errors import UserError
    from onsite.settings import Settings

    settings = Settings(home=Path("/nonexistent"), db_url=url)

    def work(session) -> int:
        # Every admin reaches this point (inside the transaction) before any checks for bob.
        time.sleep(max(0.0, start_at - time.time()))
        policy.add_person(session, username="bob", display_name=f"Bob by {name}", actor=f"admin:{name}")
        return 0

    try:
        return cli.in_transaction(settings, work)
    except UserError as e:
        print(e)
        return 2


@pytest.mark.integration
def test_concurrent_admins_adding_the_same_person(db_url, db):
    start_at = time.time() + 5.0
    admins = [
        subprocess.Popen([sys.executable, __file__, "admin", db_url, f"a{k}", str(start_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(WRITERS)
    ]
    results = [(a.wait(timeout=120), a.stdout.read(), a.stderr.read()) for a in admins]
    assert sorted(code for code, _, _ in results) == [0] + [2] * (WRITERS - 1), results
    assert all("person 'bob' already exists: use" in out for code, out, _ in results if code == 2), results

    from access_control import audit

    with db() as session:
        assert audit.verify(session).ok
        assert session.execute(text("SELECT COUNT(*) FROM person WHERE username = 'bob'")).scalar_one() == 1
        assert session.execute(text("SELECT COUNT(*) FROM audit_event WHERE action = 'PERSON_ADD'")).scalar_one() == 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    if sys.argv[1] == "events":
        write_events(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(add_same_person(sys.argv[2], sys.argv[3], float(sys.argv[4])))
