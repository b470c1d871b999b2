"""Sessions on a real hub: log-in to kernel-ready latency, side by side with a stock JupyterHub; hub API
latency under load; memory per session.

The harness times `ours` against `peer` by median, which does not fit latency
percentiles under concurrency; this module therefore has a report of its own:

    python -m bench.bench_sessions [--single 5] [--concurrent 30] [--sessions 100]

It starts, in the same run on the same machine, two hubs with `--sessions` researchers each:

- ours: `onsite hub` as root, so every session is isolated (its own OS account, dataset groups,
  namespaces, network rules) as in production;
- the peer: a stock JupyterHub of the same version (`LocalProcessSpawner`, each researcher an OS account
  of their own, `DummyAuthenticator`), the same single-user server, JupyterLab and ipykernel, nothing of Onsite;

and, with `--hub ours-slurm --hub peer-slurm`, the same two through Slurm, on a one-node cluster (munged,
slurmctld, slurmd with Onsite's Prolog and Epilog) started for the run as the Slurm test starts it
(bench/slurm_cluster.py), its node declared with a CPU and 8 GiB for every session so that all 30
are placed at once:

- ours-slurm: `onsite hub` with `session_engine = "slurm"` (`OnsiteSlurmSpawner`, production settings);
- peer-slurm: the stock JupyterHub with batchspawner's own `SlurmSpawner` (its stock job script, jobs
  submitted as the researcher through `runuser`), nothing of Onsite: the unisolated Slurm peer.

On each it times log-in to kernel-ready (log-in form, server start, OAuth into the server, kernel start,
`1 + 1` executed), split into those phases: `--single` runs one researcher at a time (alternating the
hubs, after one untimed warm-up each), then `--concurrent` researchers logging in at once (one thread each), and reads the memory of
every session's processes (RSS, and PSS, which counts a page shared by several processes once in all).
Then, on each hub, it starts servers for the rest up to `--sessions` active sessions and times
`GET /hub/api/users/<me>` and `GET /hub/api/` (p50/p95 of 200 calls); it stops short, saying so, when the
machine has less than `MIN_AVAILABLE_MB` of memory left (an exec'd server holds ~170 MB of its own).

`cases()` gives the harness one comparable case: a single log-in to kernel-ready on an isolated
session (ours) against the stock hub (the peer).
"""
from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import requests
from tqdm import tqdm

from access_control import policy
from access_control.enums import Role
from bench import Case, Context
from bench.slurm_cluster import SlurmCluster
from bench.slurm_cluster import missing as missing_slurm_daemons
from hub_config import isolation
from hub_config.ports import free_port
from hub_config.settings import HubSettings
from onsite.demo import DEMO_PROJECT, set_up_demo
from onsite_base.db import make_engine, session_factory, transaction
from onsite_base.settings import Settings

TESTS = Path(__file__).resolve().parents[1] / "tests"
PASSWORD = "Bench-session-2026"
API_CALLS = 200
SPAWN_BATCH = 10
MIN_AVAILABLE_MB = 2048
PHASES = ("login", "spawn", "open", "kernel", "execute")
"""log-in form and POST; server start (POST to ready); OAuth into the server and the lab page; POST api/kernels;
`print(1 + 1)` over the kernel websocket."""
PEER_PREFIX = "onsitepeer"
"""OS accounts of the stock hub's researchers ("onsite…": the test suite's sweep removes any left behind)."""


