"""Sessions share nothing; a kernel can neither signal nor outlive its server (issue 14, items 3 and 4).

One real hub running as root. `tanaka` (project p-demo, granted lfs_demo) tries to
hand records to `kimura`, whose project has no grant at all, through every
directory tanaka's kernel can write (found by searching the whole filesystem,
not from a list), a home and files made world-readable, and System V shared
memory; kimura's concurrent session looks for them. Then tanaka's kernel tries to
signal its server, and finally the server is killed from outside while the
kernel holds the dataset open.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import pytest

from functional.hubtools import HubUser
from functional.seeding import SUSPENDED_PASSWORD, SUSPENDED_RESEARCHER, audit_events
from hub_config.isolation import account_processes
from onsite.demo import DEMO_DATASET, DEMO_PROJECT
from security._isolation_fixtures import isolated_hub, researcher_session, server_pid  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

NO_GRANT = SUSPENDED_RESEARCHER  # kimura: an active project without any grant
SHM_KEY = 0x0A5E14


@pytest.fixture(scope="module")
def sessions(isolated_hub):
    """tanaka's and kimura's sessions, each with a kernel, running at the same time."""
    tanaka, tanaka_kernel = researcher_session(isolated_hub, "tanaka")
    kimura, kimura_kernel = researcher_session(isolated_hub, NO_GRANT, SUSPENDED_PASSWORD)
    return isolated_hub, (tanaka, tanaka_kernel), (kimura, kimura_kernel)


def run(user: HubUser, kernel: str, code: str) -> object:
    result = user.execute(kernel, code + "\nimport json as _j; print('RESULT ' + _j.dumps(out))", timeout=180)
    assert result.error is None, result.error
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


SHM = f'''
import ctypes
_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
def shm(create, data=b""):
    ident = _libc.shmget({SHM_KEY}, 4096 if create else 0, (0o1000 | 0o666) if create else 0)  # IPC_CREAT
    if ident < 0:
        return "shmget: " + __import__("os").strerror(ctypes.get_errno())
    address = _libc.shmat(ident, None, 0)
    if create:
        ctypes.memmove(address, data, len(data))
        return "created"
    return ctypes.string_at(address, 64).split(b"\\0")[0].decode()
'''


def test_records_written_anywhere_do_not_reach_a_session_without_the_grant(sessions):
    hub, (tanaka, tanaka_kernel), (kimura, kimura_kernel) = sessions
    token = f"onsite-leak-{secrets.token_hex(4)}"
    dataset = hub.settings.datasets_dir / f"{DEMO_DATASET}.duckdb"
    home = hub.settings.workspaces_dir / "tanaka"
    # tanaka: real records of the granted dataset, into every directory the kernel can write, all world-readable.
    written = run(tanaka, tanaka_kernel, SHM + f'''
import duckdb, os, subprocess
con = duckdb.connect({str(dataset)!r}, read_only=True)
records = "\\n".join(",".join(map(str, row)) for row in con.execute("SELECT * FROM microdata LIMIT 200").fetchall())
con.close()
found = subprocess.run(["find", "/", "(", "-path", "/proc", "-o", "-path", "/sys", ")", "-prune", "-o",
                        "-type", "d", "-writable", "-print"], capture_output=True, text=True).stdout.split()
written = []
for directory in found + [{str(home)!r}, {str(home / DEMO_PROJECT)!r}]:
    path = os.path.join(directory, {token!r} + ".csv")
    try:
        with open(path, "w") as f:
            f.write({token!r} + "\\n" + records)
        os.chmod(path, 0o644)
        written.append(path)
    except OSError:
        pass
os.chmod({str(home)!r}, 0o755)
os.chmod({str(home / DEMO_PROJECT)!r}, 0o755)
out = {{"written": written, "shm": shm(True, {token!r}.encode())}}
''')
    assert {"/tmp", "/var/tmp", "/dev/shm"} <= {str(Path(p).parent) for p in written["written"]}
    assert written["shm"] == "created"
    # kimura, at the same time: none of those paths, nothing with the token anywhere he can look, no segment.
    seen = run(kimura, kimura_kernel, SHM + f'''
import os, subprocess
paths = {written["written"]!r}
grep = subprocess.run(["grep", "-rlsF", {token!r}, "/tmp", "/var/tmp", "/dev/shm", "/run", {str(hub.settings.home)!r}],
                      capture_output=True, text=True).stdout.split()
def look(path):
    try:
        return open(path).read(40)
    except OSError as e:
        return type(e).__name__
out = {{"paths": {{p: look(p) for p in paths}}, "grep": grep, "shm": shm(False),
       "workspaces": sorted(os.listdir({str(hub.settings.workspaces_dir)!r}))}}
''')
    assert seen["grep"] == []
    assert set(seen["paths"].values()) == {"FileNotFoundError"}, seen["paths"]  # not even there
    assert seen["shm"].startswith("shmget: No such file")
    assert seen["workspaces"] == [NO_GRANT]  # other homes are not there at all
    for shared in ("/tmp", "/var/tmp", "/dev/shm"):
        path = next(p for p in written["written"] if str(Path(p).parent) == shared)
        hub.record("filesystem", f"researcher writes records to {shared} (chmod 644), a session without the grant "
                   "reads them", seen["paths"][path])
    hub.record("filesystem", "researcher writes records to every directory `find / -writable` lists, "
               "a session without the grant looks for them", "none there, nothing found")
    hub.record("filesystem", "researcher chmods the home and a workspace 755 for a session without the grant",
               "FileNotFoundError (other homes are not in the session's view)")
    hub.record("filesystem", "list the workspaces root from a session", f"only the session's own home ({seen['workspaces']})")
    hub.record("ipc", "System V shared memory segment 0666 read by another session", seen["shm"])
    for private in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not any(Path(private).glob(f"{token}*"))  # not on the host either


def test_the_kernel_cannot_signal_its_server(sessions):
    hub, (tanaka, kernel), _ = sessions
    server = server_pid(hub, "tanaka")
    out = run(tanaka, kernel, f'''
import os, signal
def attempt(fn):
    try:
        fn()
        return "signalled"
    except OSError as e:
        return type(e).__name__
out = {{"by pid": attempt(lambda: os.kill({server}, signal.SIGKILL)),
       "pidfd of /proc/<pid>": attempt(lambda: os.open("/proc/{server}", os.O_RDONLY)),
       "parent": os.getppid(), "kill(-1)": attempt(lambda: os.kill(-1, signal.SIGKILL)),
       "parent killed": attempt(lambda: os.kill(os.getppid(), signal.SIGKILL))}}
''')
    assert out["by pid"] == "ProcessLookupError" and out["pidfd of /proc/<pid>"] == "FileNotFoundError"
    assert out["parent"] == 1  # the first process of the kernel's own PID namespace, which ignores it
    assert Path(f"/proc/{server}").exists() and tanaka.http.get(f"{tanaka.server_url}/api/status", timeout=10).status_code == 200
    assert run(tanaka, kernel, "out = 'still here'") == "still here"
    hub.record("signals", "the kernel kills its server by pid", out["by pid"])
    hub.record("signals", "the kernel opens /proc/<server pid> for pidfd_send_signal", out["pidfd of /proc/<pid>"])
    hub.record("signals", "the kernel sends kill(-1, SIGKILL) and kills its parent", "server unharmed (kernel's own PID namespace)")


def dataset_holders(path: Path) -> list[int]:
    holders = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == str(path):
                holders.append(int(fd.parts[2]))
        except OSError:
            pass
    return holders


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_a_killed_server_leaves_no_kernel_and_is_recorded(sessions):
    hub, (tanaka, kernel), _ = sessions
    uid = hub.account("tanaka").pw_uid
    dataset = hub.settings.datasets_dir / f"{DEMO_DATASET}.duckdb"
    run(tanaka, kernel, f"import duckdb, subprocess, sys\nheld = duckdb.connect({str(dataset)!r}, read_only=True)\n"
                        "subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(600)'])\nout = 1")
    assert dataset_holders(dataset)  # the kernel has it open
    stops_before = len(audit_events(hub.settings, "SESSION_STOP", "tanaka"))
    os.kill(server_pid(hub, "tanaka"), 9)
    assert wait_for(lambda: not account_processes(uid), 60), account_processes(uid)  # kernel, its daemon: all gone
    assert dataset_holders(dataset) == []
    assert wait_for(lambda: len(audit_events(hub.settings, "SESSION_STOP", "tanaka")) > stops_before, 90)
    stop = audit_events(hub.settings, "SESSION_STOP", "tanaka")[-1]
    assert stop["details"]["reason"].startswith("SERVER_EXITED")
    hub.record("os account", "kernel with the dataset open outlives its killed server",
               "no process of the account left, dataset closed, SESSION_STOP " + stop["details"]["reason"])
