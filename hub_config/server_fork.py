"""Isolated single-user servers forked from one pre-imported server process.

Starting a single-user server is almost all imports: JupyterHub's single-user
extension (which brings JupyterHub's ORM, SQLAlchemy and alembic), Jupyter
Server, JupyterLab and the lock-down with the wire format it checks requests
against (pandas, polars, pyarrow, duckdb, jsonschema) — 4–6 CPU-seconds of a
server start of 5–7 (bench/RESULTS.md, "sessions"). So the hub starts one
process, as root, that imports all of that once (`PRELOADED`) and then, for each
isolated session, forks a child that becomes the session (`SessionProcess.become`:
namespaces, limits, groups, the account's uid — what an exec'd server's launcher
does, `python -m hub_config.session_namespace`) and runs the server in the interpreter it already has.

What keeps sessions apart here:

- the fork server never reads what a session is given: the hub hands it one end
  of a new socket pair per start (SCM_RIGHTS, over the control socket only the
  hub holds, the fork server's stdin), and the forked child reads the request —
  the server's environment with its Hub token — from it. So no token of one
  session is ever in the memory a later session is forked from;
- the child closes every inherited descriptor but that socket before reading it
  (the control socket, the other sessions' sockets);
- the fork server is started with an environment of `PATH`, `LANG` and `HOME` only, so
  `/proc/<pid>/environ` of every server (the fork server's, as exec'd) holds no
  secret; the child's own environment is the request's;
- the control socket is a socket pair, not a path or an abstract name: no
  process of a session can ask for a fork.

The hub's end of each socket stays open: when the server exits, the fork server
(its parent, which reaps it) writes the exit status there, so the spawner reads
`SERVER_EXITED:<status>` as it did from Popen (`ForkedServer`, a Popen look-alike).
The fork server exits when the hub does (its control socket closes); the
servers it forked keep running, as Popen's did (new sessions).
"""
from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from hub_config.session_namespace import SessionProcess
from onsite_base.namespaces import Libc

log = logging.getLogger(__name__)

SERVER_COMMAND = "jupyterhub-singleuser"
"""In the fork server's command line, so `ps` and /proc/<pid>/cmdline name every forked server as one."""
PRELOADED = (
    "jupyterhub.singleuser",
    "jupyterhub.singleuser.extension",
    "jupyter_server.serverapp",
    "jupyter_server.services.kernels.connection.channels",
    "jupyterlab",
    "jupyterlab.labapp",
    "jupyterlab_server",
    "jupyter_lsp",
    "jupyter_lsp.serverextension",
    "jupyter_server_terminals",
    "notebook_shim",
    "notebook_shim.nbserver",
    "singleuser.serverext",
    "singleuser.authorizer",
    "singleuser.contents",
    "singleuser.kernel_websocket",
    "singleuser.kernelspec",
    "singleuser.undumpable",
)
"""What a server imports on its way up (found from a running server's sys.modules)."""
FORK_SERVER_ENV = {"HOME": "/nonexistent"}
"""With PATH and LANG, the fork server's whole environment: no secret, and no real home for a value computed
from $HOME at import to point into. Such values are computed again in each forked server from its own
environment: JupyterLab's settings and workspaces folders in singleuser/jupyter_config, the modules of
`RELOADED` by reloading them; tests/unit/hub_config/test_server_fork.py fails on any other."""
RELOADED = ("send2trash.plat_other",)
"""Preloaded modules whose globals come from the environment at import (send2trash: the trash folder under $HOME,
where the server moves deleted files): reloaded in each forked server once its environment is the session's."""
READY = b"ready\n"
MAX_REQUEST_BYTES = 1 << 20
START_TIMEOUT_S = 180.0  # the imports, on a loaded 2-core machine
FORK_TIMEOUT_S = 60.0


class ForkError(RuntimeError):
    """The fork server could not start a session's server; the message says which step failed."""


# --- the fork server (a process of its own, root) ------------------------------------


def preload() -> None:
    for name in PRELOADED:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # what was imported stays in pages the children share (no GC writes to them)


def adopt_environment(env: dict[str, str]) -> None:
    """In a forked server: `env` becomes its whole environment, and what was computed from the fork server's
    environment at import is computed again."""
    os.environ.clear()
    os.environ.update(env)
    for name in RELOADED:
        if name in sys.modules:
            importlib.reload(sys.modules[name])


