"""Sessions on a real hub: log-in to kernel-ready latency, hub API latency under load, memory.

The harness times `ours` against `peer` by median, which does not fit latency
percentiles under concurrency; this module therefore has a report of its own:

    python -m bench.bench_sessions [--concurrent 20] [--sessions 50] [--single 5]

It starts `onsite hub` (as root: every session isolated under its own OS account,
as in production) with `--sessions` researchers in the demo project, then

1. log-in to kernel-ready, one researcher at a time (`--single` runs): log-in form,
   server start, OAuth into the server, kernel start, `1 + 1` executed;
2. the same for `--concurrent` researchers at once (one thread each);
3. starts servers for the rest up to `--sessions` active sessions, then times
   `GET /hub/api/users/<me>` and `GET /hub/api/` from a researcher's browser
   session (p50/p95 of 200 calls) and reads the memory (RSS) of every session's
   processes from /proc.

`cases()` gives the harness one comparable case: a single log-in to kernel-ready on
an isolated session (ours) against the same hub with isolation switched off
(`OnsiteSpawner.isolate = False`, the peer): what OS isolation costs.
"""
from __future__ import annotations

import argparse
import atexit
import importlib.util
import pwd
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from access_control import policy
from access_control.enums import Role
from bench import Case, Context
from hub_config import isolation
from onsite.demo import DEMO_PROJECT, set_up_demo
from onsite_base.db import make_engine, session_factory, transaction
from onsite_base.settings import Settings

TESTS = Path(__file__).resolve().parents[1] / "tests"
PASSWORD = "Bench-session-2026"
API_CALLS = 200
SPAWN_BATCH = 10


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


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass
class BenchHub:
    hub: object
    home: Path
    usernames: list[str]

    def stop(self) -> None:
        """Stop the hub, remove the OS accounts its sessions got, and its state."""
        self.hub.stop()
        for name in self.usernames:
            try:
                uid = pwd.getpwnam(f"onsite-{name}").pw_uid
            except KeyError:
                continue
            isolation.kill_account_processes(uid)
            isolation.remove_account(f"onsite-{name}")
        if self.home.parent.name.startswith("onsite-bench-hub-"):
            shutil.rmtree(self.home.parent, ignore_errors=True)


def start_hub(researchers: int, *, isolate: bool = True) -> BenchHub:
    """A fresh demo hub with `researchers` extra researchers (bench001…) in the demo project."""
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
    lines = ["c.OnsiteSpawner.recheck_interval = 600"]
    if not isolate:
        lines.append("c.OnsiteSpawner.isolate = False")
    (home / "onsite_config.py").write_text("\n".join(lines) + "\n")
    hub = hubtools().RunningHub(home)
    hub.start(timeout=120)
    return BenchHub(hub, home, usernames)


def login_to_kernel_ready(bench: BenchHub, username: str) -> tuple[float, object]:
    """Seconds from the log-in form to a kernel that has executed `1 + 1`; returns the user too."""
    tools = hubtools()
    user = tools.HubUser(bench.hub, username)
    started = time.perf_counter()
    if user.login(PASSWORD).status_code != 302:
        raise RuntimeError(f"log-in of {username} failed")
    user.start_server(timeout=600)
    if user.open_server().status_code != 200:
        raise RuntimeError(f"{username} could not open the server")
    kernel = user.start_kernel()
    result = user.execute(kernel, "print(1 + 1)", timeout=300)
    if result.stdout.strip() != "2":
        raise RuntimeError(f"{username}'s kernel answered {result.stdout!r} {result.error}")
    return time.perf_counter() - started, user


