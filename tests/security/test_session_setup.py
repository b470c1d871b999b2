"""A session's set-up, watched from outside the hub: no transaction is open while the OS
works, SESSION_START is written only once the network rules are in place and the server
runs, and a set-up that fails is in the ledger and told to the researcher.

A real isolated hub (running as root) whose PATH starts with two probes, `useradd` and
`nft`: each looks at the policy store from its own process (can another writer take
SQLite's write lock now? how many SESSION_START has the researcher?), then runs the real
tool. useradd is the first OS step of a new account and `nft -f` the last, so together
they bracket the set-up.

This hub starts servers as new interpreters (`fork_servers` off), so its sessions also show
that path isolating a server as the forked one does (the other modules' hubs fork them).
"""
from __future__ import annotations

import grp
import html
import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
from _isolation_fixtures import running_isolated_hub

from functional.hubtools import HubUser
from functional.seeding import LOCKED_PASSWORD, LOCKED_RESEARCHER
from hub_config import isolation, netfilter
from hub_config.spawner import SetupStep, setup_failure_message

PROBE = '''#!/usr/bin/python3 -I
import json, os, sqlite3, sys
tool, db, log, real = {tool!r}, {db!r}, {log!r}, {real!r}
seen = {{"tool": tool, "args": sys.argv[1:]}}
con = sqlite3.connect(db, timeout=1, isolation_level=None)
try:
    con.execute("BEGIN IMMEDIATE")  # what any other writer (the admin CLI, the review service) needs
    con.execute("ROLLBACK")
    seen["write_lock"] = "free"
except sqlite3.OperationalError as e:
    seen["write_lock"] = "held: " + str(e)
seen["session_starts"] = con.execute(
    "SELECT actor, outcome FROM audit_event WHERE action = 'SESSION_START'").fetchall()
con.close()
with open(log, "a") as out:
    out.write(json.dumps(seen) + "\\n")
os.execv(real, [real, *sys.argv[1:]])
'''


@pytest.fixture(scope="module")
def probed_hub(request):
    probes = Path(tempfile.mkdtemp(prefix="onsite-probes-"))
    os.chmod(probes, 0o755)
    log = probes / "seen.jsonl"
    with running_isolated_hub(request, path_prefix=probes, config="c.OnsiteSpawner.fork_servers = False\n") as hub:
        db = hub.settings.db_url.split("///", 1)[1]
        for tool in ("useradd", "nft"):
            real = shutil.which(tool, path="/usr/sbin:/sbin")
            probe = probes / tool
            probe.write_text(PROBE.format(tool=tool, db=db, log=str(log), real=real))
            probe.chmod(0o755)
        yield hub, log
    shutil.rmtree(probes, ignore_errors=True)


def seen_by_probes(log: Path, tool: str) -> list[dict]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [entry for entry in map(json.loads, lines) if entry["tool"] == tool]


def session_starts(settings, username: str) -> list[tuple[str, dict]]:
    with sqlite3.connect(settings.db_url.split("///", 1)[1]) as con:
        rows = con.execute("SELECT outcome, details FROM audit_event WHERE action = 'SESSION_START' AND actor = ? "
                           "ORDER BY seq", (username,)).fetchall()
    return [(outcome, json.loads(details)) for outcome, details in rows]


def test_no_transaction_is_open_while_the_os_works_and_session_start_follows_the_firewall(probed_hub):
    hub, log = probed_hub
    user = HubUser(hub.hub, "tanaka")
    assert user.login(hub.logins["tanaka"].password).status_code == 302
    assert user.start_server().status_code in (201, 202)
    account = hub.account("tanaka")

    useradd = [e for e in seen_by_probes(log, "useradd") if account.pw_name in e["args"]]
    assert len(useradd) == 1, "the account is new: useradd ran once"
    firewall = [e for e in seen_by_probes(log, "nft") if e["args"][:1] == ["-f"]]
    assert len(firewall) == 1
    for step in (useradd[0], firewall[0]):  # another writer got the lock while the hub worked
        assert step["write_lock"] == "free", step
    # While the rules were being loaded no SESSION_START of tanaka existed; now one does,
    # and the table it promises is there.
    assert [a for a, _ in firewall[0]["session_starts"] if a == "tanaka"] == []
    assert [outcome for outcome, _ in session_starts(hub.settings, "tanaka")] == ["OK"]
    assert netfilter.table_name(account.pw_uid) in netfilter.session_tables()
    hub.record("session set-up", "write to the ledger while the hub creates the OS account and loads the network rules",
               "the write lock was free at both; SESSION_START written after the nftables table existed")


