"""Starting a researcher's session: entry re-check, home, workspaces, manifest.

`OnsiteSpawner` re-takes the entry decision at spawn (the log-in may be hours
old, the project may have ended since, the request may come from another
address), creates the person's home under `Settings.workspaces_dir/<user>`
with one workspace per active project, writes the session manifest listing
the datasets those projects are granted today, and starts the single-user
server with the Onsite lock-down configuration.

When the hub runs as root (production, CI) each session is isolated by the OS
(`hub_config.isolation`, `hub_config.netfilter`, `hub_config.session_namespace`,
`singleuser.kernel_sandbox`): the server and its kernels run as the
researcher's own account, with exactly the supplementary groups of the
datasets granted today, resource limits, nftables rules that let the server
reach only the hub API and the review service, and a mount and IPC namespace
of the session's own (private /tmp, /var/tmp and /dev/shm, no other home
visible, nothing else writable); kernels run in network and PID namespaces of
their own and die with their server. A server found gone (killed, crashed) is
torn down like a stopped one, where `poll()` first sees it. An isolated
server is not a new interpreter: it is forked from one process that imported
the single-user server once (`hub_config.server_fork`, `fork_servers`), and
the child becomes the session by the same steps (`SessionProcess`) an exec'd
server's launcher takes (`fork_servers` off: `python -m hub_config.session_namespace`). While a session
lives its entry decision and grants are re-checked every `recheck_interval`
seconds; a session no longer allowed is stopped (SESSION_STOP with the reason).
A re-check never skips: one that cannot read the store is retried
(`recheck_attempts`) and then the session is ended as unchecked
(RECHECK_FAILED). The re-check reads a snapshot, so a long write elsewhere
(a large release request) does not hold it up.

The ledger says who: SESSION_START's actor is whoever asked for the start
(the researcher, or an administrator through the hub API; `started_by`), and
each session has exactly one SESSION_STOP, whose details name who or what
ended it (`stopped_by`: the re-check, the server exiting on its own, or a stop
through the hub) and why.
An unprivileged hub (a developer's `make up`) runs servers as itself and says
loudly, at every start, that sessions are not isolated.

A start runs in three parts so that no database transaction is open while the
OS works (useradd, chown of dataset files, killing processes, nft): what the
session gets is read in one short read transaction (`SessionPlan`), the OS
work and the server start run outside any transaction, and the outcome is
written in another short one: SESSION_START once isolation, network rules
included, is in place and the server process runs, or SESSION_START with
outcome FAILED naming the step that failed, while the researcher is told
which part failed (`SetupStep`) in Japanese and English.
"""
from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from subprocess import Popen
from urllib.parse import urlsplit

from jupyterhub.spawner import LocalProcessSpawner, SpawnException
from sqlalchemy import select
from tornado.ioloop import PeriodicCallback
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, Instance, Int, Unicode, Union, default, validate

from access_control import audit
from access_control.entry import EntryDecision, decide_entry, load_entry_facts, record_entry
from access_control.enums import AuditEventType, Outcome
from access_control.models import Dataset, Project
from access_control.policy import get_person, granted_datasets
from dataplane.manifest import SessionManifest
from hub_config import isolation, netfilter, server_fork, session_namespace
from hub_config.ports import free_port
from hub_config.authenticator import entry_message
from hub_config.isolation import SessionAccount, SessionLimits
from onsite_base.db import read_transaction, transaction
from onsite_base.settings import Settings
from singleuser import CONFIG_DIR
from singleuser.kernelspec import kernelspec_dir

log = logging.getLogger(__name__)

MANIFEST_RELATIVE = Path(".onsite") / "session.json"
OUTBOX_RELATIVE = Path(".onsite") / "outbox"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LISTEN_POLL_S = 0.05  # how often a start asks whether its server accepts connections yet
RECHECK_RETRY_S = 2.0  # pause before the second try of a failed re-check (then twice that, ...)
NOT_ISOLATED_WARNING = (
    "SESSIONS ARE NOT ISOLATED: %s's server runs as the hub's own OS account (uid %d), "
    "so it can read every dataset, every other home and the policy store. "
    "Use this only for a demo or development; run the hub as root for per-user OS accounts "
    "(see docs/how-to/isolation.md)."
)

SERVER_FORKS = server_fork.ServerForks()
"""The hub's one fork server (`OnsiteSpawner.fork_servers`), started with the first spawner."""


class SetupStep(enum.Enum):
    """The part of a session's set-up that failed: `failed_step` of SESSION_START FAILED,
    the SpawnException's reason and, in words, what the researcher is shown."""

    ISOLATION = "isolation"  # OS account, dataset groups and files, home (IsolationError, OSError)
    FIREWALL = "firewall"  # the nftables table of the session's uid (FirewallError)
    SERVER = "server"  # starting the single-user server process
    LEDGER = "ledger"  # writing SESSION_START: a session that cannot be audited is not opened


