"""Sessions as Slurm jobs (`HubSettings.session_engine = "slurm"`), for real: a one-node cluster (munged,
slurmctld, slurmd with Onsite's Prolog and Epilog) on this machine, a real hub running as root submitting
through batchspawner, a researcher's kernel running a query, the node's isolation controls attacked, and the
session ended from the admin side with its job gone.

`tanaka` (project p-demo, granted lfs_demo) works; `lfs_other` is granted to nobody.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from access_control import audit
from access_control.enums import AuditEventType
from bench import slurm_cluster
from functional.hubtools import HubUser, RunningHub
from functional.seeding import OTHER_DATASET, revoke_grant, seed_attacks, seed_demo
from hub_config import isolation, netfilter
from onsite.demo import DEMO_DATASET, DEMO_PROJECT
from onsite_base.db import make_engine, session_factory
from security._isolation_fixtures import token_in_memory
from security.test_network_attacks import as_session_account, kernel_connect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def slurm_hub():
    if os.geteuid() != 0:
        pytest.skip("Slurm sessions need a hub running as root")
    if slurm_cluster.missing():
        pytest.skip(f"missing {slurm_cluster.missing()}: apt-get install slurm-wlm munge (scripts/test.sh does)")
    base = Path(tempfile.mkdtemp(prefix="onsite-slurm-"))
    os.chmod(base, 0o711)
    cluster = slurm_cluster.SlurmCluster(base / "slurm")
    settings, logins = seed_demo(base / "home", rows=500)
    seed_attacks(settings)
    (settings.home / "onsite_config.py").write_text(
        cluster.onsite_config() +
        "c.OnsiteSpawner.recheck_interval = 2\n"
        "c.OnsiteSpawner.session_limits = {'memory_mb': 6144, 'cpus': 1}\n")
    hub = RunningHub(settings.home)
    hub.env["ONSITE_SESSION_ENGINE"] = "slurm"
    try:
        cluster.start()
        hub.start()
        yield hub, cluster, settings, logins
    finally:
        hub.stop()
        for job in cluster.jobs():
            cluster.run("scancel", job["id"])
        cluster.stop()
        kept = Path(tempfile.gettempdir()) / "onsite-slurm-kept"  # the logs, kept for a failed run
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(cluster.base / "jobs", kept, dirs_exist_ok=True)
        shutil.copytree(cluster.base / "log", kept, dirs_exist_ok=True)
        shutil.copy(hub.log_path, kept)
        shutil.rmtree(base, ignore_errors=True)
        assert not hub.survivors, f"session accounts kept processes after the run: {hub.survivors}"


@pytest.fixture(scope="module")
def session(slurm_hub):
    hub, cluster, settings, logins = slurm_hub
    user = HubUser(hub, "tanaka")
    assert user.login(logins["tanaka"].password).status_code == 302
    user.start_server(timeout=120)
    assert user.open_server().status_code == 200
    return hub, cluster, settings, user, user.start_kernel()


def account_uid(hub: RunningHub, username: str) -> int:
    return pwd.getpwnam(isolation.account_name(hub.names.account_prefix, username)).pw_uid


def result_of(user: HubUser, kernel: str, code: str):
    result = user.execute(kernel, code + "\nimport json as _j; print('RESULT ' + _j.dumps(out))")
    assert result.error is None, result.error
    return json.loads(next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])


def test_the_session_is_a_slurm_job_submitted_by_the_hub(session):
    hub, cluster, _, _, _ = session
    [job] = [j for j in cluster.jobs() if j["name"] == "onsite-tanaka"]
    uid = account_uid(hub, "tanaka")
    assert job["state"] == "RUNNING" and job["user"] == "root"
    assert job["comment"].startswith(f"onsite-session uid={uid} allow=127.0.0.1:")
    script = cluster.run("scontrol", "write", "batch_script", job["id"], "-").stdout
    assert "#SBATCH --mem=6144M" in script and "#SBATCH --cpus-per-task=1" in script
    assert "-m hub_config.slurm_job " in script


def test_a_query_runs_in_the_kernel_as_the_researcher_with_the_granted_groups_only(session):
    hub, _, settings, user, kernel = session
    out = result_of(user, kernel, "import os, resource, analysis_kernel\ndb = analysis_kernel.connect()\n"
                    f"n = db.sql('SELECT count(*) FROM {DEMO_DATASET}').fetchall()[0][0]\n"
                    "out = {'uid': os.getuid(), 'groups': sorted(os.getgroups()), 'rows': n, "
                    "'as': resource.getrlimit(resource.RLIMIT_AS)[0], 'job': os.environ.get('SLURM_JOB_ID')}")
    assert out["uid"] == account_uid(hub, "tanaka") and out["rows"] == 500
    granted_gid = os.stat(settings.datasets_dir / f"{DEMO_DATASET}.duckdb").st_gid
    assert len(out["groups"]) == 1  # the kernel's own user namespace shows it unmapped; the server, from outside:
    assert server_status(account_uid(hub, "tanaka"))["Groups"].split() == [str(granted_gid)]
    assert out["as"] == 6144 * 2**20
    assert out["job"] is None  # the kernel's environment is the locked kernelspec's, not the job's


def test_a_dataset_not_granted_cannot_be_read(session, record_attempt):
    _, _, settings, user, kernel = session
    other = settings.datasets_dir / f"{OTHER_DATASET}.duckdb"
    assert other.exists()
    out = result_of(user, kernel, f"try:\n    open({str(other)!r}, 'rb').read(16)\n    out = 'read'\n"
                    "except Exception as e:\n    out = type(e).__name__")
    assert out == "PermissionError"
    record_attempt("slurm", "read a dataset not granted from the kernel of a Slurm session", out)


def test_the_kernel_reaches_no_address(session, record_attempt):
    _, _, _, user, kernel = session
    assert kernel_connect(user, kernel, [("127.0.0.1", 5432), ("10.0.0.1", 80)]) == ["ENETUNREACH", "ENETUNREACH"]
    record_attempt("slurm", "connect from the kernel of a Slurm session to PostgreSQL and an outside address", "ENETUNREACH")


def test_the_nodes_prolog_confined_the_session_account_to_the_hub_and_review_service(session, record_attempt):
    hub, cluster, _, _, _ = session
    uid = account_uid(hub, "tanaka")
    assert netfilter.table_name(uid) in netfilter.session_tables(), "the Prolog wrote no nftables table"
    [job] = [j for j in cluster.jobs() if j["name"] == "onsite-tanaka"]
    allowed = {int(e.rsplit(":", 1)[1]) for e in job["comment"].split("allow=")[1].split(",")}
    hub_api = int((hub.home / "run" / "hub-api-url").read_text().strip().rsplit(":", 1)[1].split("/")[0])
    assert hub_api in allowed
    assert as_session_account(uid, "127.0.0.1", hub_api) == "connected"
    for host, port in (("127.0.0.1", 5432), ("127.0.0.1", hub.port), ("10.0.0.1", 80)):
        assert as_session_account(uid, host, port) in ("ECONNREFUSED", "EACCES", "EPERM", "EHOSTUNREACH"), (host, port)
    record_attempt("slurm", "connect as a Slurm session's account on the node to PostgreSQL, the hub's public port and an "
                   "outside address", "refused by the node's nftables table (Prolog)")


def server_pid(uid: int) -> int:
    for pid in isolation.account_processes(uid):
        try:
            if b"jupyterhub-singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise AssertionError("no single-user server process of the account")


def server_status(uid: int) -> dict[str, str]:
    lines = Path(f"/proc/{server_pid(uid)}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_the_server_has_the_spawners_environment_not_roots_login_environment_on_the_node(session):
    """The job passes on sbatch's environment (the spawner's) as it is: an `--export` list of names would make slurmd
    load the job user's login environment first (`su - root` on the node) and hand root's LOGNAME and MAIL on."""
    hub, _, _, _, _ = session
    raw = Path(f"/proc/{server_pid(account_uid(hub, 'tanaka'))}/environ").read_bytes().decode()
    environ = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
    assert "LOGNAME" not in environ and "MAIL" not in environ, sorted(environ)
    assert environ["USER"] == isolation.account_name(hub.names.account_prefix, "tanaka")


def test_the_server_cannot_set_its_spawners_attributes_through_the_port_api(session, record_attempt):
    hub, cluster, _, _, _ = session
    token = token_in_memory(server_pid(account_uid(hub, "tanaka")))
    url = f"{hub.url}/hub/api/batchspawner"
    headers = {"Authorization": f"token {token}"}
    for body in ({"job_id": "1"}, {"port": 1, "ip": "10.0.0.1"}, {"port": 2}):
        assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 403, body  # not starting
    assert [j["name"] for j in cluster.jobs()] == ["onsite-tanaka"]
    record_attempt("slurm", "set the spawner's job id, address or port through /hub/api/batchspawner with the server's token",
                   "HTTP 403")


def test_ended_by_an_administrator_the_job_is_cancelled_and_the_node_cleaned(session):
    hub, cluster, _, user, _ = session
    uid = account_uid(hub, "tanaka")
    ended = subprocess.run([sys.executable, "-m", "onsite.cli", "admin", "sessions", "end", "tanaka", "--reason", "test"],
                           env={**hub.env}, capture_output=True, text=True, timeout=120)
    assert ended.returncode == 0, ended.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (cluster.jobs() or netfilter.table_name(uid) in netfilter.session_tables()
                                           or isolation.account_processes(uid)):
        time.sleep(0.2)
    assert cluster.jobs() == []
    assert netfilter.table_name(uid) not in netfilter.session_tables()  # the Epilog dropped it
    assert isolation.account_processes(uid) == []


def test_user_options_never_reach_the_job_script(session, record_attempt):
    """The job script runs as root: a researcher's spawn options naming a command or sbatch options are ignored."""
    hub, cluster, _, user, _ = session
    api = f"{hub.url}/hub/api/users/tanaka/server"
    marker = Path(tempfile.gettempdir()) / f"onsite-slurm-injected-{os.getpid()}"
    options = {"cmd": f"touch {marker}", "options": "--uid=0", "prologue": f"touch {marker}",
               "comment": "onsite-session uid=0 allow=", "keepvars": "ALL"}
    r = user.http.post(api, json=options, headers=user._hub_xsrf(), timeout=30)
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not user.http.get(f"{hub.url}/hub/api/users/tanaka", headers=user._hub_xsrf(),
                                                          timeout=10).json().get("servers", {}).get("", {}).get("ready"):
        time.sleep(0.3)
    [job] = cluster.jobs()
    script = cluster.run("scontrol", "write", "batch_script", job["id"], "-").stdout
    assert str(marker) not in script and "--uid" not in script and "--export=ALL" not in script, script
    assert job["comment"].startswith(f"onsite-session uid={account_uid(hub, 'tanaka')} ")
    assert not marker.exists()
    record_attempt("slurm", "spawn options naming a command, sbatch options and a job comment for the root job script",
                   "ignored: not in the script, nothing run")


