"""Servers forked from the pre-imported one (`hub_config.server_fork`): they become the session as an
exec'd server does, and nothing of the fork server or of another session reaches them.

A real fork server, real single-user servers (no hub: a stand-in answers their hub API), real namespaces and
uids (root only). Through a real hub: tests/security (every isolation attack runs on forked servers).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from hub_config import server_fork
from hub_config.isolation import SessionLimits
from hub_config.ports import free_port
from hub_config.session_namespace import RUNTIME_DIR, SessionProcess, SessionView
from hub_config.spawner import singleuser_config_path

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, other uids)")

UID_A, UID_B = 299_971, 299_972


@pytest.fixture(scope="module")
def forks():
    forks = server_fork.ServerForks()
    forks.start()
    yield forks
    forks.stop()


class HubStandIn(BaseHTTPRequestHandler):
    """What a starting server asks the hub (its version): 200 to everything."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("X-JupyterHub-Version", "6.1.1")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def hub_api():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), HubStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    server.shutdown()


@pytest.fixture
def workspaces():
    base = Path(tempfile.mkdtemp(prefix="onsite-fork-"))
    os.chmod(base, 0o711)
    root = base / "workspaces"
    root.mkdir(mode=0o711)
    for name, uid in (("a", UID_A), ("b", UID_B)):
        (root / name).mkdir(mode=0o700)
        os.chown(root / name, uid, uid)
    yield root
    shutil.rmtree(base, ignore_errors=True)


def session(workspaces: Path, name: str, uid: int) -> SessionProcess:
    kept = (workspaces.parent, Path(os.path.realpath(server_fork.__file__)).parents[1])  # state under /tmp; the code
    view = SessionView(home=workspaces / name, workspaces=workspaces, uid=uid, gid=uid, tmp_size_mb=16, kept=kept)
    return SessionProcess(view=view, limits=SessionLimits(), groups=(uid,))


def server_env(home: Path, port: int, token: str, hub_api: str) -> dict[str, str]:
    """What the spawner gives a server."""
    user = home.name
    return {"PATH": os.environ["PATH"], "HOME": str(home), "USER": user, "JUPYTERHUB_API_TOKEN": token,
            "JUPYTERHUB_API_URL": hub_api, "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
            "JUPYTERHUB_USER": user, "JUPYTERHUB_SERVICE_PREFIX": f"/user/{user}/",
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/user/{user}/",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/user/{user}/oauth_callback", "JUPYTER_RUNTIME_DIR": RUNTIME_DIR,
            "JUPYTER_CONFIG_PATH": os.pathsep.join(str(d) for d in singleuser_config_path("en"))}


def wait_until_listening(port: int, server: server_fork.ForkedServer) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited with {server.returncode}"
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail("the forked server did not listen within 120 s")


def socket_inodes(pid: int) -> set[str]:
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return {link for link in links if link.startswith("socket:")}


def status_field(pid: int, name: str) -> str:
    return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(name + ":"))


def test_a_forked_server_is_the_session_and_holds_nothing_of_the_fork_server_or_another_session(forks, hub_api, workspaces):
    tokens = {"a": secrets.token_hex(16), "b": secrets.token_hex(16)}
    ports = {"a": free_port(), "b": free_port()}
    servers = {}
    try:
        for name, uid in (("a", UID_A), ("b", UID_B)):
            servers[name] = forks.spawn([], server_env(workspaces / name, ports[name], tokens[name], hub_api),
                                        session(workspaces, name, uid))
        for name in servers:
            wait_until_listening(ports[name], servers[name])
        a, b = servers["a"].pid, servers["b"].pid
        assert status_field(a, "Uid").split()[1:] == [str(UID_A)] * 4
        assert status_field(a, "Groups").split()[1:] == [str(UID_A)]
        assert status_field(a, "NoNewPrivs").split()[1] == "1"
        assert os.readlink(f"/proc/{a}/ns/mnt") != os.readlink("/proc/self/ns/mnt")  # the session's own view
        assert b"jupyterhub-singleuser" in Path(f"/proc/{a}/cmdline").read_bytes()
        # Its exec'd environment is the fork server's (no token, no secret); the token is only in the heap.
        environ = Path(f"/proc/{b}/environ").read_bytes()
        assert tokens["b"].encode() not in environ and tokens["a"].encode() not in environ
        # The control socket and the other session's status socket stay with the fork server.
        fork_server = forks._proc.pid
        assert not socket_inodes(b) & socket_inodes(fork_server)
        assert not socket_inodes(a) & socket_inodes(fork_server)
        servers["a"].send_signal(signal.SIGKILL)
        assert servers["a"].wait(30) == -signal.SIGKILL  # as Popen reports it: SESSION_STOP SERVER_EXITED:-9
        assert servers["b"].poll() is None
    finally:
        for server in servers.values():
            if server.poll() is None:
                server.send_signal(signal.SIGKILL)
                server.wait(30)


