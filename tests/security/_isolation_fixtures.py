"""A real hub running as root with per-user isolation, and the clean-up of what it creates.

The state directory is made under a fresh 0711 directory in /tmp (not under
pytest's 0700 base directory, whose mode another pytest run may reset while a
session runs). The hub's OS names are its own (`functional.hubtools.HubNames`),
so isolated hubs of several modules run at the same time; at the end every OS
account, dataset group and nftables table the hub created is removed.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from functional.hubtools import HubUser, RunningHub
from functional.seeding import seed_attacks, seed_demo
from hub_config import isolation
from onsite_base.settings import Settings

RECHECK_S = 2


@dataclass
class Attempt:
    channel: str
    attempt: str
    result: str


@dataclass
class IsolatedHub:
    hub: RunningHub
    settings: Settings
    logins: dict
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def account_prefix(self) -> str:
        return self.hub.names.account_prefix

    @property
    def uid_base(self) -> int:
        return self.hub.names.uid_base

    def account(self, username: str) -> pwd.struct_passwd:
        """The OS account the hub made for `username`."""
        return pwd.getpwnam(isolation.account_name(self.account_prefix, username))

    def record(self, channel: str, attempt: str, result: str) -> None:
        """One row of the attack summary (channel, attempt, what happened)."""
        self.attempts.append(Attempt(channel, attempt, result))


@contextmanager
def running_isolated_hub(request, *, path_prefix: Path | None = None, config: str = "") -> Iterator[IsolatedHub]:
    """The isolated hub of one test module; `path_prefix` goes first on the hub's PATH
    (a directory of probes that look at the hub from outside, then run the real tool); `config`: lines of the
    module's own for the hub's config file."""
    if os.geteuid() != 0:
        pytest.skip("per-user isolation needs a hub running as root")
    base = Path(tempfile.mkdtemp(prefix="onsite-sec-"))
    os.chmod(base, 0o711)
    settings, logins = seed_demo(base / "home", rows=500)
    seed_attacks(settings)
    # Re-check live sessions every 2 s so that a revoked grant is seen quickly; the hub adds its own names.
    (settings.home / "onsite_config.py").write_text(f"c.OnsiteSpawner.recheck_interval = {RECHECK_S}\n{config}")
    hub = RunningHub(settings.home)
    if path_prefix is not None:
        hub.env["PATH"] = f"{path_prefix}{os.pathsep}{hub.env['PATH']}"
    state = IsolatedHub(hub, settings, logins)
    try:
        hub.start()
        yield state
    finally:
        hub.stop()  # and removes the hub's accounts (killing their processes), groups and nftables tables
        kept_log = Path(tempfile.gettempdir()) / f"onsite-security-hub-{Path(request.node.name).stem}.log"
        shutil.copy(hub.log_path, kept_log)  # kept for a failed run
        shutil.rmtree(base, ignore_errors=True)
        summary = getattr(request.config, "_onsite_attempts", [])
        summary.extend(state.attempts)
        request.config._onsite_attempts = summary
        assert not hub.survivors, f"session accounts kept processes after the run: {hub.survivors}"


@pytest.fixture(scope="module")
def isolated_hub(request):
    with running_isolated_hub(request) as state:
        yield state


def researcher_session(hub: IsolatedHub, username: str, password: str | None = None) -> tuple[HubUser, str]:
    """Log in (with the demo password unless given), start the server, open it, start a kernel;
    returns the user and the kernel id."""
    user = HubUser(hub.hub, username)
    assert user.login(password or hub.logins[username].password).status_code == 302
    user.start_server()
    assert user.open_server().status_code == 200
    return user, user.start_kernel()


def server_pids(hub: IsolatedHub, username: str) -> list[int]:
    """Pids of `username`'s single-user server, as root sees them (a kernel's own PID namespace has no such pid)."""
    def is_server(pid: int) -> bool:
        try:
            return b"jupyterhub-singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # exited since listed
            return False

    return [pid for pid in isolation.account_processes(hub.account(username).pw_uid) if is_server(pid)]


def server_pid(hub: IsolatedHub, username: str) -> int:
    pids = server_pids(hub, username)
    assert len(pids) == 1, pids
    return pids[0]


TOKEN_ENTRY = re.compile(rb"JUPYTERHUB_API_TOKEN=([0-9A-Za-z_-]{16,})\0")


def server_token(hub: IsolatedHub, username: str) -> str:
    """The Hub token `username`'s running server holds, as a thief with root on the host would take it: from
    the server's memory (its environment block, for a server exec'd with it, or the entry putenv made, for one
    forked from the pre-imported server), not from /proc/<pid>/environ, which a forked server never had it in.
    The server is non-dumpable, so no process of the session itself can do this (test_isolation_attacks)."""
    return token_in_memory(server_pid(hub, username))


def token_in_memory(pid: int) -> str:
    """The one Hub token in the writable anonymous memory of process `pid` (see `server_token`)."""
    found: set[bytes] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            span, perms, *rest = line.split()
            if not perms.startswith("rw") or (len(rest) > 3 and rest[3].startswith("/")):
                continue  # only writable anonymous memory (heap, stack, arenas): where an environment entry lives
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                found.update(TOKEN_ENTRY.findall(mem.read(end - start)))
            except (OSError, OverflowError, ValueError):  # a guard page, [vvar], [vsyscall]
                continue
    assert len(found) == 1, f"expected one Hub token in the server's memory, found {len(found)}"
    return found.pop().decode()
