"""A session's own view of the filesystem, and a kernel that cannot signal or outlive its server.

Real namespaces, real mounts, real uids (root only); no hub. The attacks through a
real hub are in tests/security/test_session_sharing_attacks.py.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hub_config.isolation import SessionLimits
from hub_config.session_namespace import RUNTIME_DIR, SessionProcess, SessionView

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespaces, other uids)")

UID_A, UID_B = 299_981, 299_982


@pytest.fixture
def workspaces():
    """Two homes made world-readable by their owners, in a state directory under /tmp (as a test run's is)."""
    base = Path(tempfile.mkdtemp(prefix="onsite-view-"))
    os.chmod(base, 0o711)
    root = base / "workspaces"
    root.mkdir(mode=0o711)
    for name, uid in (("a", UID_A), ("b", UID_B)):
        (root / name).mkdir()
        os.chown(root / name, uid, uid)
        os.chmod(root / name, 0o755)
    (root / "b" / "shared.csv").write_text("record")
    os.chmod(root / "b" / "shared.csv", 0o644)
    yield root
    shutil.rmtree(base, ignore_errors=True)


ROOT = Path(__file__).resolve().parents[3]


def in_view(view: SessionView, script: str) -> list[str]:
    """The command that runs `script` as a session's server runs when it is not forked: the launcher becomes the
    session (this view, default limits, no dataset group) in a fresh single-threaded process, then execs it."""
    process = SessionProcess(view=view, limits=SessionLimits(), groups=())
    return [sys.executable, "-I", "-m", "hub_config.session_namespace", json.dumps(process.to_json()),
            sys.executable, "-I", "-c", script]


def run_in_view(view: SessionView, code: str) -> dict:
    """`code` (which sets `out`) in a process that entered `view` and dropped to its uid, as a server does."""
    script = "import json, os\n" + code + "\nprint(json.dumps(out))"
    result = subprocess.run(in_view(view, script), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


TRY_WRITE = '''
def write(path):
    try:
        with open(path, "w") as f:
            f.write("record")
        os.chmod(path, 0o644)
        return "written"
    except OSError as e:
        return type(e).__name__ + " " + str(e.errno)
'''


def test_a_session_sees_only_its_own_home_and_its_own_tmp(workspaces):
    view = SessionView(home=workspaces / "a", workspaces=workspaces, uid=UID_A, gid=UID_A, tmp_size_mb=8,
                       kept=(workspaces.parent,))
    marker = f"onsite-view-{os.getpid()}"
    out = run_in_view(view, TRY_WRITE + f"""
out = {{"workspaces": os.listdir({str(workspaces)!r}),
       "other home": os.path.exists({str(workspaces / 'b' / 'shared.csv')!r}),
       "writes": {{p: write(p + "/{marker}") for p in ("/tmp", "/var/tmp", "/dev/shm", ".", "/etc", "/run",
                                                     {str(workspaces.parent)!r})}},
       "runtime": oct(os.stat({RUNTIME_DIR!r}).st_mode & 0o7777), "runtime owner": os.stat({RUNTIME_DIR!r}).st_uid}}
""")
    assert out["workspaces"] == ["a"] and out["other home"] is False
    assert out["writes"] == {"/tmp": "written", "/var/tmp": "written", "/dev/shm": "written", ".": "written",
                             "/etc": "OSError 30", "/run": "OSError 30", str(workspaces.parent): "OSError 30"}  # EROFS
    assert (out["runtime"], out["runtime owner"]) == ("0o700", UID_A)
    for private in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not Path(private, marker).exists()  # not on the host either: gone with the namespace
    assert (workspaces / "a" / marker).read_text() == "record"  # the real home, written through


def test_two_sessions_share_no_tmp(workspaces):
    a = SessionView(home=workspaces / "a", workspaces=workspaces, uid=UID_A, gid=UID_A, tmp_size_mb=8,
                    kept=(workspaces.parent,))
    b = SessionView(home=workspaces / "b", workspaces=workspaces, uid=UID_B, gid=UID_B, tmp_size_mb=8,
                    kept=(workspaces.parent,))
    holder = subprocess.Popen(in_view(a, "open('/dev/shm/held', 'w').write('record'); open('/tmp/held', 'w').write('record'); "
                                     "print('ready', flush=True); import sys; sys.stdin.read()"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"  # a's files exist while b looks
        out = run_in_view(b, "out = [sorted(os.listdir('/tmp')), os.listdir('/dev/shm')]")
    finally:
        holder.communicate("")
    assert out == [sorted(["onsite-runtime", workspaces.parent.name]), []]  # the kept state directory, not a's files


def test_a_view_refuses_a_home_that_is_not_the_accounts(workspaces):
    view = SessionView(home=workspaces / "b", workspaces=workspaces, uid=UID_A, gid=UID_A, tmp_size_mb=8,
                       kept=(workspaces.parent,))
    # the launcher refused, saying why
    with pytest.raises(AssertionError, match="could not be set up: NamespaceError: .* is not a directory owned by uid"):
        run_in_view(view, "out = 1")
    with pytest.raises(ValueError, match="not directly in the workspaces root"):
        SessionView(home=workspaces / "a" / "x", workspaces=workspaces, uid=UID_A, gid=UID_A, tmp_size_mb=8)
    with pytest.raises(ValueError, match="cannot be kept"):
        SessionView(home=workspaces / "a", workspaces=workspaces, uid=UID_A, gid=UID_A, tmp_size_mb=8, kept=(Path("/tmp"),))


SERVER = """
import os, subprocess, sys, time
kernel = subprocess.Popen([sys.executable, '-Im', 'singleuser.kernel_sandbox', '--', sys.executable, '-c', sys.argv[1],
                           str(os.getpid())], start_new_session=True)
time.sleep(600)
"""

KERNEL = """
import os, signal, subprocess, sys, time
# a daemon of the kernel: its own session, its parent gone
subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(600)'])
def attempt(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        return 'signalled'
    except OSError as e:
        return type(e).__name__
print(os.getppid(), attempt(int(sys.argv[1])), attempt(os.getppid()), flush=True)
time.sleep(600)
"""


def test_a_kernel_cannot_signal_its_server_and_dies_with_it():
    from hub_config.isolation import account_processes

    server = subprocess.Popen([sys.executable, "-c", SERVER, KERNEL], user=UID_A, group=UID_A, extra_groups=[], cwd="/",
                              stdout=subprocess.PIPE, text=True)
    try:
        # The kernel's own view: its parent is the first process of its PID namespace, the server does not exist.
        assert server.stdout.readline().split() == ["1", "ProcessLookupError", "signalled"]
        deadline = time.monotonic() + 30
        while len(account_processes(UID_A)) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.poll() is None
        assert len(account_processes(UID_A)) == 5  # server, sandbox, the namespace's init (unharmed), kernel, daemon
        server.kill()
        server.wait()
        deadline = time.monotonic() + 30
        while account_processes(UID_A) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert account_processes(UID_A) == []  # the sandbox, its init, the kernel and the daemon: all gone
    finally:
        subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=UID_A, group=UID_A, extra_groups=[])
        server.wait()
