"""A session is torn down even when JupyterHub's own stop of its server fails.

A real `OnsiteSpawner` (no hub) stops a real "server" process running as a
throwaway session uid, with a pid-hopping daemon of that uid and the uid's real
nftables table, while the real `LocalProcessSpawner.stop` fails because
signalling the server fails. Nothing of the account may be left running, its
table must be gone, the failure must be in the ledger, and the stop's own error
must still reach JupyterHub. No hub is started (the stop cannot be made to fail
inside one without changing its code).
"""
from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import LocalProcessSpawner

from access_control import audit
from access_control.enums import AuditEventType, Outcome
from hub_config import isolation, netfilter
from hub_config.isolation import SessionAccount
from hub_config.spawner import OnsiteSpawner
from hopper import HOPPER, beating, started

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a throwaway uid, nftables)")

UID = 299_992


@pytest.fixture
def session_of_uid(db, settings):
    """A spawner whose server and a hopping daemon run as UID, with the uid's nftables table."""
    assert UID not in {p.pw_uid for p in pwd.getpwall()} and not isolation.account_processes(UID)
    shared = Path(tempfile.mkdtemp(prefix="onsite-teardown-"))  # not under pytest's 0700 base directory
    os.chmod(shared, 0o777)
    beat = shared / "beat"
    as_uid = dict(user=UID, group=UID, extra_groups=[], cwd="/", stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = subprocess.Popen(["/usr/bin/python3", "-I", "-c", "import time; time.sleep(600)"], **as_uid)
    subprocess.Popen(["/usr/bin/python3", "-I", "-c", HOPPER, str(beat)], start_new_session=True, **as_uid)
    assert started(beat), "the hopper did not start"
    netfilter.apply_session_rules(UID, [netfilter.Endpoint("127.0.0.1", 1)])
    spawner = OnsiteSpawner(user=SimpleNamespace(name="tanaka"), authenticator=SimpleNamespace(session_factory=db),
                            settings=settings, recheck_interval=0, interrupt_timeout=1, term_timeout=1, kill_timeout=1)
    spawner._account = SessionAccount("onsite-teardown", UID, UID)
    spawner.proc, spawner.pid = server, server.pid
    spawner._session_open = True  # as after a start that wrote SESSION_START: its stop writes the one SESSION_STOP
    try:
        yield spawner, beat
    finally:
        subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=UID, group=UID, extra_groups=[])  # whatever happens
        server.wait()
        netfilter.remove_session_rules(UID)
        shutil.rmtree(shared, ignore_errors=True)


def signal_refused(self, sig):
    raise PermissionError(1, f"Operation not permitted (signal {sig} to {self.pid})")


def session_stop(factory) -> tuple[Outcome, dict]:
    with factory() as session:
        event = audit.find_events(session, action=AuditEventType.SESSION_STOP, limit=1)[0]
    return event.outcome, json.loads(event.details)


def test_a_failing_stop_still_kills_every_process_and_removes_the_network_rules(session_of_uid, db, monkeypatch,
                                                                             record_attempt):
    spawner, beat = session_of_uid
    monkeypatch.setattr(LocalProcessSpawner, "_signal", signal_refused)
    with pytest.raises(PermissionError, match="Operation not permitted"):
        asyncio.run(spawner.stop())
    assert spawner.proc.poll() == -signal.SIGKILL  # the server itself, which the failed stop left running
    assert isolation.account_processes(UID) == []
    assert not beating(beat)  # nor the daemon hopping pids
    assert netfilter.table_name(UID) not in netfilter.session_tables()
    outcome, details = session_stop(db)
    assert outcome is Outcome.FAILED and list(details["failures"]) == ["stop"]
    assert "PermissionError" in details["failures"]["stop"]
    record_attempt("os account", "keep the server, a pid-hopping daemon and the network rules after JupyterHub's stop of the server failed",
                   "all killed, nftables table removed, SESSION_STOP FAILED")


def test_each_teardown_step_is_tried_after_an_earlier_one_failed(session_of_uid, db, monkeypatch):
    spawner, beat = session_of_uid
    monkeypatch.setattr(LocalProcessSpawner, "_signal", signal_refused)

    def kill_fails(uid: int) -> int:
        raise isolation.IsolationError(f"processes [1] of uid {uid} survived 20 rounds of SIGKILL")

    monkeypatch.setattr(isolation, "kill_account_processes", kill_fails)
    with pytest.raises(PermissionError):  # the stop's own error, not the kill's
        asyncio.run(spawner.stop())
    assert netfilter.table_name(UID) not in netfilter.session_tables()  # tried after the kill failed
    outcome, details = session_stop(db)
    assert outcome is Outcome.FAILED and sorted(details["failures"]) == ["kill processes", "stop"]
    assert "survived" in details["failures"]["kill processes"]


def test_a_clean_stop_is_recorded_ok(session_of_uid, db):
    spawner, beat = session_of_uid
    asyncio.run(spawner.stop())
    assert isolation.account_processes(UID) == [] and not beating(beat)
    assert netfilter.table_name(UID) not in netfilter.session_tables()
    outcome, details = session_stop(db)
    assert outcome is Outcome.OK and details["stopped_by"] == "hub" and details["reason"] == "STOP_REQUESTED"
    assert "failures" not in details