def _load(name: str, path: Path) -> ModuleType:
    """A helper of the test suite, loaded by path (`tests/` is not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def hubtools() -> ModuleType:
    return _load("onsite_tests_hubtools", TESTS / "functional" / "hubtools.py")


SLURM_SESSION_MB = 8192
"""Memory the Slurm node is declared to have per session (`SessionLimits.memory_mb`'s default, `--mem`)."""
_clusters: list[SlurmCluster] = []  # the run's one Slurm cluster, once a Slurm hub needed it


def slurm_cluster(researchers: int) -> SlurmCluster:
    """The run's one-node Slurm cluster (started at the first call; `stop_slurm_cluster` ends it)."""
    if not _clusters:
        if missing_slurm_daemons():
            raise RuntimeError(f"missing {missing_slurm_daemons()}: apt-get install slurm-wlm munge")
        base = Path(tempfile.mkdtemp(prefix="onsite-bench-slurm-"))
        base.chmod(0o711)
        _clusters.append(SlurmCluster(base, cpus=researchers + 1, memory_mb=(researchers + 1) * SLURM_SESSION_MB).start())
    return _clusters[0]


def stop_slurm_cluster() -> None:
    """Cancel what is left of the run's jobs, end the daemons (their logs are kept), remove the cluster."""
    for cluster in _clusters:
        for job in cluster.jobs():
            cluster.run("scancel", job["id"])
        cluster.stop()
        kept = Path(tempfile.gettempdir()) / "onsite-bench-slurm-logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(cluster.base / "log", kept)
        print(f"the Slurm daemons' logs are kept in {kept}", file=sys.stderr)
        shutil.rmtree(cluster.base, ignore_errors=True)
    _clusters.clear()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass
class BenchHub:
    name: str
    hub: object
    home: Path
    usernames: list[str]
    accounts: list[str] = field(default_factory=list)  # OS accounts to remove at the end

    def account_of(self, username: str) -> str:
        return username if self.name.startswith("peer") else f"{self.hub.names.account_prefix}{username}"

    def stop(self) -> None:
        """Stop the hub, remove the OS accounts its sessions got, and its state (the hub's log is kept)."""
        self.hub.stop()
        kept = Path(tempfile.gettempdir()) / f"onsite-bench-{self.name}-hub.log"
        shutil.copyfile(self.hub.log_path, kept)
        print(f"{self.name}: the hub's log is kept in {kept}", file=sys.stderr)
        for name in self.accounts or [self.account_of(u) for u in self.usernames]:
            try:
                uid = pwd.getpwnam(name).pw_uid
            except KeyError:
                continue
            isolation.kill_account_processes(uid)
            isolation.remove_account(name)
        if self.home.parent.name.startswith("onsite-bench-hub-"):
            shutil.rmtree(self.home.parent, ignore_errors=True)


def start_hub(researchers: int, *, isolate: bool = True, fork: bool = True, slurm: bool = False) -> BenchHub:
    """A fresh demo hub with `researchers` extra researchers (bench001…) in the demo project; `fork`: servers
    forked from the pre-imported one (`OnsiteSpawner.fork_servers`), else each a new interpreter; `slurm`:
    sessions as jobs on the run's Slurm cluster (`session_engine = "slurm"`)."""
    base = Path(tempfile.mkdtemp(prefix="onsite-bench-hub-"))
    base.chmod(0o711)
    home = base / "home"
    settings = Settings(home=home, db_url=f"sqlite:///{home / 'onsite.sqlite'}")
    set_up_demo(settings, rows=500, progress=False)
    usernames = [f"bench{i:03d}" for i in range(1, researchers + 1)]
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            for name in usernames:
                policy.add_person(session, username=name, display_name=name, actor="bench", roles=[Role.RESEARCHER],
                                  password=PASSWORD)
                policy.add_member(session, DEMO_PROJECT, name, actor="bench")
    finally:
        engine.dispose()
    # Every researcher may start at once (the default limit, 20, would answer the rest 429).
    lines = ["c.OnsiteSpawner.recheck_interval = 600", f"c.HubSettings.concurrent_spawn_limit = {max(researchers, 20)}"]
    if not isolate:
        lines.append("c.OnsiteSpawner.isolate = False")
    if slurm:
        lines.append(slurm_cluster(researchers).onsite_config())
    else:
        lines.append(f"c.OnsiteSpawner.fork_servers = {fork}")  # said either way, so a run names what it measured
    (home / "onsite_config.py").write_text("\n".join(lines) + "\n")
    hub = hubtools().RunningHub(home)
    if slurm:
        hub.env["ONSITE_SESSION_ENGINE"] = "slurm"
    hub.start(timeout=180)
    return BenchHub("ours-slurm" if slurm else "ours" if fork else "ours-exec", hub, home, usernames)


PEER_CONFIG = """\
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{home}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{home}/cookie_secret"
c.JupyterHub.pid_file = "{home}/jupyterhub.pid"
c.ConfigurableHTTPProxy.command = ["{proxy}"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = "{home}/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "{password}"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "localprocess"
c.JupyterHub.concurrent_spawn_limit = {limit}
c.Spawner.cmd = ["{singleuser}"]
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 90
"""

PEER_SLURM_CONFIG = """\
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.SlurmSpawner.exec_prefix = "runuser -u {{username}} --"
c.Spawner.env_keep = ["PATH", "LANG", "SLURM_CONF"]
c.SlurmSpawner.req_memory = "{memory_mb}M"
"""
"""batchspawner's SlurmSpawner as it comes (stock job script, poll intervals), but for the submission: without
sudo here, the hub (root) submits as the researcher through runuser; and each job asks for the memory ours asks
(without --mem, Slurm gives a job the whole node's memory, and the sessions would start one at a time)."""


class PeerHub:
    """A stock JupyterHub (`jupyterhub -f`) with the interface of hubtools.RunningHub that HubUser needs."""

    def __init__(self, home: Path, researchers: int, slurm_conf: Path | None = None) -> None:
        self.home = home
        self.ip, self.port = "127.0.0.1", free_port()
        self.log_path = home / "hub.log"
        self.config = home / "jupyterhub_config.py"
        self.config.write_text(PEER_CONFIG.format(
            port=self.port, hub_port=free_port(), proxy_api_port=free_port(), home=home, password=PASSWORD,
            proxy=HubSettings().proxy_command, limit=max(researchers, 20),
            singleuser=Path(sys.executable).parent / "jupyterhub-singleuser"))
        if slurm_conf is not None:
            with self.config.open("a") as config:
                config.write(PEER_SLURM_CONFIG.format(memory_mb=SLURM_SESSION_MB))
        self.slurm_conf = slurm_conf
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def start(self, timeout: float = 180) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ONSITE_", "JUPYTER"))}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"  # the job's, too
        if self.slurm_conf is not None:
            env["SLURM_CONF"] = str(self.slurm_conf)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(self.config)],
                                         cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the stock hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the stock hub did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_peer_hub(researchers: int, slurm: bool = False) -> BenchHub:
    """A stock JupyterHub whose researchers onsitepeer001… (onsitepeers001… through Slurm) are OS accounts with
    homes of their own (and, through Slurm, a shell: the stock job script reads the login environment)."""
    base = Path(tempfile.mkdtemp(prefix="onsite-bench-hub-"))
    base.chmod(0o711)
    home = base / "home"
    home.mkdir()
    prefix = f"{PEER_PREFIX}s" if slurm else PEER_PREFIX
    usernames = [f"{prefix}{i:03d}" for i in range(1, researchers + 1)]
    conf = slurm_cluster(researchers).conf if slurm else None
    bench = BenchHub("peer-slurm" if slurm else "peer", PeerHub(home, researchers, conf), home, usernames, accounts=[])
    for name in usernames:
        user_home = home / "users" / name
        subprocess.run(["useradd", "--home-dir", str(user_home), "--create-home", "--shell",
                        "/bin/sh" if slurm else "/usr/sbin/nologin", name], check=True, capture_output=True)
        bench.accounts.append(name)
    os.chmod(home / "users", 0o711)
    bench.hub.start()
    return bench