def serve(control: socket.socket) -> None:
    """Fork a server for every socket the hub sends; write each one's exit status to it. Returns when the hub is gone."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # a handler, so the wake-up fd hears it
    children: dict[int, socket.socket] = {}
    control.sendall(READY)
    while True:
        readable, _, _ = select.select([control, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
            _reap(children)
        if control in readable:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
            if not message:
                return  # the hub exited
            if not fds:
                continue
            session = socket.socket(fileno=fds[0])
            if threading.active_count() != 1:
                raise RuntimeError("the fork server must be single-threaded")
            pid = os.fork()
            if pid == 0:
                _run_server(session)  # never returns
            children[pid] = session
            _reap(children)


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        session = children.pop(pid, None)
        if session is None:
            continue
        try:
            session.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
        except OSError:
            pass  # the hub let go of this server
        session.close()


def _only_descriptors(keep: set[int]) -> None:
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory's own descriptor, already closed


def _read_line(sock: socket.socket, limit: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk or len(data) + len(chunk) > limit:
            raise ForkError("the request was cut short or too long")
        data += chunk
    return data


def _run_server(session: socket.socket) -> None:
    """In the forked child: become the session, then run the server in this interpreter. Never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # not the control socket
        _only_descriptors({0, 1, 2, session.fileno()})
        request = json.loads(_read_line(session, MAX_REQUEST_BYTES))
        adopt_environment(request["env"])
        SessionProcess.from_json(request["session"]).become(Libc())
        session.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        session.close()
    except BaseException as e:  # noqa: BLE001 (a forked child never returns into the fork server's loop)
        message = f"{type(e).__name__}: {e}"
        os.write(2, f"onsite: the session's server could not be set up: {message}\n".encode())
        try:
            session.sendall(json.dumps({"error": message}).encode() + b"\n")
        except OSError:
            pass
        os._exit(1)
    try:
        sys.argv = [SERVER_COMMAND, *request["args"]]
        result = importlib.import_module("jupyterhub.singleuser").main(request["args"])  # imported already (PRELOADED)
        code = result if isinstance(result, int) else 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 (exiting regardless)
                pass
        os._exit(code)


def main() -> int:
    """`python -I -m hub_config.server_fork jupyterhub-singleuser`, started by the hub with the control socket as stdin."""
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the hub's to handle; the control socket ends us
    preload()
    serve(control)
    return 0


# --- the hub's end -----------------------------------------------------------------


class ForkedServer:
    """A forked server as the spawner sees it: `pid`, `returncode`, `poll()`, `wait()`, like the Popen it replaces."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._sock = sock
        self._buffer = b""
        self._orphan = False  # the fork server is gone: only the pid is left to watch

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(timeout=0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(SERVER_COMMAND, timeout)
            self._read(timeout=0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def _read(self, timeout: float) -> None:
        if self._orphan:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0  # not ours to reap: its status is unknown, as for a server found after a restart
            if self.returncode is None and timeout:
                time.sleep(timeout)
            return
        if not select.select([self._sock], [], [], timeout)[0]:
            return
        chunk = self._sock.recv(4096)
        if not chunk:
            self._orphan = True
            return
        self._buffer += chunk
        if self._buffer.endswith(b"\n"):
            self.returncode = int(json.loads(self._buffer)["status"])
            self._sock.close()

    def __enter__(self) -> ForkedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


class ServerForks:
    """The hub's handle on the fork server: started at first use (or `start()`), restarted if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    def start(self) -> None:
        """Start the fork server and wait until it has imported the server (blocking: call in a thread)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            ours, theirs = socket.socketpair()
            env = {**FORK_SERVER_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": os.environ.get("LANG", "C.UTF-8")}
            started = time.perf_counter()
            self._proc = subprocess.Popen([sys.executable, "-I", "-m", __name__, SERVER_COMMAND], stdin=theirs,
                                          env=env, cwd="/")
            theirs.close()
            ours.settimeout(START_TIMEOUT_S)
            try:
                ready = ours.recv(len(READY))
            except TimeoutError:
                ready = b""
            if ready != READY:
                self._proc.kill()
                raise ForkError(f"the fork server did not start (exit status {self._proc.wait()})")
            ours.settimeout(None)
            self._control = ours
            log.info("fork server %d ready after %.2f s", self._proc.pid, time.perf_counter() - started)

    def spawn(self, args: list[str], env: dict[str, str], process: SessionProcess) -> ForkedServer:
        """Fork a server that becomes `process` and runs with `args` and `env` (blocking: call in a thread)."""
        self.start()
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                socket.send_fds(self._control, [b"s"], [theirs.fileno()])
            theirs.close()
            ours.sendall(json.dumps({"args": args, "env": env, "session": process.to_json()}).encode() + b"\n")
            ours.settimeout(FORK_TIMEOUT_S)
            try:
                reply = json.loads(_read_line(ours, 65536))
            except (OSError, ValueError) as e:
                raise ForkError(f"no answer from the forked server ({type(e).__name__}: {e})") from None
            ours.settimeout(None)
        except BaseException:
            ours.close()
            raise
        if "error" in reply:
            ours.close()
            raise ForkError(reply["error"])
        return ForkedServer(ours, int(reply["pid"]))

    def stop(self) -> None:
        with self._lock:
            if self._control is not None:
                self._control.close()
                self._control = None
            if self._proc is not None:
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None


def is_singleuser_command(cmd: list[str]) -> bool:
    """Whether the spawner's command is the stock single-user server (the one the fork server has imported)."""
    return len(cmd) == 1 and Path(cmd[0]).name == SERVER_COMMAND


if __name__ == "__main__":
    sys.exit(main())
