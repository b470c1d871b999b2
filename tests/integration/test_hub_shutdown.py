"""Ctrl-C stops the hub and everything it started within seconds.

The hub is started the way a background job of a non-interactive shell is,
with SIGINT ignored: an ignored signal stays ignored across exec, so without
the reset in `hub_config.config.reset_sigint` the proxy, the review service and
the servers would each be waited for until their timeouts (about a minute).
"""
from __future__ import annotations

import os
import time

import pytest

from functional.hubtools import HubUser, RunningHub
from functional.seeding import audit_events, seed_demo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigint_stops_hub_proxy_service_server_and_kernel_quickly(tmp_path):
    settings, logins = seed_demo(tmp_path / "home", rows=500)
    hub = RunningHub(settings.home, sigint_ignored=True).start()
    try:
        researcher = HubUser(hub, "tanaka")
        assert researcher.login(logins["tanaka"].password).status_code == 302
        researcher.start_server()
        assert researcher.open_server().status_code == 200
        researcher.start_kernel()
        started = hub.descendants()
        # proxy, review service, single-user server, kernel (at least)
        assert len(started) >= 4, hub.log_tail()
    finally:
        seconds = hub.stop(timeout=60)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.2)
    # Without the reset each child is waited for until its timeout, about a minute; a clean exit takes a few
    # seconds alone and up to 15 beside two other hubs on 2 cores (make test).
    assert seconds < 30, f"Ctrl-C took {seconds:.1f} s:\n{hub.log_tail()}"
    assert not [p for p in started if alive(p)], "processes left running after Ctrl-C"
    assert len(audit_events(settings, "SESSION_START", "tanaka")) == 1
    assert len(audit_events(settings, "SESSION_STOP", "tanaka")) == 1  # the stop on shutdown is in the ledger