@dataclass
class Login:
    """One log-in to kernel-ready: the seconds of each of PHASES, and the browser session."""

    phases: dict[str, float]
    user: object

    @property
    def total(self) -> float:
        return sum(self.phases.values())


def log_in(user) -> requests.Response:
    """HubUser.login with the patience of a browser (30 people at once on 2 cores wait longer than its 10 s)."""
    page = user.http.get(f"{user.hub.url}/hub/login", timeout=300)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    return user.http.post(f"{user.hub.url}/hub/login?next=", data={"username": user.username, "password": PASSWORD,
                          "_xsrf": xsrf}, allow_redirects=False, timeout=300)


def start_server(user, timeout: float = 900) -> requests.Response:
    """POST the hub API to start the server, then wait for it as JupyterHub's spawn page does: one request on the
    progress event stream (polling the user model five times a second, 30 browsers at once would be 150
    requests a second the hub answers on top of the starts)."""
    api = f"{user.hub.url}/hub/api/users/{user.username}"
    r = user.http.post(f"{api}/server", headers=user._hub_xsrf(), timeout=300)
    if r.status_code not in (201, 202):
        return r
    deadline = time.monotonic() + timeout
    with user.http.get(f"{api}/server/progress", headers=user._hub_xsrf(), stream=True, timeout=300) as events:
        for line in events.iter_lines():
            if not line.startswith(b"data:"):
                continue
            event = json.loads(line[len(b"data:"):])
            if event.get("ready"):
                return r
            if event.get("failed") or time.monotonic() > deadline:
                break
    raise RuntimeError(f"the server of {user.username} did not start: {event.get('message', '')[:300]}")


