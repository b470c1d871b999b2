"""Several OS processes append to the ledger at once: the chain must not fork.

Run as a script, this file is one writer: `python test_ledger_concurrency.py URL NAME N START`.
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
    for i in range(n):
        with transaction(factory) as session:
            if i % 5 == 0:  # a policy change and its event, as the admin CLI does
                policy.add_person(session, username=f"{name}_{i}", display_name=name, actor=f"writer:{name}")
            else:
                audit.record(session, AuditEventType.SESSION_START, actor=f"writer:{name}", object=f"n:{i}", details={"i": i})


@pytest.mark.integration
def test_concurrent_writers_never_fork_the_chain(db_url, db):
    start_at = time.time() + 3.0  # past every writer's import time
    writers = [
        subprocess.Popen([sys.executable, __file__, db_url, f"w{k}", str(EVENTS_PER_WRITER), str(start_at)], stderr=subprocess.PIPE, text=True)
        for k in range(WRITERS)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err

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
    # The writers really overlapped: the chain is not one writer's block after another.
    switches = sum(1 for a, b in zip(actors, actors[1:]) if a != b)
    assert switches > WRITERS - 1, actors


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    write_events(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
