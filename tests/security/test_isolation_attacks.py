"""Attacks on session isolation, each tried from a real kernel of a real researcher
against a real hub running as root, and asserted to fail.

One hub serves the module. `tanaka` (project p-demo, granted lfs_demo) attacks;
`kimura` (another project) is the neighbour whose home is attacked. The
dataset `lfs_other` is granted to nobody. The last test revokes tanaka's grant
and watches the hub stop the session.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from functional.hubtools import HubUser
from functional.seeding import (OTHER_DATASET, SUSPENDED_PASSWORD, SUSPENDED_PROJECT, SUSPENDED_RESEARCHER, audit_events,
                               suspend_project)
from onsite.demo import DEMO_DATASET, DEMO_PROJECT
from security._isolation_fixtures import RECHECK_S, isolated_hub, researcher_session, server_pid, server_pids, server_token  # noqa: F401 (fixture)
from hopper import HOPPER, beating, started

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def sessions(isolated_hub):
    """kimura's session first (so his home holds files), then tanaka's with a kernel."""
    neighbour = HubUser(isolated_hub.hub, SUSPENDED_RESEARCHER)
    assert neighbour.login(SUSPENDED_PASSWORD).status_code == 302
    neighbour.start_server()
    tanaka, kernel = researcher_session(isolated_hub, "tanaka")
    return isolated_hub, tanaka, kernel


def run(user: HubUser, kernel: str, code: str) -> dict:
    result = user.execute(kernel, code + "\nimport json as _j; print('RESULT ' + _j.dumps(out))")
    assert result.error is None, result.error
    line = next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


TRY = '''
def attempt(fn):
    try:
        fn()
        return "succeeded"
    except Exception as e:
        return type(e).__name__
'''


def test_session_runs_as_the_researchers_own_account(sessions):
    hub, tanaka, kernel = sessions
    out = run(tanaka, kernel, "import os, resource\nout = {'uid': os.getuid(), "
              "'nproc': resource.getrlimit(resource.RLIMIT_NPROC)[0], 'as': resource.getrlimit(resource.RLIMIT_AS)[0], "
              "'env': sorted(k for k in os.environ if k.startswith(('JUPYTERHUB_', 'JPY_')) or k in ('ONSITE_DB_URL', 'ONSITE_REVIEW_URL'))}")
    account = hub.account("tanaka")
    assert out["uid"] == account.pw_uid != 0
    assert out["nproc"] == 256 and out["as"] == 8192 * 1024 * 1024  # SessionLimits defaults
    assert out["env"] == []
    home = hub.settings.workspaces_dir / "tanaka"
    assert (home.stat().st_uid, home.stat().st_mode & 0o777) == (account.pw_uid, 0o700)
    assert ((home / DEMO_PROJECT).stat().st_mode & 0o777) == 0o700
    hub.record("os account", "kernel runs as root or the hub's account", "runs as the researcher's own account")


@pytest.mark.parametrize("target", ["manifest", "home listing"])
def test_reading_another_researchers_home_fails(sessions, target):
    hub, tanaka, kernel = sessions
    home = hub.settings.workspaces_dir / SUSPENDED_RESEARCHER
    assert (home / ".onsite" / "session.json").exists()  # there is something to steal
    action = f"open({str(home / '.onsite' / 'session.json')!r}).read()" if target == "manifest" else f"__import__('os').listdir({str(home)!r})"
    out = run(tanaka, kernel, TRY + f"out = attempt(lambda: {action})")
    assert out == "FileNotFoundError"  # not in the session's view at all (hub_config.session_namespace)
    hub.record("filesystem", f"read another researcher's home ({target})", out)


def test_granted_dataset_is_readable_but_another_is_not(sessions):
    hub, tanaka, kernel = sessions
    granted = hub.settings.datasets_dir / f"{DEMO_DATASET}.duckdb"
    other = hub.settings.datasets_dir / f"{OTHER_DATASET}.duckdb"
    out = run(tanaka, kernel, TRY + f"out = [attempt(lambda: open({str(granted)!r}, 'rb').read(16)), "
              f"attempt(lambda: open({str(other)!r}, 'rb').read(16))]")
    assert out == ["succeeded", "PermissionError"]
    assert (other.stat().st_mode & 0o777) == 0o640
    hub.record("filesystem", "open() a dataset not granted", out[1])


def test_duckdb_attach_of_a_dataset_not_granted_fails(sessions):
    hub, tanaka, kernel = sessions
    other = hub.settings.datasets_dir / f"{OTHER_DATASET}.duckdb"
    out = run(tanaka, kernel, TRY + "import duckdb\ncon = duckdb.connect()\n"
              f"def go():\n    con.execute(\"ATTACH '{other}' AS x (READ_ONLY)\")\n    con.execute('SELECT count(*) FROM x.microdata').fetchall()\n"
              "out = attempt(go)")
    assert out != "succeeded"
    hub.record("duckdb", "ATTACH a dataset not granted", out)


def test_symlink_from_the_workspace_to_a_dataset_does_not_help(sessions):
    hub, tanaka, kernel = sessions
    other = hub.settings.datasets_dir / f"{OTHER_DATASET}.duckdb"
    link = hub.settings.workspaces_dir / "tanaka" / DEMO_PROJECT / "other.duckdb"
    out = run(tanaka, kernel, TRY + f"import os\nos.symlink({str(other)!r}, {str(link)!r})\n"
              f"out = attempt(lambda: open({str(link)!r}, 'rb').read(16))")
    assert link.is_symlink()  # the link was made; reading through it is what fails
    assert out == "PermissionError"
    hub.record("filesystem", "symlink in the workspace to a dataset file", out)


@pytest.mark.parametrize("target", ["egress store", "policy store", "hub database", "cookie secret"])
def test_state_of_the_hub_is_out_of_reach(sessions, target):
    hub, tanaka, kernel = sessions
    settings = hub.settings
    paths = {
        "egress store": (settings.egress_dir / "planted.txt", "w"),
        "policy store": (settings.home / "onsite.sqlite", "r+b"),
        "hub database": (settings.runtime_dir / "jupyterhub.sqlite", "rb"),
        "cookie secret": (settings.runtime_dir / "jupyterhub_cookie_secret", "rb"),
    }
    path, mode = paths[target]
    out = run(tanaka, kernel, TRY + f"out = attempt(lambda: open({str(path)!r}, {mode!r}))")
    assert out == "PermissionError"
    assert not (settings.egress_dir / "planted.txt").exists()
    hub.record("filesystem", f"open the {target} ({'write' if 'w' in mode or '+' in mode else 'read'})", out)


def test_the_servers_token_is_out_of_reach_of_the_session(sessions):
    hub, tanaka, kernel = sessions
    # From the kernel: the single-user server, which holds the Hub token, by its pid.
    server = server_pid(hub, "tanaka")
    loot = hub.settings.workspaces_dir / "tanaka" / "proc-loot.json"
    out = run(tanaka, kernel, TRY + f"import glob, json, os\nserver = {server}\nfound = {{}}\n"
              "for f in glob.glob('/proc/[0-9]*/environ') + glob.glob('/proc/[0-9]*/cmdline'):\n"
              "    try:\n        found[f] = open(f, 'rb').read().hex()\n    except OSError:\n        pass\n"
              f"json.dump(found, open({str(loot)!r}, 'w'))\n"
              "out = {'server': server, 'environ': attempt(lambda: open(f'/proc/{server}/environ', 'rb').read()),"
              " 'mem': attempt(lambda: open(f'/proc/{server}/mem', 'rb')), 'maps': attempt(lambda: open(f'/proc/{server}/maps').read()),"
              " 'fd': attempt(lambda: os.listdir(f'/proc/{server}/fd')), 'cmdline': attempt(lambda: open(f'/proc/{server}/cmdline').read())}")
    assert out.pop("server") == server
    secrets = {"server token": server_token(hub, "tanaka")}
    for name in ("jupyterhub_cookie_secret", "proxy_auth_token", "cli-api-token"):
        secrets[name] = (hub.settings.runtime_dir / name).read_text().strip()
    assert len(secrets["server token"]) >= 32
    # The kernel's /proc is its own PID namespace's: the server is not in it at all.
    assert out == {"environ": "FileNotFoundError", "mem": "FileNotFoundError", "maps": "FileNotFoundError",
                   "fd": "FileNotFoundError", "cmdline": "FileNotFoundError"}
    readable = b"".join(bytes.fromhex(v) for v in json.loads(loot.read_text()).values())
    assert readable  # the kernel did read its own processes' files
    assert [name for name, value in secrets.items() if value.encode() in readable] == []
    for name in ("environ", "mem", "maps"):
        hub.record("proc", f"read the server's /proc/<pid>/{name} from the kernel", out[name])
    hub.record("proc", "search every readable /proc/*/environ and cmdline for the Hub token and hub secrets", "not found")
    # The server's own account outside the kernel's namespaces: the server is not dumpable,
    # so its /proc files are root's (the kernel's user namespace alone would not cover this).
    info = Path(f"/proc/{server}/environ").stat()
    assert info.st_uid == 0
    uid = hub.account("tanaka").pw_uid
    for name in ("environ", "mem"):
        outside = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/usr/bin/python3", "-I", "-c",
                                  f"open('/proc/{server}/{name}', 'rb').read(16)"], capture_output=True, text=True, cwd="/")
        assert outside.returncode != 0 and "PermissionError" in outside.stderr, (name, outside.stderr[-300:])
        hub.record("proc", f"read the server's /proc/<pid>/{name} as the session's account", "PermissionError")
    ptrace = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/usr/bin/python3", "-I", "-c",
                             f"import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                             f"sys.exit(0 if libc.ptrace(16, {server}, 0, 0) == 0 else ctypes.get_errno())"],  # PTRACE_ATTACH
                            capture_output=True, text=True, cwd="/")
    assert ptrace.returncode == 1  # EPERM
    hub.record("proc", "ptrace the server as the session's account", "EPERM")


def kernel_refusal(response) -> str:
    return response.json().get("message", "")


def test_only_the_locked_kernel_can_be_started(sessions):
    hub, tanaka, kernel = sessions
    xsrf = {"X-XSRFToken": tanaka.http.cookies.get("_xsrf", path="/user/tanaka/") or ""}
    before = {k["id"] for k in tanaka.http.get(f"{tanaka.server_url}/api/kernels", timeout=10).json()}
    for name in ("python3", "../python3", "onsite ", "py%sthon"):
        r = tanaka.http.post(f"{tanaka.server_url}/api/kernels", json={"name": name}, headers=xsrf, timeout=60)
        assert r.status_code == 403 and "only the kernel 'onsite'" in kernel_refusal(r), (name, r.status_code, r.text[:200])
        hub.record("kernels", f"POST /api/kernels name={name!r}", f"HTTP {r.status_code}")
    session = {"path": "p-demo/x.ipynb", "type": "notebook", "name": "x.ipynb", "kernel": {"name": "python3"}}
    r = tanaka.http.post(f"{tanaka.server_url}/api/sessions", json=session, headers=xsrf, timeout=60)
    assert r.status_code == 403 and "only the kernel 'onsite'" in kernel_refusal(r), (r.status_code, r.text[:200])
    hub.record("kernels", "POST /api/sessions with kernel python3", f"HTTP {r.status_code}")
    session["kernel"] = {"name": "onsite"}
    created = tanaka.http.post(f"{tanaka.server_url}/api/sessions", json=session, headers=xsrf, timeout=60)
    assert created.status_code == 201, created.text[:200]
    r = tanaka.http.patch(f"{tanaka.server_url}/api/sessions/{created.json()['id']}", json={"kernel": {"name": "python3"}},
                          headers=xsrf, timeout=60)
    assert r.status_code == 403 and "only the kernel 'onsite'" in kernel_refusal(r), (r.status_code, r.text[:200])
    hub.record("kernels", "PATCH /api/sessions/<id> to kernel python3", f"HTTP {r.status_code}")
    assert tanaka.http.delete(f"{tanaka.server_url}/api/sessions/{created.json()['id']}", headers=xsrf, timeout=60).status_code == 204
    after = {k["id"] for k in tanaka.http.get(f"{tanaka.server_url}/api/kernels", timeout=10).json()}
    assert after == before
    specs = tanaka.http.get(f"{tanaka.server_url}/api/kernelspecs", timeout=10).json()
    assert list(specs["kernelspecs"]) == ["onsite"]


def test_a_kernelspec_planted_in_the_home_is_ignored(sessions):
    hub, tanaka, kernel = sessions
    run(tanaka, kernel, "import json, os, sys\nd = os.path.expanduser('~/.local/share/jupyter/kernels/evil')\n"
        "os.makedirs(d, exist_ok=True)\njson.dump({'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],"
        " 'display_name': 'evil', 'language': 'python'}, open(d + '/kernel.json', 'w'))\nout = d")
    xsrf = {"X-XSRFToken": tanaka.http.cookies.get("_xsrf", path="/user/tanaka/") or ""}
    r = tanaka.http.post(f"{tanaka.server_url}/api/kernels", json={"name": "evil"}, headers=xsrf, timeout=60)
    assert r.status_code == 403 and "only the kernel 'onsite'" in kernel_refusal(r)
    hub.record("kernels", "start a kernelspec planted in ~/.local/share/jupyter", f"HTTP {r.status_code}")


def wait_until_stopped(hub, user: HubUser) -> bool:
    """The session ended: its SESSION_STOP is in the ledger and its server's process is gone. Asked of
    the store and /proc, not of the hub API, which refuses a person whose entry decision no longer allows."""
    deadline = time.monotonic() + 10 * RECHECK_S + 30
    while time.monotonic() < deadline:
        if audit_events(hub.settings, "SESSION_STOP", user.username) and not server_pids(hub, user.username):
            return True
        time.sleep(0.5)
    return False


def test_suspended_project_stops_the_session(sessions):
    hub, tanaka, kernel = sessions
    neighbour = HubUser(hub.hub, SUSPENDED_RESEARCHER)
    assert neighbour.login(SUSPENDED_PASSWORD).status_code == 302
    suspend_project(hub.settings, SUSPENDED_PROJECT)
    assert wait_until_stopped(hub, neighbour), "the session outlived its project"
    stops = audit_events(hub.settings, "SESSION_STOP", SUSPENDED_RESEARCHER)
    assert stops[-1]["details"]["reason"] == "ENTRY_REFUSED:NO_ACTIVE_PROJECT"
    rechecks = [e for e in audit_events(hub.settings, "ENTRY_DECIDE", SUSPENDED_RESEARCHER) if e["details"]["stage"] == "recheck"]
    assert rechecks and rechecks[-1]["outcome"] == "DENIED"
    hub.record("entry", "keep working after the project was suspended", "session stopped: " + stops[-1]["details"]["reason"])


def test_revoked_grant_stops_the_session(sessions):
    from access_control import policy
    from onsite_base.db import make_engine, session_factory, transaction

    hub, tanaka, kernel = sessions
    # A daemon of the kernel hopping pids (forks, the parent exits) to outlive the session.
    beat = hub.settings.workspaces_dir / "tanaka" / "hopper.beat"
    run(tanaka, kernel, f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-I', '-c', {HOPPER!r}, {str(beat)!r}], "
                        "start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nout = 1")
    assert started(beat), "the hopper did not start"
    engine = make_engine(hub.settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            grant = next(g for g in policy.list_grants(session, DEMO_PROJECT) if g.dataset_id == DEMO_DATASET)
            policy.revoke_grant(session, grant.id, actor="test")
    finally:
        engine.dispose()
    assert wait_until_stopped(hub, tanaka), "the session outlived the revoked grant"
    stops = audit_events(hub.settings, "SESSION_STOP", "tanaka")
    assert stops and stops[-1]["details"]["reason"] == f"GRANT_REVOKED:{DEMO_DATASET}"
    uid = hub.account("tanaka").pw_uid
    left = "?"
    for _ in range(40):  # the spawner kills what is left once the server has exited
        ps = subprocess.run(["ps", "-o", "pid=,stat=,comm=", "-u", str(uid)], capture_output=True, text=True).stdout
        left = "\n".join(line for line in ps.splitlines() if line.split()[1][0] != "Z")  # a zombie has exited
        if not left:
            break
        time.sleep(0.5)
    assert left == ""  # nothing of the session is left running
    assert not beating(beat)  # not even the hopper, which `ps` is too slow to see
    hub.record("grants", "keep working after the grant was revoked", "session stopped: " + stops[-1]["details"]["reason"])
    hub.record("os account", "a kernel's daemon hopping pids outlives the stopped session", "killed (kill(-1) as the account)")
