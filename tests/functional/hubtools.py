"""A real Onsite hub in a subprocess, and an HTTP client that uses it like a browser.

`RunningHub` starts `onsite hub` (the CLI, so the same code path as an
operator) on a free port and stops it with SIGINT, as Ctrl-C would. Each hub
has OS names of its own (`HubNames`), so hubs of tests running at the same time
(pytest-xdist workers) never share an account, a group, a uid or an nftables
table; when it stops, as root, what it created goes with it.
`HubUser` logs in through the login form (with its _xsrf), starts the server
through the hub API, opens the server through the OAuth redirects, and runs
code in a real kernel over the kernel websocket. Nothing is mocked.
"""
from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import websocket
from requests.adapters import HTTPAdapter

from hub_config import isolation, netfilter
from hub_config.ports import free_port
from onsite_base.config import CONFIG_FILE_NAME

ROOT = Path(__file__).resolve().parents[2]
ONSITE = [sys.executable, "-m", "onsite.cli"]
# Runs its arguments with SIGINT ignored, as a background job of a non-interactive shell starts.
IGNORING_SIGINT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"


@dataclass(frozen=True)
class HubNames:
    """The OS names of one test hub: accounts `onsite<tag>-tanaka`, groups `onsite<tag>-ds-…`, uids from
    `uid_base` (64 per hub, above the fixed uids of the unit tests). They start with "onsite", so the
    session-end sweep of tests/conftest.py removes whatever a hub left."""

    tag: str

    @classmethod
    def of(cls, home: Path) -> HubNames:
        # From the state directory: a hub restarted on the same home keeps its accounts and uids.
        return cls(hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:6])

    @property
    def account_prefix(self) -> str:
        return f"onsite{self.tag}-"

    @property
    def group_prefix(self) -> str:
        return f"onsite{self.tag}-ds-"

    @property
    def uid_base(self) -> int:
        return 300000 + int(self.tag, 16) * 64

    def site_config(self) -> str:
        return (f"c.OnsiteSpawner.account_prefix = {self.account_prefix!r}\n"
                f"c.OnsiteSpawner.dataset_group_prefix = {self.group_prefix!r}\n"
                f"c.OnsiteSpawner.uid_base = {self.uid_base}\n")

    def accounts(self) -> list[pwd.struct_passwd]:
        return [p for p in pwd.getpwall() if p.pw_name.startswith(self.account_prefix)]

    def remove_all(self) -> list[str]:
        """Kill the processes of this hub's accounts, then remove the accounts, their nftables tables and
        the dataset groups. Returns what kept a process (every account is removed all the same)."""
        survivors = []
        for account in self.accounts():
            try:
                isolation.kill_account_processes(account.pw_uid)
            except isolation.IsolationError as e:
                survivors.append(str(e))
            netfilter.remove_session_rules(account.pw_uid)
            isolation.remove_account(account.pw_name)
        for group in grp.getgrall():
            if group.gr_name.startswith(self.group_prefix):
                isolation.remove_group(group.gr_name)
        return survivors