def login_to_kernel_ready(bench: BenchHub, username: str) -> Login:
    """Log-in form → server ready → OAuth into the server → kernel → `print(1 + 1)` answered, timed by phase."""
    tools = hubtools()
    user = tools.HubUser(bench.hub, username)
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[phase], mark = now - mark, now

    if log_in(user).status_code != 302:
        raise RuntimeError(f"log-in of {username} failed")
    lap("login")
    started = start_server(user)
    if started.status_code not in (201, 202):
        raise RuntimeError(f"{username}'s server did not start: HTTP {started.status_code} {started.text[:200]}")
    lap("spawn")
    if user.open_server().status_code != 200:
        raise RuntimeError(f"{username} could not open the server")
    lap("open")
    kernel = user.start_kernel()
    lap("kernel")
    result = user.execute(kernel, "print(1 + 1)", timeout=300)
    if result.stdout.strip() != "2":
        raise RuntimeError(f"{username}'s kernel answered {result.stdout!r} {result.error}")
    lap("execute")
    return Login(phases, user)


def stop_server(user) -> None:
    api = f"{user.hub.url}/hub/api/users/{user.username}"
    user.http.delete(f"{api}/server", headers=user._hub_xsrf(), timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and user.http.get(api, headers=user._hub_xsrf(), timeout=30).json().get("servers"):
        time.sleep(0.5)


def in_threads(function, items: list) -> None:
    threads = [threading.Thread(target=function, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def concurrent_logins(bench: BenchHub, usernames: list[str]) -> tuple[list[Login], list[str]]:
    """Everyone's log-in at once; the sessions that reached a kernel, and what failed for the others (a failure
    under load is part of the result, not a reason to lose the run)."""
    logins: dict[str, Login] = {}
    errors: list[str] = []

    def one(name: str) -> None:
        try:
            logins[name] = login_to_kernel_ready(bench, name)
        except Exception as e:
            errors.append(f"{name}: {e}")

    in_threads(one, usernames)
    if not logins:
        raise RuntimeError(f"{bench.name}: all {len(usernames)} sessions failed: {errors[:3]}")
    return [logins[n] for n in usernames if n in logins], errors


def session_memory_mb(accounts: list[str]) -> dict[str, tuple[float, float]]:
    """(RSS, PSS) in MB of all processes of each OS account, from /proc (PSS: a page shared by n processes
    counts 1/n in each, so the sum over sessions is what they take together)."""
    uids = {}
    for name in accounts:
        try:
            uids[pwd.getpwnam(name).pw_uid] = name
        except KeyError:
            continue
    memory: dict[str, list[float]] = {name: [0.0, 0.0] for name in uids.values()}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            uid = int(fields.get("Uid", "-1").split()[0])
            if uid not in uids or "VmRSS" not in fields:
                continue
            rollup = dict(line.split(":", 1) for line in (status.parent / "smaps_rollup").read_text().splitlines()[1:])
        except (OSError, ValueError):
            continue
        memory[uids[uid]][0] += int(fields["VmRSS"].split()[0]) / 1024
        memory[uids[uid]][1] += int(rollup["Pss"].split()[0]) / 1024
    return {name: (rss, pss) for name, (rss, pss) in memory.items()}


PARTS = ("hub", "proxy", "fork server", "services", "sessions", "slurm")
SLURM_DAEMONS = (b"slurmctld", b"slurmd", b"slurmstepd", b"munged")


def cpu_by_part(bench: BenchHub, accounts: list[str]) -> dict[str, float]:
    """CPU-seconds so far of the hub's process tree, by part: the hub (with the helpers it ran and reaped:
    useradd, nft, the kill helper, sbatch and squeue), the proxy, the fork server, the services, the sessions'
    servers and kernels (the processes of `accounts`, wherever they run), and the Slurm daemons (with the
    Prologs and Epilogs they ran and reaped)."""
    uids = set()
    for name in accounts:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            continue
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            table[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / tick, entry.stat().st_uid,
                                      (entry / "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    hub = bench.hub.proc.pid
    used = dict.fromkeys(PARTS, 0.0)
    for pid, (ppid, cpu, uid, cmdline) in table.items():
        ancestor = ppid
        while ancestor not in (0, 1, hub) and ancestor in table:
            ancestor = table[ancestor][0]
        daemon = cmdline.split(b"\0")[0].rsplit(b"/", 1)[-1]
        if daemon in SLURM_DAEMONS and _clusters:
            used["slurm"] += cpu
            continue
        if pid != hub and ancestor != hub and uid not in uids:
            continue
        part = ("hub" if pid == hub else "sessions" if uid in uids else "fork server" if b"server_fork" in cmdline
                else "proxy" if b"configurable-http-proxy" in cmdline else "services")
        used[part] += cpu
    return used


def cpu_cells(before: dict[str, float], after: dict[str, float], sessions: int) -> str:
    spent = {part: after[part] - before[part] for part in PARTS}
    return " | ".join([*(f"{spent[p]:.1f}" for p in PARTS), f"{sum(spent.values()):.1f}",
                       f"{sum(spent.values()) / sessions:.2f}"])


def api_latencies(user, path: str, calls: int = API_CALLS) -> list[float]:
    url = f"{user.hub.url}/hub/api/{path}"
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        r = user.http.get(url, headers=user._hub_xsrf(), timeout=60)
        out.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {r.status_code}")
    return out


SET_UP_LINE = re.compile(r"session: OS set-up ([0-9.]+) s, server process until it listens ([0-9.]+) s")


def spawner_split(bench: BenchHub) -> str:
    """The spawner's own split of its starts (hub log): OS set-up (account, groups, home, manifest, nftables) and
    starting the server process until it accepts connections (fork or exec), medians."""
    found = SET_UP_LINE.findall(bench.hub.log_path.read_text(errors="replace"))
    if not found:
        return ""
    set_up, process = ([float(x[i]) for x in found] for i in (0, 1))
    return (f"{bench.name}: {len(found)} starts; OS set-up p50 {statistics.median(set_up) * 1000:.0f} ms "
            f"p95 {percentile(set_up, 95) * 1000:.0f} ms, server process until it listens p50 "
            f"{statistics.median(process) * 1000:.0f} ms p95 {percentile(process, 95) * 1000:.0f} ms")


def progress(line: str) -> str:
    """A result line, also shown at once (on stderr): a long run cut short keeps what it measured."""
    print(line, file=sys.stderr, flush=True)
    return line


def phase_cells(logins: list[Login], failed: int = 0) -> str:
    """Each phase's median, then the p50 / p95 of the whole, a failed log-in counting as never ready."""
    medians = " | ".join(f"{statistics.median(x.phases[p] for x in logins):.2f}" for p in PHASES)
    totals = [x.total for x in logins] + [float("inf")] * failed
    return " | ".join([medians, *(f"{q:.2f}" if q < float("inf") else "failed" for q in (percentile(totals, 50),
                                                                                           percentile(totals, 95)))])


def memory_cells(memory: dict[str, tuple[float, float]]) -> str:
    rss = [m[0] for m in memory.values()]
    pss = [m[1] for m in memory.values()]
    return f"{statistics.mean(rss):.0f} MB | {statistics.mean(pss):.0f} MB"


HUBS = {"peer": start_peer_hub, "ours": start_hub, "ours-exec": lambda n: start_hub(n, fork=False),
        "ours-slurm": lambda n: start_hub(n, slurm=True), "peer-slurm": lambda n: start_peer_hub(n, slurm=True)}
"""The hubs a report can compare: the stock JupyterHub, ours, ours with each server a new interpreter, and
ours and the stock hub with batchspawner's SlurmSpawner, both through the run's Slurm cluster."""


def report(single: int, concurrent: int, sessions: int, names: list[str]) -> str:
    researchers = max(sessions, concurrent) + 1
    hubs: list[BenchHub] = []
    timing = ["| hub | researchers | " + " | ".join(f"{p} (p50)" for p in PHASES) + " | total p50 | total p95 |",
              "|---|---|" + "---|" * (len(PHASES) + 2)]
    memory = ["| hub | sessions (server + 1 kernel each) | RSS per session | PSS per session |", "|---|---|---|---|"]
    cpu = ["| hub | log-ins | CPU-s: " + " | ".join(PARTS) + " | all | per session |", "|---|---|" + "---|" * (len(PARTS) + 2)]
    api = ["| hub | hub API call | active sessions | p50 | p95 | max |", "|---|---|---|---|---|---|"]
    try:
        for name in names:
            hubs.append(HUBS[name](researchers))
        for bench in hubs:  # a warm-up, untimed: the first start reads every file from disk (and starts the fork server)
            stop_server(login_to_kernel_ready(bench, bench.usernames[0]).user)
        singles: dict[str, list[Login]] = {b.name: [] for b in hubs}
        for _ in tqdm(range(single), desc="single log-ins", leave=False):
            for bench in hubs:  # alternating: a disturbance of the machine falls on both
                login = login_to_kernel_ready(bench, bench.usernames[0])
                singles[bench.name].append(login)
                stop_server(login.user)
        for bench in hubs if single else ():
            timing.append(progress(f"| {bench.name} | 1 ({single} runs in a row) | {phase_cells(singles[bench.name])} |"))
        for bench in hubs if concurrent else ():
            accounts = [bench.account_of(u) for u in bench.usernames[1:concurrent + 1]]
            cpu_before, started = cpu_by_part(bench, accounts), time.perf_counter()
            logins, errors = concurrent_logins(bench, bench.usernames[1:concurrent + 1])
            wall = time.perf_counter() - started
            cpu.append(progress(f"| {bench.name} | {concurrent} at once, {wall:.1f} s | "
                                f"{cpu_cells(cpu_before, cpu_by_part(bench, accounts), concurrent)} |"))
            failed = f", {len(errors)} failed: {'; '.join(errors)[:300]}" if errors else ""
            timing.append(progress(f"| {bench.name} | {concurrent} at once (all done after {wall:.1f} s{failed}) | "
                                   f"{phase_cells(logins, len(errors))} |"))
            used = session_memory_mb(accounts)
            memory.append(progress(f"| {bench.name} | {len(used)} | {memory_cells(used)} |"))
            if sessions > concurrent:
                api += hub_api_under_load(bench, logins, bench.usernames[concurrent + 1:sessions + 1])
            in_threads(stop_server, [x.user for x in logins])
        split = [line for line in map(spawner_split, hubs) if line]
    except BaseException:
        print("\n".join(["what was measured before the failure:", *timing, "", *cpu, "", *memory]), file=sys.stderr)
        raise
    finally:
        for bench in hubs:
            bench.stop()
        stop_slurm_cluster()
    return "\n".join([*timing, "", *cpu, "", *memory, "", *(api if len(api) > 2 else []), "", *split])


def hub_api_under_load(bench: BenchHub, logins: list[Login], more: list[str]) -> list[str]:
    """Servers for the researchers `more` besides those of `logins`, then the hub API timed from a browser."""
    tools = hubtools()
    extra = []
    for name in tqdm(more, desc="more sessions", leave=False):
        user = tools.HubUser(bench.hub, name)
        log_in(user)
        extra.append(user)
    gate = threading.Semaphore(SPAWN_BATCH)
    ready: list[str] = []

    short: list[str] = []

    def spawn(user) -> None:
        with gate:
            if available_mb() < MIN_AVAILABLE_MB:
                short.append(user.username)
                return
            if start_server(user).status_code in (201, 202):
                ready.append(user.username)

    in_threads(spawn, extra)
    if len(ready) + len(short) != len(extra):
        raise RuntimeError(f"only {len(ready)} of {len(extra)} further servers started")
    if short:
        progress(f"{bench.name}: {len(short)} servers not started, less than {MIN_AVAILABLE_MB} MB of memory left")
    active = len(logins) + len(ready)
    me = logins[0].user
    lines = []
    for path in (f"users/{me.username}", ""):
        lat = api_latencies(me, path)
        lines.append(progress(f"| {bench.name} | GET /hub/api/{path} | {active} | {statistics.median(lat) * 1000:.0f} ms | "
                              f"{percentile(lat, 95) * 1000:.0f} ms | {max(lat) * 1000:.0f} ms |"))
    in_threads(stop_server, [u for u in extra if u.username in ready])
    return lines


def available_mb() -> float:
    """MemAvailable of /proc/meminfo in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def cases(ctx: Context) -> list[Case]:
    isolated = start_hub(2)
    atexit.register(isolated.stop)
    plain = start_peer_hub(2)
    atexit.register(plain.stop)

    def cycle(bench: BenchHub):
        def run() -> None:
            stop_server(login_to_kernel_ready(bench, bench.usernames[0]).user)
        return run

    return [Case("login_to_kernel_ready", cycle(isolated), "stock JupyterHub (LocalProcessSpawner)", cycle(plain),
                 repeat=3, note="log-in form → server → OAuth → kernel → 1 + 1; server stopped after each run")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_sessions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=5, help="log-ins of one researcher in a row, per hub (default 5)")
    parser.add_argument("--concurrent", type=int, default=30, help="researchers logging in at once (default 30)")
    parser.add_argument("--sessions", type=int, default=100, help="active sessions while the hub API is timed (default 100)")
    parser.add_argument("--hub", action="append", choices=sorted(HUBS), dest="hubs",
                        help="hubs to compare, in this order (default: peer, ours); ours-exec: each server a new "
                             "interpreter (OnsiteSpawner.fork_servers = False); ours-slurm, peer-slurm: ours and "
                             "the stock hub with batchspawner's SlurmSpawner, on a one-node Slurm cluster")
    args = parser.parse_args(argv)
    print(report(args.single, args.concurrent, args.sessions, args.hubs or ["peer", "ours"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