def stop_server(user) -> None:
    api = f"{user.hub.url}/hub/api/users/{user.username}"
    user.http.delete(f"{api}/server", headers=user._hub_xsrf(), timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and user.http.get(api, headers=user._hub_xsrf(), timeout=30).json().get("servers"):
        time.sleep(0.5)


def concurrent_logins(bench: BenchHub, usernames: list[str]) -> tuple[list[float], list[object]]:
    times: dict[str, float] = {}
    users: dict[str, object] = {}
    errors: list[str] = []

    def one(name: str) -> None:
        try:
            times[name], users[name] = login_to_kernel_ready(bench, name)
        except Exception as e:  # reported, not hidden: a failed session is part of the result
            errors.append(f"{name}: {e}")

    threads = [threading.Thread(target=one, args=(name,)) for name in usernames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(usernames)} sessions failed: {errors[:3]}")
    return [times[n] for n in usernames], [users[n] for n in usernames]


def session_memory_mb(uid_prefix_accounts: list[str]) -> dict[str, float]:
    """RSS in MB of all processes of each session account, from /proc."""
    uids = {}
    for name in uid_prefix_accounts:
        try:
            uids[pwd.getpwnam(f"onsite-{name}").pw_uid] = name
        except KeyError:
            continue
    rss: dict[str, float] = {name: 0.0 for name in uids.values()}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        uid = int(fields.get("Uid", "-1").split()[0])
        if uid in uids and "VmRSS" in fields:
            rss[uids[uid]] += int(fields["VmRSS"].split()[0]) / 1024
    return rss


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


def report(single: int, concurrent: int, sessions: int) -> str:
    bench = start_hub(max(sessions, concurrent) + 1)
    lines = []
    try:
        names = bench.usernames
        singles = []
        for i in tqdm(range(single), desc="single log-ins", leave=False):
            seconds, user = login_to_kernel_ready(bench, names[0])
            singles.append(seconds)
            stop_server(user)
        lines.append(f"| log-in → kernel ready, 1 researcher ({single} runs) | p50 {statistics.median(singles):.2f} s | "
                     f"p95 {percentile(singles, 95):.2f} s | max {max(singles):.2f} s |")
        started = time.perf_counter()
        times, users = concurrent_logins(bench, names[1:concurrent + 1])
        wall = time.perf_counter() - started
        lines.append(f"| log-in → kernel ready, {concurrent} researchers at once | p50 {statistics.median(times):.2f} s | "
                     f"p95 {percentile(times, 95):.2f} s | all ready after {wall:.1f} s |")
        with_kernel = session_memory_mb(names[1:concurrent + 1])
        rest = names[concurrent + 1:sessions + 1] if sessions > concurrent else []
        tools = hubtools()
        extra = []
        for name in tqdm(rest, desc="more sessions", leave=False):
            user = tools.HubUser(bench.hub, name)
            user.login(PASSWORD)
            extra.append(user)
        gate = threading.Semaphore(SPAWN_BATCH)  # below the hub's concurrent_spawn_limit (20): no 429s
        ready: list[str] = []

        def spawn(user) -> None:
            with gate:
                if user.start_server(timeout=900).status_code in (201, 202):
                    ready.append(user.username)

        threads = [threading.Thread(target=spawn, args=(u,)) for u in extra]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        spawn_wall = time.perf_counter() - started
        if len(ready) != len(extra):
            raise RuntimeError(f"only {len(ready)} of {len(extra)} further servers started")
        active = len(users) + len(extra)
        me = users[0]
        for path in (f"users/{me.username}", ""):
            lat = api_latencies(me, path)
            lines.append(f"| GET /hub/api/{path or ''} with {active} active sessions ({API_CALLS} calls) | "
                         f"p50 {statistics.median(lat) * 1000:.0f} ms | p95 {percentile(lat, 95) * 1000:.0f} ms | "
                         f"max {max(lat) * 1000:.0f} ms |")
        server_only = session_memory_mb([u.username for u in extra])
        if with_kernel:
            lines.append(f"| memory per session, server + 1 kernel ({len(with_kernel)} sessions) | "
                         f"mean {statistics.mean(with_kernel.values()):.0f} MB | max {max(with_kernel.values()):.0f} MB | |")
        if server_only:
            lines.append(f"| memory per session, server only ({len(server_only)} sessions, started {len(extra)} at once "
                         f"in {spawn_wall:.1f} s) | mean {statistics.mean(server_only.values()):.0f} MB | "
                         f"max {max(server_only.values()):.0f} MB | |")
    finally:
        bench.stop()
    return "\n".join(["| measure | | | |", "|---|---|---|---|", *lines])


def cases(ctx: Context) -> list[Case]:
    isolated = start_hub(2)
    atexit.register(isolated.stop)
    plain = start_hub(2, isolate=False)
    atexit.register(plain.stop)

    def cycle(bench: BenchHub):
        def run() -> None:
            _, user = login_to_kernel_ready(bench, bench.usernames[0])
            stop_server(user)
        return run

    return [Case("login_to_kernel_ready", cycle(isolated), "same hub, isolate=False", cycle(plain), repeat=3,
                 note="log-in form → server → OAuth → kernel → 1 + 1; server stopped after each run")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_sessions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=5, help="sequential log-ins of one researcher (default 5)")
    parser.add_argument("--concurrent", type=int, default=20, help="researchers logging in at once (default 20)")
    parser.add_argument("--sessions", type=int, default=50, help="active sessions while the hub API is timed (default 50)")
    args = parser.parse_args(argv)
    print(report(args.single, args.concurrent, args.sessions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