def test_a_session_that_cannot_be_set_up_is_refused_and_the_fork_server_goes_on(forks, hub_api, workspaces):
    os.chown(workspaces / "a", UID_B, UID_B)  # not the account's own home: the view refuses it
    with pytest.raises(server_fork.ForkError, match=f"not a directory owned by uid {UID_A}"):
        forks.spawn([], server_env(workspaces / "a", free_port(), "t", hub_api), session(workspaces, "a", UID_A))
    port = free_port()
    server = forks.spawn([], server_env(workspaces / "b", port, "t", hub_api), session(workspaces, "b", UID_B))
    try:
        wait_until_listening(port, server)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) is not None


def test_the_fork_server_ends_with_the_hub_and_is_started_again(workspaces):
    forks = server_fork.ServerForks()
    forks.start()
    first = forks._proc
    forks._control.close()  # what the hub's exit does to the control socket
    assert first.wait(30) == 0
    forks.start()
    try:
        assert forks._proc.pid != first.pid and forks._proc.poll() is None
    finally:
        forks.stop()


SCAN = '''
import json, os, sys, traitlets
from traitlets.config import PyFileConfigLoader
from hub_config import server_fork
server_fork.preload()
_fork_home = os.environ["HOME"]
server_fork.adopt_environment({**os.environ, "HOME": sys.argv[2]})  # what a forked server does first
found = set()
for name, module in list(sys.modules.items()):
    if name in ("__main__", "__mp_main__", "posix") or module is None:
        continue  # this script; posix.environ, the environment the interpreter started with, which nothing reads
    for attr, value in list(vars(module).items()):
        if isinstance(value, type) and issubclass(value, traitlets.HasTraits) and value.__module__ == name:
            for trait_name, trait in value.class_traits().items():
                if _fork_home in repr(trait.default_value):
                    found.add(f"{value.__module__}.{value.__qualname__}.{trait_name}")
        elif isinstance(value, (str, bytes, os.PathLike, list, tuple, dict)) and _fork_home in repr(value):
            found.add(f"{name}.{attr}")
config = PyFileConfigLoader("jupyter_server_config.py", path=sys.argv[1]).load_config()
print(json.dumps({"found": sorted(found), "config": {k: v for k, v in config.LabApp.items() if isinstance(v, str)}}))
'''
SET_IN_CONFIG = {"jupyterlab.labapp.LabApp.user_settings_dir": "user_settings_dir",
                 "jupyterlab.labapp.LabApp.workspaces_dir": "workspaces_dir"}
USER_SITE = {"site.USER_BASE", "site.USER_SITE", "sysconfig._CONFIG_VARS"}
"""The user site folder: off in every server (the fork server runs -I; an exec'd one had PYTHONNOUSERSITE=1)."""


def test_what_the_preloaded_modules_compute_from_home_at_import_is_computed_again_for_each_session(tmp_path):
    """A value computed from $HOME at import would be the fork server's in every forked server: after a forked
    server took its environment none is left but the user site (off) and what the servers' config sets again."""
    session_home = tmp_path / "session-home"
    env = {**server_fork.FORK_SERVER_ENV, "PATH": os.environ["PATH"], "HOME": str(tmp_path / "fork-server-home")}
    result = subprocess.run([sys.executable, "-I", "-c", SCAN, str(singleuser_config_path("en")[0]), str(session_home)],
                            env=env, capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert set(out["found"]) == set(SET_IN_CONFIG) | USER_SITE
    for trait in SET_IN_CONFIG.values():
        assert out["config"][trait].startswith(str(session_home / ".jupyter" / "lab"))