class RunningHub:
    """`onsite hub` on `ip:port` with state in `home`; use as a context manager."""

    def __init__(self, home: Path, *, db_url: str | None = None, ip: str = "127.0.0.1", port: int | None = None,
                 sigint_ignored: bool = False) -> None:
        self.home = home
        self.sigint_ignored = sigint_ignored  # as a background job of a non-interactive shell starts
        self.ip = ip
        self.port = port or free_port(ip)
        self.env = {**os.environ, "ONSITE_HOME": str(home)}
        self.env.pop("ONSITE_DB_URL", None)
        # The ledger's anchors outside the state directory, but not in the machine's default place.
        self.env["ONSITE_ANCHOR_FILE"] = str(home.parent / f"{home.name}-ledger-anchor.jsonl")
        if db_url:
            self.env["ONSITE_DB_URL"] = db_url
        self.log_path = home / "hub.log"
        self.names = HubNames.of(home)
        self.survivors: list[str] = []  # accounts that kept a process after the hub stopped (as root)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def start(self, timeout: float = 60) -> RunningHub:
        self.home.mkdir(parents=True, exist_ok=True)
        site_config = self.home / CONFIG_FILE_NAME  # the test's own settings, if any, then this hub's names
        text = site_config.read_text() if site_config.exists() else ""
        if "account_prefix" not in text:
            site_config.write_text(text + self.names.site_config())
        log = open(self.log_path, "ab")
        argv = [*ONSITE, "hub", "--ip", self.ip, "--port", str(self.port)]
        if self.sigint_ignored:  # SIG_IGN survives exec; a preexec_fn in this threaded process could deadlock
            argv = [sys.executable, "-c", IGNORING_SIGINT, *argv]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                hub = requests.get(f"{self.url}/hub/api/", timeout=2)
                review = requests.get(f"{self.url}/services/onsite-review/", timeout=2, allow_redirects=False)
                if hub.status_code == 200 and review.status_code not in (404, 502, 503):
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the hub did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> float:
        """SIGINT (Ctrl-C) and wait, then (as root) remove the hub's accounts, groups and nftables tables
        (`survivors` says which kept a process); returns the seconds the hub took to exit."""
        if self.proc is None:
            return 0.0
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        took = time.monotonic() - started
        if os.geteuid() == 0:
            self.survivors += self.names.remove_all()
        return took

    def descendants(self) -> set[int]:
        """Every live process started by the hub, however deep (proxy, service, servers, kernels)."""
        if self.proc is None:
            return set()
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        found, frontier = set(), {self.proc.pid}
        while frontier:
            children = {pid for pid, ppid in parents.items() if ppid in frontier}
            found |= children
            frontier = children
        return found

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> RunningHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _SourceAddressAdapter(HTTPAdapter):
    """Connect from a chosen local address (e.g. 127.0.0.2: another terminal)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def login_error(response: requests.Response) -> str | None:
    """The message JupyterHub's login page shows, unescaped.

    The page declares UTF-8 in a meta tag, not in its Content-Type header, so it
    is decoded as a browser would, not as requests guesses (ISO-8859-1).
    """
    import html as html_lib

    page = response.content.decode("utf-8")
    match = re.search(r'class="login_error">(.*?)</p>', page, re.S)
    return html_lib.unescape(match.group(1)).strip() if match else None


@dataclass
class KernelResult:
    stdout: str
    error: str | None
    data: list[dict] = field(default_factory=list)


class HubUser:
    """One person in one browser: cookies, _xsrf, optional source address."""

    def __init__(self, hub: RunningHub, username: str, *, source_address: str | None = None) -> None:
        self.hub = hub
        self.username = username
        self.http = requests.Session()
        if source_address:
            self.http.mount("http://", _SourceAddressAdapter(source_address))

    def login(self, password: str, *, headers: dict[str, str] | None = None) -> requests.Response:
        # Extra headers go on both requests, as a client faking them would send them
        # (JupyterHub binds the form's _xsrf to the client address it computes).
        page = self.http.get(f"{self.hub.url}/hub/login", headers=headers or {}, timeout=10)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        return self.http.post(
            f"{self.hub.url}/hub/login?next=",
            data={"username": self.username, "password": password, "_xsrf": xsrf},
            headers=headers or {}, allow_redirects=False, timeout=30,
        )

    def _hub_xsrf(self) -> dict[str, str]:
        return {"X-XSRFToken": self.http.cookies.get("_xsrf", path="/hub/") or ""}

    def start_server(self, timeout: float = 90) -> requests.Response:
        """POST the hub API to start the server, then wait until it is ready."""
        api = f"{self.hub.url}/hub/api/users/{self.username}"
        r = self.http.post(f"{api}/server", headers=self._hub_xsrf(), timeout=30)
        if r.status_code not in (201, 202):
            return r
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.http.get(api, headers=self._hub_xsrf(), timeout=10).json()
            server = model.get("servers", {}).get("", {})
            if server.get("ready"):
                return r
            if not server.get("pending") and not server:
                raise RuntimeError(f"the server of {self.username} stopped while starting:\n{self.hub.log_tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"the server of {self.username} was not ready in {timeout} s:\n{self.hub.log_tail()}")

    @property
    def server_url(self) -> str:
        return f"{self.hub.url}/user/{self.username}"

    def open_server(self) -> requests.Response:
        """Follow the OAuth redirects into the single-user server (sets its cookies)."""
        page = self.http.get(f"{self.server_url}/lab", timeout=60)
        if page.status_code != 200:
            return page
        return self.http.get(f"{self.server_url}/api/status", timeout=30)

    def _server_xsrf(self) -> dict[str, str]:
        return {"X-XSRFToken": self.http.cookies.get("_xsrf", path=f"/user/{self.username}/") or ""}

    def start_kernel(self, name: str | None = None) -> str:
        body = {"name": name} if name else {}
        r = self.http.post(f"{self.server_url}/api/kernels", json=body, headers=self._server_xsrf(), timeout=60)
        r.raise_for_status()
        return r.json()["id"]

    def execute(self, kernel_id: str, code: str, timeout: float = 120) -> KernelResult:
        """Run `code` in the kernel over its websocket; returns stdout and the error, if any."""
        ws_url = self.server_url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        ws = websocket.create_connection(ws_url, header=[f"Cookie: {cookie}"], timeout=timeout)
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.username, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        stdout: list[str] = []
        error = None
        data: list[dict] = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        try:
            while not (replied and idle) and time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if kind == "stream":
                    stdout.append(msg["content"]["text"])
                elif kind == "error":
                    error = "\n".join(msg["content"]["traceback"])
                elif kind in ("execute_result", "display_data"):
                    data.append(msg["content"]["data"])
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
        finally:
            ws.close()
        if not replied:
            raise TimeoutError(f"no execute_reply within {timeout} s; output so far: {''.join(stdout)}")
        return KernelResult("".join(stdout), _strip_ansi(error) if error else None, data)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
