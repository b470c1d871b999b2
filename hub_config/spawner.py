"""Starting a researcher's session: entry re-check, home, workspaces, manifest.

`OnsiteSpawner` re-takes the entry decision at spawn (the log-in may be hours
old, the project may have ended since, the request may come from another
address), creates the person's home under `Settings.workspaces_dir/<user>`
with one workspace per active project, writes the session manifest listing
the datasets those projects are granted today, and starts the single-user
server with the Onsite lock-down configuration.

For now the server runs as the hub's own OS account: sessions are NOT isolated
from each other or from the hub's files (OS accounts come with issue 6).
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from datetime import date
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, SpawnException
from traitlets import Any as AnyTrait
from traitlets import Unicode, default

from access_control import audit
from access_control.db import transaction
from access_control.enums import AuditEventType, Outcome
from onsite.settings import Settings

log = logging.getLogger(__name__)

SINGLEUSER_CONFIG_DIR = Path(__file__).resolve().parent / "singleuser"
MANIFEST_RELATIVE = Path(".onsite") / "session.json"
OUTBOX_RELATIVE = Path(".onsite") / "outbox"
NOT_ISOLATED_WARNING = (
    "SESSIONS ARE NOT ISOLATED: %s's server runs as the hub's own OS account (uid %d), "
    "so it can read every dataset, every other home and the policy store. "
    "Use this only for a demo or development (per-user OS accounts: issue 6)."
)


class OnsiteSpawner(LocalProcessSpawner):
    """Local single-user servers with an entry re-check, a session manifest and lock-down."""

    settings = AnyTrait(
        help="""The `onsite.settings.Settings` (policy store, datasets, workspaces).
        Default: read from $ONSITE_HOME / $ONSITE_DB_URL.""",
    ).tag(config=True)

    review_url = Unicode(
        "",
        help="""Base URL of the review service as the single-user server reaches it
        (e.g. http://127.0.0.1:PORT/services/onsite-review/); passed as
        $ONSITE_REVIEW_URL to the outbox forwarder, never to kernels.""",
    ).tag(config=True)

    kernel_data_dir = Unicode(
        "",
        help="""A Jupyter data directory holding the Onsite kernelspec, put first on
        the session's JUPYTER_PATH. Written by `hub_config.config.write_kernelspec`.""",
    ).tag(config=True)

    runtime_dir = Unicode(
        "",
        help="""Per-session JUPYTER_RUNTIME_DIR, created at spawn under /tmp: short,
        because ZMQ ipc socket paths must stay under 108 bytes.""",
    )

    @default("settings")
    def _settings_default(self) -> Settings:
        return Settings.from_env()

    @property
    def home_dir(self) -> Path:
        return self.settings.workspaces_dir / self.user.name

    # --- state across hub restarts ---------------------------------------------

    def get_state(self) -> dict:
        state = super().get_state()
        if self.runtime_dir:
            state["runtime_dir"] = self.runtime_dir
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.runtime_dir = state.get("runtime_dir", "")

    def clear_state(self) -> None:
        super().clear_state()
        self.runtime_dir = ""

    # --- start / stop -----------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        address = self._request_address()
        decision = await asyncio.to_thread(self.authenticator.entry_check, self.user.name, address, "spawn")
        if not decision.allowed:
            from hub_config.authenticator import entry_message

            raise SpawnException(
                entry_message(decision.reasons),
                reason="entry",
                status_code=403,
                log_message=f"spawn refused for {self.user.name} from {address}: {[r.value for r in decision.reasons]}",
            )
        if decision.day is None:
            raise SpawnException("entry decision without a date", reason="entry")
        manifest_path = await asyncio.to_thread(self._prepare_home, decision.active_projects, decision.day, address)
        self.runtime_dir = tempfile.mkdtemp(prefix="onsite-")
        self.notebook_dir = str(self.home_dir)
        self._manifest_path = manifest_path
        self.log.warning(NOT_ISOLATED_WARNING, self.user.name, os.geteuid())
        return await super().start()

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        if self.runtime_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        await asyncio.to_thread(self._record, AuditEventType.SESSION_STOP, {})

    def _request_address(self) -> str:
        handler = getattr(self, "handler", None)
        if handler is None:
            # Not from a web request (e.g. hub restart): no terminal to check.
            return ""
        return self.authenticator.client_address(handler)

    def _prepare_home(self, active_projects: tuple[str, ...], day: date, address: str) -> Path:
        """Home, per-project workspaces, outbox and the session manifest; SESSION_START."""
        from access_control.policy import granted_datasets
        from access_control.models import Project
        from analysis_kernel.session import SessionManifest

        home = self.home_dir
        outbox = home / OUTBOX_RELATIVE
        for directory in (home, outbox.parent, outbox):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        projects: dict[str, dict] = {}
        with transaction(self.authenticator.session_factory) as session:
            for project_id in active_projects:
                project = session.get(Project, project_id)
                datasets = {d.id: str(d.path) for d in granted_datasets(session, project_id, day)}
                projects[project_id] = {"title": project.title, "preset": project.preset, "datasets": datasets}
                workspace = home / project_id
                workspace.mkdir(exist_ok=True)
                os.chmod(workspace, 0o700)
            audit.record(
                session,
                AuditEventType.SESSION_START,
                actor=self.user.name,
                object=f"session:{self.user.name}",
                details={
                    "client_address": address,
                    "projects": sorted(projects),
                    "datasets": sorted({d for p in projects.values() for d in p["datasets"]}),
                },
            )
        manifest = SessionManifest.from_dict({"user": self.user.name, "projects": projects, "outbox": str(outbox)})
        path = home / MANIFEST_RELATIVE
        manifest.write(path)
        return path

    def _record(self, action: AuditEventType, details: dict) -> None:
        try:
            with transaction(self.authenticator.session_factory) as session:
                audit.record(session, action, actor=self.user.name, object=f"session:{self.user.name}", outcome=Outcome.OK, details=details)
        except Exception:
            self.log.exception("could not write %s to the ledger for %s", action.value, self.user.name)

    # --- process environment ----------------------------------------------------

    def make_preexec_fn(self, name: str):
        home = str(self.home_dir)

        def preexec() -> None:
            # No setuid yet (issue 6). SIGINT must stop the server even when the
            # hub was started with SIGINT ignored (background job).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.umask(0o077)
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        env["HOME"] = str(self.home_dir)
        env["SHELL"] = "/bin/sh"
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.pop("ONSITE_DB_URL", None)  # the session never learns where the policy store is
        env["ONSITE_HOME"] = str(self.settings.home)
        env["ONSITE_SESSION"] = str(getattr(self, "_manifest_path", self.home_dir / MANIFEST_RELATIVE))
        env["ONSITE_REVIEW_URL"] = self.review_url
        env["JUPYTER_RUNTIME_DIR"] = self.runtime_dir or str(self.home_dir / ".onsite" / "runtime")
        env["JUPYTER_CONFIG_PATH"] = str(SINGLEUSER_CONFIG_DIR)
        if self.kernel_data_dir:
            env["JUPYTER_PATH"] = self.kernel_data_dir
        env["PYTHONNOUSERSITE"] = "1"
        return env

    def get_args(self) -> list[str]:
        args = super().get_args()
        if os.geteuid() == 0:
            args.append("--allow-root")  # CI runs as root; real deployments never do (issue 6)
        return args

    def move_certs(self, paths: dict) -> dict:
        return paths