def test_a_server_started_without_the_fork_server_is_the_session_not_the_hub(probed_hub):
    """The exec'd server (its launcher became the session first) runs as the researcher's account with only the
    dataset groups, no new privileges, the session's limits and a mount namespace of its own whose /tmp is not
    the host's."""
    hub, _ = probed_hub
    user = HubUser(hub.hub, "tanaka")
    assert user.login(hub.logins["tanaka"].password).status_code == 302
    assert user.start_server().status_code in (201, 202, 400)  # 400: running already (started by the test above)
    account = hub.account("tanaka")
    (pid,) = [p for p in isolation.account_processes(account.pw_uid)
              if "jupyterhub-singleuser" in Path(f"/proc/{p}/cmdline").read_text()]
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split() == [str(account.pw_uid)] * 4 and status["Gid"].split() == [str(account.pw_gid)] * 4
    assert status["NoNewPrivs"].strip() == "1"
    groups = [grp.getgrgid(int(g)).gr_name for g in status["Groups"].split()]
    assert groups and all(g.startswith(hub.hub.names.group_prefix) for g in groups), groups  # the granted datasets'
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert os.stat(f"/proc/{pid}/root/tmp").st_dev != os.stat("/tmp").st_dev  # its private tmpfs
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert re.search(r"Max core file size\s+0\s+0", limits)
    log = hub.hub.log_path.read_text()
    assert "Spawning tanaka's server" in log and re.search(r"tanaka's session: OS set-up .* \(exec\)", log)
    hub.record("session set-up", "start a server as a new interpreter (fork_servers off), not forked",
               "it runs as the account, dataset groups only, no new privileges, limits set, its own mount namespace and /tmp")


def test_a_set_up_that_fails_is_recorded_and_the_researcher_is_told_why(probed_hub):
    hub, _ = probed_hub
    username = LOCKED_RESEARCHER  # a member of the demo project, whose account this hub has not made yet
    with sqlite3.connect(hub.settings.db_url.split("///", 1)[1]) as con:
        person_id = con.execute("SELECT id FROM person WHERE username = ?", (username,)).fetchone()[0]
    uid_base = hub.uid_base
    squatter = f"{hub.account_prefix}squatter"  # removed with the hub's accounts at the end
    subprocess.run(["useradd", "--uid", str(uid_base + person_id), "--no-create-home", squatter], check=True)
    user = HubUser(hub.hub, username)
    assert user.login(LOCKED_PASSWORD).status_code == 302

    page = user.http.get(f"{hub.hub.url}/hub/spawn/{username}", timeout=60)  # the researcher's "start" button
    assert page.status_code == 500 or "/spawn-pending/" in page.url  # a failure of ours, not of their request
    shown = html.unescape(page.content.decode("utf-8"))
    if "/spawn-pending/" in page.url:  # the set-up outlived the spawn page's first second
        progress = user.http.get(f"{hub.hub.url}/hub/api/users/{username}/server/progress", timeout=60)
        shown = "".join(json.loads(line[5:]).get("message", "") for line in progress.text.splitlines()
                        if line.startswith("data:"))
    assert setup_failure_message(SetupStep.ISOLATION) in shown
    assert "OS アカウントとファイル権限" in shown and "the OS account and file permissions failed" in shown

    (outcome, details), = session_starts(hub.settings, username)
    assert outcome == "FAILED" and details["failed_step"] == "isolation"
    assert f"already belongs to {squatter}" in details["error"] and "OnsiteSpawner.uid_base" in details["error"]
    assert pwd.getpwnam(squatter).pw_uid not in {int(t.removeprefix(netfilter.TABLE_PREFIX))
                                                 for t in netfilter.session_tables()}
    assert isolation.account_processes(uid_base + person_id) == []
    server = user.http.get(f"{hub.hub.url}/hub/api/users/{username}", timeout=10).json().get("servers", {})
    assert server == {}  # no server left behind
    hub.record("session set-up", "start a session whose OS account cannot be created (its uid is taken)",
               "spawn refused with the failed step in ja/en; SESSION_START FAILED with the reason; nothing runs")