def test_a_dataset_file_that_is_not_the_catalogues_stops_the_start_on_the_node(session, record_attempt):
    """A replaced (or stale) dataset on the shared path: the node checks it against the catalogue before the session."""
    hub, cluster, settings, user, _ = session
    ended = subprocess.run([sys.executable, "-m", "onsite.cli", "admin", "sessions", "end", "tanaka", "--reason", "test"],
                           env={**hub.env}, capture_output=True, text=True, timeout=120)
    assert ended.returncode == 0, ended.stderr
    granted = settings.datasets_dir / f"{DEMO_DATASET}.duckdb"
    kept = granted.with_suffix(".kept")
    shutil.copy2(granted, kept)
    try:
        shutil.copyfile(settings.datasets_dir / f"{OTHER_DATASET}.duckdb", granted)
        with pytest.raises(RuntimeError, match="stopped while starting"):
            user.start_server(timeout=120)
        log = "\n".join(p.read_text(errors="replace") for p in (cluster.base / "jobs").glob("session-*.log"))
        assert "is not the catalogue's" in log
        assert cluster.jobs() == []
    finally:
        os.replace(kept, granted)
    record_attempt("slurm", "start a Slurm session on a node whose granted dataset file is not the catalogue's",
                   "refused on the node before the session, no job left")


def test_a_revoked_grant_ends_the_job_at_the_next_entry_recheck(session):
    """The periodic entry re-check (every 2 s here) ends a Slurm session as it ends a local one: scancel."""
    hub, cluster, settings, user, _ = session
    user.start_server(timeout=120)
    assert [j["name"] for j in cluster.jobs()] == ["onsite-tanaka"]
    revoke_grant(settings, DEMO_PROJECT, DEMO_DATASET)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and cluster.jobs():
        time.sleep(0.2)
    assert cluster.jobs() == [], "the re-check did not cancel the job"
    engine = make_engine(settings.db_url)
    try:  # SESSION_STOP follows once batchspawner's stop has seen the job gone (it asks once a second)
        while True:
            with session_factory(engine)() as db:
                stop = json.loads(audit.find_events(db, action=AuditEventType.SESSION_STOP, limit=1)[0].details)
            if stop["stopped_by"] == "recheck" or time.monotonic() > deadline + 30:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    assert (stop["stopped_by"], stop["reason"]) == ("recheck", f"GRANT_REVOKED:{DEMO_DATASET}"), stop