SETUP_STEP_WORDS = {
    SetupStep.ISOLATION: ("OS アカウントとファイル権限", "the OS account and file permissions"),
    SetupStep.FIREWALL: ("ネットワーク制限", "the network rules"),
    SetupStep.SERVER: ("サーバーの起動", "starting the server"),
    SetupStep.LEDGER: ("監査記録", "the audit record"),
}


def setup_failure_message(step: SetupStep) -> str:
    """What the researcher reads when the set-up failed: which part, that nothing runs, whom to tell."""
    ja, en = SETUP_STEP_WORDS[step]
    return (f"セッションを準備できませんでした（{ja}に失敗）。セッションは開始されていません。施設の担当者に連絡してください。\n"
            f"Your session could not be set up ({en} failed); it was not started. Please tell the facility staff.")


@dataclass(frozen=True)
class SessionPlan:
    """What the policy store gives a session today, read in one short transaction before any OS work."""

    person_id: int | None
    projects: dict[str, dict]  # project id -> the manifest's {"title", "preset", "datasets": {id: path}}
    dataset_files: dict[str, Path]  # every registered dataset: each file is secured at every spawn
    dataset_digests: dict[str, str] = field(default_factory=dict)  # the catalogue's SHA-256 of each dataset's source

    @property
    def granted(self) -> list[str]:
        return sorted({d for p in self.projects.values() for d in p["datasets"]})


def singleuser_config_path(language: str) -> list[Path]:
    """The single-user server's JUPYTER_CONFIG_PATH: the lock-down, then the site language's JupyterLab
    default (labconfig/default_setting_overrides.json: the translation extension's locale)."""
    return [CONFIG_DIR, CONFIG_DIR / "language" / language]


class OnsiteSpawner(LocalProcessSpawner):
    """Local single-user servers with an entry re-check, a session manifest, OS isolation and lock-down."""

    settings = AnyTrait(
        help="""The `onsite_base.settings.Settings` (policy store, datasets, workspaces).
        Default: read from $ONSITE_HOME / $ONSITE_DB_URL.""",
    ).tag(config=True)

    review_url = Unicode(
        "",
        help="""Base URL of the review service as the single-user server reaches it
        (e.g. http://127.0.0.1:PORT/services/onsite-review/); passed as
        $ONSITE_REVIEW_URL to the outbox forwarder, never to kernels. Its port is
        one of the two the server's network rules allow.""",
    ).tag(config=True)

    kernel_data_dir = Unicode(
        "",
        help="""A Jupyter data directory holding the Onsite kernelspec, put first on
        the session's JUPYTER_PATH; the server's LockedKernelSpecManager starts only
        the `onsite` spec in it. Written by `singleuser.kernelspec.write_kernelspec`.""",
    ).tag(config=True)

    isolate = Bool(
        True,
        help="""Run each session as the researcher's own OS account (needs a hub
        running as root): dataset groups, resource limits, network rules. Without
        root, or with False, servers run as the hub's account and the hub logs
        SESSIONS ARE NOT ISOLATED at every start.""",
    ).tag(config=True)

    account_prefix = Unicode(
        "onsite-",
        help="""Prefix of researchers' OS account names (`onsite-tanaka`), so they never
        clash with system accounts. Names longer than 32 characters are shortened
        with a hash.""",
    ).tag(config=True)

    uid_base = Int(
        200000,
        help="""A new account gets uid = gid = uid_base + the person's id in the policy
        store: stable across hub restarts and hosts sharing the store. An account
        that already exists under the name (e.g. from LDAP through sssd) is used as
        it is, unless its uid is below 1000 or the hub's own.""",
    ).tag(config=True)

    dataset_group_prefix = Unicode(
        "onsite-ds-",
        help="""Prefix of the per-dataset groups (`onsite-ds-lfs_demo`); a dataset file
        is root:<group> 0640 and a session holds the groups of its granted datasets.""",
    ).tag(config=True)

    server_firewall = Bool(
        True,
        help="""nftables rules for each isolated session's uid: only the hub API and the
        review service ports on loopback, everything else rejected. Needs the `nft`
        command (Debian package nftables); a spawn fails when it is missing.""",
    ).tag(config=True)

    session_limits = Dict(
        help="""Default resource limits of a session, keys of
        `hub_config.isolation.SessionLimits`: memory_mb (RLIMIT_AS per process, default
        8192), processes (RLIMIT_NPROC, 256), file_size_mb (RLIMIT_FSIZE, 4096),
        cpu_seconds (RLIMIT_CPU per process, 0 = none), nice (5), cpus (CPUs of a Slurm
        session, sbatch --cpus-per-task; 0 = the cluster's default; not applied on the hub host).""",
    ).tag(config=True)

    project_limits = Dict(
        help="""Per-project resource limits overriding `session_limits`, by project id,
        e.g. {"p-census": {"memory_mb": 32768}}. A session working on several
        projects gets the larger of each limit.""",
    ).tag(config=True)

    recheck_interval = Float(
        60.0,
        help="""Seconds between re-checks of a running session's entry decision and
        grants; a session no longer allowed (project ended or suspended, account
        disabled, a granted dataset revoked) is stopped. 0 turns it off.""",
    ).tag(config=True)

    recheck_attempts = Int(
        3,
        help="""Tries of one re-check before a session whose entry decision could not be
        read (store down or locked, each try bounded by `recheck_timeout`) is ended as
        unchecked: SESSION_STOP with reason RECHECK_FAILED and the last error. Tries are
        a few seconds apart. At least 1.""",
    ).tag(config=True)

    recheck_timeout = Float(
        30.0,
        help="""Seconds one re-check try may take before it counts as failed (see
        `recheck_attempts`).""",
    ).tag(config=True)

    private_tmp_mb = Int(
        1024,
        help="""Size in MiB of an isolated session's private tmpfs, which is its /tmp,
        /var/tmp and /dev/shm together (memory, freed when the session ends; writes
        beyond it fail with ENOSPC). No other session sees it.""",
    ).tag(config=True)

    fork_servers = Bool(
        True,
        help="""Start each isolated session's server by forking it from one process that
        imported the single-user server once (`hub_config.server_fork`, started in the
        background when the hub makes its first spawner, e.g. at the first log-in),
        instead of a new interpreter that imports it all again (4–6 CPU-s a start).
        The forked child becomes the session exactly as an exec'd server does. Only
        for the stock single-user command (`Spawner.cmd` left as Onsite sets it).
        Off: each server a new interpreter, as JupyterHub's LocalProcessSpawner does.""",
    ).tag(config=True)

    proc = Union(
        [Instance(Popen), Instance(server_fork.ForkedServer)],
        allow_none=True,
        help="The server's process: a Popen, or a ForkedServer when forked from the pre-imported server.",
    )

    runtime_dir = Unicode(
        "",
        help="""Per-session JUPYTER_RUNTIME_DIR of a session that is not isolated, created
        at spawn under /tmp: short, because ZMQ ipc socket paths must stay under 108
        bytes. An isolated session's is `session_namespace.RUNTIME_DIR`, in its private /tmp.""",
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.fork_servers and self.isolated:
            # The first spawner the hub makes (at its start for running servers, else at the first log-in)
            # has the fork server import the server in the background: the first spawn need not wait for all of it.
            threading.Thread(target=self._warm_fork_server, name="onsite-fork-server-start", daemon=True).start()

    def _warm_fork_server(self) -> None:
        try:
            SERVER_FORKS.start()
        except Exception:
            self.log.exception("the fork server did not start; the next spawn tries again")

    @default("settings")
    def _settings_default(self) -> Settings:
        return Settings.load()

    @validate("recheck_attempts")
    def _at_least_one_attempt(self, proposal) -> int:
        if proposal["value"] < 1:
            raise ValueError("OnsiteSpawner.recheck_attempts must be at least 1: a re-check is never skipped")
        return proposal["value"]

    @validate("private_tmp_mb")
    def _positive_tmp(self, proposal) -> int:
        if proposal["value"] < 1:
            raise ValueError("OnsiteSpawner.private_tmp_mb must be at least 1 (MiB)")
        return proposal["value"]

    @validate("session_limits")
    def _valid_session_limits(self, proposal) -> dict:
        SessionLimits.from_dict(proposal["value"])
        return proposal["value"]

    @validate("project_limits")
    def _valid_project_limits(self, proposal) -> dict:
        for project_id, limits in proposal["value"].items():
            try:
                SessionLimits.from_dict(limits)
            except ValueError as e:
                raise ValueError(f"OnsiteSpawner.project_limits[{project_id!r}]: {e}") from None
        return proposal["value"]

    @property
    def home_dir(self) -> Path:
        return self.settings.workspaces_dir / self.user.name

    @property
    def isolated(self) -> bool:
        return self.isolate and isolation.can_isolate()

    _account: SessionAccount | None = None
    _groups: tuple[int, ...] = ()
    _limits: SessionLimits = SessionLimits()
    _address: str = ""
    _session_datasets: tuple[str, ...] = ()
    _recheck: PeriodicCallback | None = None
    _stop_reason: str = ""
    _stopped_by: str = ""  # who or what ended the session: recheck, server, or (unset) a stop through the hub
    _stop_details: dict = {}  # what the reason refers to (the refused entry decision's event)
    _session_open: bool = False  # SESSION_START OK written and its one SESSION_STOP not yet
    _stopping: bool = False  # inside stop(): its own polls must not start another

    # --- state across hub restarts ---------------------------------------------

    def get_state(self) -> dict:
        state = super().get_state()
        if self.runtime_dir:
            state["runtime_dir"] = self.runtime_dir
        if self._account is not None:
            state["account"] = [self._account.name, self._account.uid, self._account.gid]
        state["address"] = self._address
        state["datasets"] = list(self._session_datasets)
        state["session_open"] = self._session_open
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.runtime_dir = state.get("runtime_dir", "")
        if state.get("account"):
            name, uid, gid = state["account"]
            self._account = SessionAccount(name, uid, gid)
        self._address = state.get("address", "")
        self._session_datasets = tuple(state.get("datasets", ()))
        self._session_open = bool(state.get("session_open", False))

    # clear_state keeps runtime_dir: JupyterHub clears the state when it sees the process
    # gone (poll), before stop(); the teardown removes the directory and forgets it.

    # --- start / stop -----------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Entry decision, plan (read), isolation and server (no transaction), SESSION_START (write)."""
        address = self._request_address()
        decision = await asyncio.to_thread(self.authenticator.entry_check, self.user.name, address, "spawn")
        self._check_entry(decision, address)
        self._address = address
        self._stop_reason = ""
        plan = await asyncio.to_thread(self._read_plan, decision.active_projects, decision.day)
        starter = self._requester()
        details = {"client_address": address, "projects": sorted(plan.projects), "datasets": plan.granted,
                   "isolated": self.isolated, "started_by": starter}
        step = SetupStep.ISOLATION
        try:
            began = time.perf_counter()
            await asyncio.to_thread(self._set_up_session, plan)
            set_up = time.perf_counter()
            step = SetupStep.SERVER
            if not self.isolated:
                self.log.warning(NOT_ISOLATED_WARNING, self.user.name, os.geteuid())
            if self.port == 0:  # else JupyterHub's pick, inside the ephemeral range (hub_config.ports)
                self.port = free_port(self.ip or "127.0.0.1")
            result = await self._start_server()
            await self._until_listening(*result)
            self.log.info("%s's session: OS set-up %.3f s, server process until it listens %.3f s (%s)",
                          self.user.name, set_up - began, time.perf_counter() - set_up,
                          "forked" if self._forks else "exec")
            step = SetupStep.LEDGER
            details["uid"] = self._account.uid if self._account is not None else os.geteuid()
            await asyncio.to_thread(self._write_event, AuditEventType.SESSION_START, details, Outcome.OK, starter)
            self._session_open = True
        except Exception as e:
            # JupyterHub calls stop() next, which tears down whatever was set up.
            if isinstance(e, netfilter.FirewallError):
                step = SetupStep.FIREWALL
            error = f"{type(e).__name__}: {e}"
            if step is not SetupStep.LEDGER:
                await asyncio.to_thread(self._record, AuditEventType.SESSION_START,
                                        {**details, "failed_step": step.value, "error": error}, Outcome.FAILED, starter)
            raise SpawnException(setup_failure_message(step), reason=step.value, status_code=500,
                                 log_message=f"set-up of {self.user.name}'s session failed at {step.value}: {error}") from e
        self._start_recheck()
        return result

    async def _until_listening(self, ip: str, port: int) -> None:
        """Return once the server accepts connections (or has exited, or `http_timeout` passed): JupyterHub's own
        wait for it backs off exponentially with jitter (0.2, 0.4, 0.8 … s), often finding a server up a
        second late, but asks at once after `start()` returns. A bare connection: no request the server logs."""
        deadline = time.monotonic() + self.http_timeout
        while time.monotonic() < deadline and await self._server_may_come_up():
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(LISTEN_POLL_S)
                continue
            writer.close()
            return

    async def _server_may_come_up(self) -> bool:
        """While a start waits for its server to listen: its process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def _check_entry(self, decision: EntryDecision, address: str) -> None:
        """A spawn refused by the entry decision (already in the ledger) shows the researcher every reason."""
        if not decision.allowed:
            raise SpawnException(
                entry_message(decision.reasons),
                reason="entry",
                status_code=403,
                log_message=f"spawn refused for {self.user.name} from {address}: {[r.value for r in decision.reasons]}",
            )
        if decision.day is None:
            raise SpawnException("entry decision without a date", reason="entry")

    # --- the server process: started, polled and stopped here (a Slurm job: hub_config.slurm) ---

    runs_on_hub = True
    """The session's processes run on this host, so its network rules and leftover processes are the hub's
    to set and clear; a Slurm session's are the compute node's (its Prolog and Epilog)."""

    async def _start_server(self) -> tuple[str, int]:
        if self._forks:
            return await self._fork_server()
        if self._isolates:
            return self._exec_server()
        return await super().start()

    async def _poll_server(self) -> int | None:
        return await super().poll()

    async def _stop_server(self, now: bool) -> None:
        await super().stop(now=now)

    @property
    def _server_known(self) -> bool:
        return bool(self.pid)  # the base class forgets the pid once it sees the process gone

    async def poll(self) -> int | None:
        running = self._server_known
        status = await self._poll_server()
        if status is None:
            self._start_recheck()  # after a hub restart the callback is not running yet
        elif running and not self._stopping:
            # Gone on its own (killed, crashed): JupyterHub's User.stop does not call stop() for a
            # server already gone, so the session is torn down here, where the hub first sees it.
            try:
                await self.stop(now=True)
            except Exception:
                self.log.exception("tearing down %s's session after its server exited", self.user.name)
        return status

    async def stop(self, now: bool = False) -> None:
        """Stop the server, then tear the session down even when stopping it failed.

        A server JupyterHub could not stop is exactly the session whose processes
        and network rules must go: every teardown step is tried whatever failed
        before it, each failure is logged and recorded in SESSION_STOP (outcome
        FAILED), and an error of the stop itself is raised again afterwards.
        """
        self._stop_recheck()
        self._stopping = True
        if not self._stop_reason and await self._poll_server() is not None:
            # Gone before anyone asked: killed, crashed, or stopped itself (the audit ledger failing).
            self._stop_reason, self._stopped_by = f"SERVER_EXITED:{self.proc.returncode if self.proc else 'unknown'}", "server"
        proc = self.proc
        stop_error: BaseException | None = None
        try:
            await self._stop_server(now)
        except BaseException as e:
            stop_error = e
            raise
        finally:
            await self._tear_down(proc, stop_error)
            self._stopping = False

    async def _tear_down(self, proc, stop_error: BaseException | None) -> None:
        """Reap, kill every process of the account, drop its network rules and runtime dir; SESSION_STOP. Never raises."""
        failures: dict[str, str] = {}
        if stop_error is not None:
            self.log.error("stopping %s's server failed (%r); tearing the session down anyway", self.user.name, stop_error)
            failures["stop"] = f"{type(stop_error).__name__}: {stop_error}"

        async def attempt(step: str, action, *args) -> None:
            try:
                await asyncio.to_thread(action, *args)
            except Exception as e:
                self.log.exception("%s of %s's session failed", step, self.user.name)
                failures[step] = f"{type(e).__name__}: {e}"

        if proc is not None:
            await attempt("reap", proc.poll)  # the session ends without a zombie left behind
        if self._account is not None and self.isolated and self.runs_on_hub:
            await attempt("kill processes", isolation.kill_account_processes, self._account.uid)
            if self.server_firewall:
                await attempt("remove network rules", netfilter.remove_session_rules, self._account.uid)
        if self.runtime_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            self.runtime_dir = ""
        # Not ended by the re-check nor by itself: stopped through the hub (the researcher, an
        # administrator, the idle culler, the hub shutting down).
        details: dict = {"stopped_by": self._stopped_by or "hub", "reason": self._stop_reason or "STOP_REQUESTED",
                         **self._stop_details}
        was_open, self._session_open = self._session_open, False
        self._stop_reason, self._stopped_by, self._stop_details = "", "", {}
        if not was_open and not failures:
            return  # no session was opened (a failed set-up), or its one SESSION_STOP is written
        if failures:
            details["failures"] = failures
        outcome = Outcome.FAILED if failures else Outcome.OK
        await asyncio.to_thread(self._record, AuditEventType.SESSION_STOP, details, outcome)

    def _requester(self) -> str:
        """Who asked for this start: the handler's current user (the researcher, or an administrator
        or a service through the hub API), or the hub itself when no request is behind it."""
        who = getattr(self.handler, "current_user", None) if self.handler is not None else None
        if who is None:
            return "hub"
        kind = getattr(who, "kind", "user")
        return who.name if kind == "user" else f"{kind}:{who.name}"

    def _request_address(self) -> str:
        if self.handler is None:
            # Not from a web request (e.g. hub restart): no terminal to check.
            return ""
        return self.authenticator.client_address(self.handler)

    # --- session set-up -----------------------------------------------------------

    def _read_plan(self, active_projects: tuple[str, ...], day: date) -> SessionPlan:
        """The person, the active projects with today's grants, and every dataset file: one short read."""
        with read_transaction(self.authenticator.session_factory) as session:
            person = get_person(session, self.user.name)
            projects = {}
            for project_id in active_projects:
                project = session.get(Project, project_id)
                datasets = {d.id: str(d.path) for d in granted_datasets(session, project_id, day)}
                projects[project_id] = {"title": project.title, "preset": project.preset, "datasets": datasets}
            datasets = list(session.scalars(select(Dataset)))
            return SessionPlan(person_id=person.id if person else None, projects=projects,
                               dataset_files={d.id: Path(d.path) for d in datasets},
                               dataset_digests={d.id: d.source_sha256 for d in datasets})

    def _set_up_session(self, plan: SessionPlan) -> None:
        """The OS work of a start, outside any transaction: account, dataset groups and files,
        home, manifest, runtime dir, then the network rules last."""
        group_of: dict[str, int] = {}
        if self.isolated:
            self._account = self._session_account(plan)
            group_of = self._secure_datasets(plan.dataset_files)
        self._session_datasets = tuple(plan.granted)
        self._groups = tuple(sorted({group_of[d] for d in plan.granted if d in group_of}))
        self._limits = self._limits_for(tuple(plan.projects))
        home = self.home_dir
        outbox = home / OUTBOX_RELATIVE
        self._make_home(home, outbox, [home / project_id for project_id in plan.projects])
        self._write_manifest(plan, home / MANIFEST_RELATIVE, outbox)
        if self._account is None:
            self.runtime_dir = tempfile.mkdtemp(prefix="onsite-")
        elif self.server_firewall and self.runs_on_hub:
            netfilter.apply_session_rules(self._account.uid, self._allowed_endpoints())

    def _session_account(self, plan: SessionPlan) -> SessionAccount:
        """The researcher's OS account, with nothing of an earlier session left running."""
        if plan.person_id is None:
            raise isolation.IsolationError(f"{self.user.name} is not in the policy store")
        for needed in (self.settings.home, Path(sys.executable), PROJECT_ROOT):
            isolation.make_traversable(needed)
        isolation.secure_state(self.settings)
        account = isolation.ensure_account(self.user.name, plan.person_id, prefix=self.account_prefix,
                                           uid_base=self.uid_base, home=self.home_dir)
        # Nothing of an earlier session may race the hub while it prepares the home.
        isolation.kill_account_processes(account.uid)
        return account

    def _secure_datasets(self, files: dict[str, Path]) -> dict[str, int]:
        """Every dataset file `root:<its group>` 0640; returns each dataset's gid."""
        group_of = {}
        for dataset_id, path in files.items():
            group_of[dataset_id] = isolation.ensure_dataset_group(dataset_id, prefix=self.dataset_group_prefix)
            isolation.secure_dataset_file(path, group_of[dataset_id])
        return group_of

    def _write_manifest(self, plan: SessionPlan, path: Path, outbox: Path) -> None:
        manifest = SessionManifest.from_dict({"user": self.user.name, "projects": plan.projects, "outbox": str(outbox),
                                               "language": self.settings.language})
        # Written in the hub's private directory, then renamed into the home: the
        # rename replaces whatever the session left at that name (a symlink too)
        # and never writes through it.
        staging = Path(tempfile.mkdtemp(dir=self.settings.runtime_dir))
        try:
            staged = manifest.write(staging / path.name)
            if self._account is not None:
                isolation.give_file(staged, self._account)
            os.replace(staged, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _make_home(self, home: Path, outbox: Path, workspaces: list[Path]) -> None:
        directories = [outbox.parent, outbox, *workspaces]
        if self._account is not None:
            isolation.prepare_home(home, self._account, directories)
            return
        for directory in (home, *directories):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)

    def _limits_for(self, active_projects: tuple[str, ...]) -> SessionLimits:
        base = SessionLimits.from_dict(self.session_limits)
        chosen = [SessionLimits.from_dict({**self.session_limits, **self.project_limits[p]})
                  for p in active_projects if p in self.project_limits]
        if not chosen:
            return base
        limits = chosen[0]
        for other in chosen[1:]:
            limits = limits.most_generous(other)
        return limits

    def _allowed_endpoints(self) -> list[netfilter.Endpoint]:
        endpoints = []
        for url in (self.hub.api_url, self.review_url):
            parts = urlsplit(url)
            if parts.hostname and parts.port:
                endpoints.append(netfilter.Endpoint(parts.hostname, parts.port))
        return endpoints

    # --- the ledger ---------------------------------------------------------------

    def _write_event(self, action: AuditEventType, details: dict, outcome: Outcome, actor: str | None = None) -> None:
        """One event on the session `session:<user>`; the actor is the researcher unless named."""
        with transaction(self.authenticator.session_factory) as session:
            audit.record(session, action, actor=(actor or self.user.name)[: audit.MAX_ACTOR],
                         object=f"session:{self.user.name}"[: audit.MAX_OBJECT], outcome=outcome, details=details)

    def _record(self, action: AuditEventType, details: dict, outcome: Outcome = Outcome.OK, actor: str | None = None) -> None:
        """`_write_event` where a ledger failure must not stop the caller (a teardown, a failure record): logged."""
        try:
            self._write_event(action, details, outcome, actor)
        except Exception:
            self.log.exception("could not write %s to the ledger for %s", action.value, self.user.name)

    # --- periodic re-check --------------------------------------------------------

    def _start_recheck(self) -> None:
        if self.recheck_interval > 0 and self._recheck is None:
            self._recheck = PeriodicCallback(self.recheck, self.recheck_interval * 1000)
            self._recheck.start()

    def _stop_recheck(self) -> None:
        if self._recheck is not None:
            self._recheck.stop()
            self._recheck = None

    async def recheck(self) -> str | None:
        """Take the entry decision and the grant set again; stop the session if it is no longer allowed,
        or if that could not be found out.

        Returns the reason it was stopped, or None. An allowed re-check is not
        written to the ledger (it runs every minute); a refusal is, as
        ENTRY_DECIDE with stage `recheck`, and the stop as SESSION_STOP with the
        reason. A re-check that fails (store down or locked) is tried again, up to
        `recheck_attempts` times, then the session is stopped as RECHECK_FAILED:
        a session is never left running unchecked.
        """
        if self._stop_reason:
            return None
        reason = None
        for attempt in range(1, self.recheck_attempts + 1):
            try:
                reason = await asyncio.wait_for(asyncio.to_thread(self._recheck_reason), self.recheck_timeout)
                break
            except Exception as e:
                error = "timed out" if isinstance(e, asyncio.TimeoutError) else f"{type(e).__name__}: {e}"
                self.log.warning("re-check %d/%d of %s's session failed: %s", attempt, self.recheck_attempts,
                                 self.user.name, error)
                reason = f"RECHECK_FAILED:{error}"[:300]
                if attempt < self.recheck_attempts:
                    await asyncio.sleep(RECHECK_RETRY_S * attempt)
        if reason is None or self._stop_reason:
            return None
        self._stop_reason, self._stopped_by = reason, "recheck"
        self.log.warning("stopping %s's session: %s", self.user.name, reason)
        await self._end_server()
        return reason

    async def _end_server(self) -> None:
        """Stop the session here (server, then the teardown with its reason: JupyterHub does not call
        `stop()` for a server already gone), then report it through the Spawner's own poll callbacks:
        JupyterHub removes the route and forgets the server."""
        try:
            await self.stop()
        except Exception:
            self.log.exception("stopping %s's server after its re-check failed; torn down anyway", self.user.name)
        await self.poll_and_notify()

    def _recheck_reason(self) -> str | None:
        """Why the session may no longer run, or None. Read in a snapshot (never waits for a writer);
        a refusal is then written as ENTRY_DECIDE in a short transaction of its own, and the
        session stops even when that write fails."""
        with read_transaction(self.authenticator.session_factory) as session:
            facts = load_entry_facts(session, self.user.name, self._address)
            decision = decide_entry(facts, datetime.now(timezone.utc))
            if decision.allowed:
                granted = {d.id for p in decision.active_projects for d in granted_datasets(session, p, decision.day)}
        if not decision.allowed:
            try:
                with transaction(self.authenticator.session_factory) as session:
                    entry = record_entry(session, decision, username=facts.username, client_address=self._address,
                                         stage="recheck")
                entry_seq = entry.seq  # chained at the commit
            except Exception as e:
                self.log.error("could not record the refused re-check of %s: %s", self.user.name, e)
                entry_seq = None
            self._stop_details = {"entry_decision_seq": entry_seq}
            return "ENTRY_REFUSED:" + ",".join(r.value for r in decision.reasons)
        lost = sorted(set(self._session_datasets) - granted)
        return "GRANT_REVOKED:" + ",".join(lost) if lost else None

    # --- process environment ----------------------------------------------------

    def _session_view(self) -> session_namespace.SessionView:
        """What an isolated session sees; the code, the interpreter and the state directory stay in view
        wherever they are (a test run keeps its state under /tmp)."""
        settings = self.settings
        kept = (settings.home, settings.datasets_dir, PROJECT_ROOT, Path(sys.prefix), Path(sys.base_prefix))
        return session_namespace.SessionView(home=self.home_dir, workspaces=settings.workspaces_dir, uid=self._account.uid,
                                             gid=self._account.gid, tmp_size_mb=self.private_tmp_mb,
                                             kept=tuple(Path(os.path.realpath(p)) for p in kept))

    def _session_process(self) -> session_namespace.SessionProcess:
        return session_namespace.SessionProcess(view=self._session_view(), limits=self._limits, groups=self._groups)

    @property
    def _isolates(self) -> bool:
        """Whether this start puts the server in the session's account, view and limits."""
        return self.isolated and self._account is not None

    @property
    def _forks(self) -> bool:
        """Whether this start forks the server from the pre-imported one (`fork_servers`)."""
        return (self.fork_servers and self._isolates and not self.shell_cmd and not self.popen_kwargs
                and server_fork.is_singleuser_command(self.cmd))

    async def _fork_server(self) -> tuple[str, int]:
        """LocalProcessSpawner.start, with the process forked from `SERVER_FORKS` instead of Popen."""
        env, args = self.get_env(), self.get_args()
        self.log.info("Forking %s's server: %s %s", self.user.name, server_fork.SERVER_COMMAND, " ".join(args))
        self.proc = await asyncio.to_thread(SERVER_FORKS.spawn, args, env, self._session_process())
        self.pid = self.proc.pid
        return (self.ip or "127.0.0.1", self.port)

    def _exec_server(self) -> tuple[str, int]:
        """LocalProcessSpawner.start for an isolated server not forked: a fresh interpreter becomes the session
        (`python -m hub_config.session_namespace`), then execs the server. No `preexec_fn`: its child of the
        threaded hub could deadlock on, or crash in, a lock another thread held at the fork."""
        command = [*self.cmd, *self.get_args()]
        if self.shell_cmd:
            command = [*self.shell_cmd, shlex.join(command)]
        process = json.dumps(self._session_process().to_json())
        self.log.info("Spawning %s's server: %s", self.user.name, shlex.join(command))
        self.proc = Popen([sys.executable, "-I", "-m", session_namespace.__name__, process, *command],
                          **{"start_new_session": True, **self.popen_kwargs, "env": self.get_env()})
        self.pid = self.proc.pid
        return (self.ip or "127.0.0.1", self.port)

    def make_preexec_fn(self, name: str):
        """A server that is not isolated (no account of its own: a hub not running as root)."""
        home = str(self.home_dir)

        def preexec() -> None:
            # SIGINT must stop the server even when the hub was started with
            # SIGINT ignored (background job).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.umask(0o077)
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self._account.name if self._account is not None and self.isolated else self.user.name
        env["HOME"] = str(self.home_dir)
        env["SHELL"] = "/bin/sh"
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.pop("ONSITE_DB_URL", None)  # the session never learns where the policy store is
        env.pop("ONSITE_HUB_DB_URL", None)
        env["ONSITE_HOME"] = str(self.settings.home)
        env["ONSITE_SESSION"] = str(self.home_dir / MANIFEST_RELATIVE)
        env["ONSITE_REVIEW_URL"] = self.review_url
        # The server answers only the terminal the session was started from (singleuser.terminal_guard.TerminalGuard).
        env["ONSITE_TERMINAL_ADDRESS"] = self._address
        env["ONSITE_TRUSTED_PROXIES"] = ",".join(self.authenticator.trusted_proxy_ips)
        env["JUPYTER_RUNTIME_DIR"] = session_namespace.RUNTIME_DIR if self._account is not None and self.isolated \
            else self.runtime_dir or str(self.home_dir / ".onsite" / "runtime")
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(str(d) for d in singleuser_config_path(self.settings.language))
        if self.kernel_data_dir:
            env["JUPYTER_PATH"] = self.kernel_data_dir
        env["PYTHONNOUSERSITE"] = "1"
        return env

    def get_args(self) -> list[str]:
        args = list(super().get_args())  # a copy: the base class returns the `args` setting itself
        # Kernels talk to the server over ipc sockets: they live in a network
        # namespace of their own. Only the locked kernelspec can be started.
        args.append("--KernelManager.transport=ipc")
        args.append("--ServerApp.kernel_spec_manager_class=singleuser.kernelspec.LockedKernelSpecManager")
        if self.kernel_data_dir:
            args.append(f"--LockedKernelSpecManager.spec_dir={kernelspec_dir(self.kernel_data_dir)}")
        if os.geteuid() == 0 and not self.isolated:
            args.append("--allow-root")  # only when isolation is switched off on a root hub
        return args

    def move_certs(self, paths: dict) -> dict:
        return paths
