"""Sessions as Slurm jobs: `HubSettings.session_engine = "slurm"`.

`OnsiteSlurmSpawner` is `OnsiteSpawner` (entry decision, the plan, the OS
account, dataset groups and files, home, manifest, the server's environment and
arguments, the re-check, the ledger) whose server is a Slurm job (batchspawner's
`SlurmSpawner`) instead of a local process. What differs is where the session's
processes run, so what runs there as root is the compute node's:

- the hub submits the job as root (`sbatch`, no `sudo`), so the job script
  starts as root on the node; it runs `python -m hub_config.slurm_job`,
  which takes exactly the steps a local server's process takes
  (`session_namespace.SessionProcess.become`: the mount and IPC view, the
  limits, the granted datasets' groups, the researcher's uid) and then execs
  batchspawner's single-user wrapper. Accounts and groups need not exist on the
  node: everything is by number, the numbers the hub gave;
- the job's comment carries the researcher's uid and the two endpoints the
  server may reach (the hub API, the review service); the node's Slurm Prolog
  (`slurm_node prolog`) writes the nftables table of that uid before the job
  starts, the Epilog drops it and kills whatever of the uid is left. The job
  refuses to start when the table is missing (a node without the Prolog);
- memory and CPUs come from `session_limits`/`project_limits` (`sbatch --mem`,
  `--cpus-per-task`); RLIMIT_AS and the other rlimits apply as on the hub host;
- stopping the session (the researcher, an administrator, the re-check) is
  `scancel`.

A researcher's `user_options` never reach the job script (it runs as root), and
the hub API that tells the hub the server's port (batchspawner's
`/api/batchspawner`, which sets any attribute of the spawner it is sent) is
replaced by one that takes a port, once, from the starting server's own token.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

from batchspawner import JobStatus, SlurmSpawner
from batchspawner.api import BatchSpawnerAPIHandler
from jinja2 import Environment, StrictUndefined
from jupyterhub.apihandlers import APIHandler, default_handlers
from tornado import web
from traitlets import Float, Unicode, default

from hub_config.slurm_node import job_comment
from hub_config.spawner import OnsiteSpawner

# batchspawner registers its handler with JupyterHub's when imported; it lets a server set any attribute of its
# spawner (job_id, the account, the datasets). Ours replaces it (port_handler).
default_handlers[:] = [h for h in default_handlers if h[1] is not BatchSpawnerAPIHandler]

# No --export: sbatch's environment is already the session's (`get_env()`, what batchspawner runs it with), and
# Slurm's default (ALL) passes it as it is. A list of names (batchspawner's `--export={{keepvars}}`) makes slurmd
# load the job user's login environment first (`su - root` on the node: 0.2-1.4 s a job before it starts, more
# with thirty at once) and leaves root's login variables (LOGNAME, MAIL, ...) in the researcher's server.
JOB_SCRIPT = """#!/bin/sh
#SBATCH --job-name={{ job_name }}
#SBATCH --output={{ output }}
#SBATCH --chdir=/
#SBATCH --comment="{{ comment }}"
#SBATCH --nodes=1
#SBATCH --ntasks=1
{% if memory %}#SBATCH --mem={{ memory }}
{% endif %}{% if nprocs %}#SBATCH --cpus-per-task={{ nprocs }}
{% endif %}{% if partition %}#SBATCH --partition={{ partition }}
{% endif %}{% if runtime %}#SBATCH --time={{ runtime }}
{% endif %}{% if account %}#SBATCH --account={{ account }}
{% endif %}{% if qos %}#SBATCH --qos={{ qos }}
{% endif %}{% if reservation %}#SBATCH --reservation={{ reservation }}
{% endif %}
exec {{ cmd }}
"""


class OnsiteSlurmSpawner(OnsiteSpawner, SlurmSpawner):
    """An Onsite session whose server is a Slurm job on a compute node (see the module's docstring)."""

    runs_on_hub = False

    job_output = Unicode(
        "/dev/null",
        help="""Where a session job's own output goes on the compute node (sbatch --output; %j is
        the job id). The job writes it as root: a directory only root can write, never a
        researcher's home. Default: discarded.""",
    ).tag(config=True)

    slurm_conf = Unicode(
        "",
        help="""The slurm.conf the hub's sbatch, squeue and scancel read (their SLURM_CONF). Empty:
        Slurm's own default, /etc/slurm/slurm.conf.""",
    ).tag(config=True)

    job_check_interval = Float(
        2.0,
        help="""Seconds between the `squeue` calls that check a session's job is still running while its
        start waits for the server to listen (the port is known before the server has imported itself).""",
    ).tag(config=True)

    startup_poll_interval = Float(
        0.2,
        help="""Seconds between the `squeue` calls while a session's job is pending, and between looks at
        whether its server has said its port (batchspawner's default 0.5: on average 0.25 s of every start
        spent waiting for the next look).""",
    ).tag(config=True)

    node_python = Unicode(
        help="""The Python of the Onsite installation on the compute nodes (the same path on every
        node); the job runs `<node_python> -m hub_config.slurm_job`. Default: the hub's.""",
    ).tag(config=True)

    # The hub (root) submits, queries and cancels; the job starts as root and becomes the researcher itself.
    exec_prefix = Unicode("", help="Prefix of the Slurm commands; empty: the hub runs them as itself (root).").tag(config=True)
    batch_script = Unicode(help="""The session job's script (Jinja2), `hub_config.slurm.JOB_SCRIPT` by default.
        Its values are the req_* settings, job_name, output, comment (what the node's Prolog reads),
        memory and nprocs (from the session's limits) and cmd (the session's start, which must stay
        the script's last command).""").tag(config=True)

    @default("node_python")
    def _node_python_default(self) -> str:
        return sys.executable

    @default("batch_script")
    def _batch_script_default(self) -> str:
        return JOB_SCRIPT

    @default("req_homedir")
    def _home_default(self) -> str:
        return str(self.home_dir)

    @default("req_username")
    def _username_default(self) -> str:
        return self._account.name if self._account is not None else self.user.name

    def _warm_fork_server(self) -> None:
        """Servers run on compute nodes: the hub forks none."""

    _dataset_checks: dict[str, str] = {}  # granted dataset file -> the catalogue's SHA-256 of its source

    def _set_up_session(self, plan) -> None:
        super()._set_up_session(plan)
        self._dataset_checks = {str(plan.dataset_files[d]): plan.dataset_digests[d] for d in plan.granted}

    @property
    def _forks(self) -> bool:
        return False

    @property
    def _server_known(self) -> bool:
        return bool(self.job_id)

    async def _start_server(self) -> tuple[str, int]:
        if self._account is None:
            raise RuntimeError("a Slurm session needs an isolating hub (run as root, OnsiteSpawner.isolate = True)")
        self.user_options = {}  # researcher input: never into a script that runs as root
        started = await SlurmSpawner.start(self)
        self._job_asked = time.monotonic()  # it has just seen the job running
        return started

    async def _poll_server(self) -> int | None:
        return await SlurmSpawner.poll(self) if self.job_id else 0

    _job_asked: float = 0.0  # when _server_may_come_up last asked Slurm

    async def _server_may_come_up(self) -> bool:
        """The job still running (or Slurm not answering), asked at most every `job_check_interval`: the
        server posts its port before it imports itself, so the start waits here until it listens."""
        if time.monotonic() - self._job_asked < self.job_check_interval:
            return True
        self._job_asked = time.monotonic()
        return await self.query_job_status() in (JobStatus.RUNNING, JobStatus.UNKNOWN)

    async def _stop_server(self, now: bool) -> None:
        if self.job_id:
            await SlurmSpawner.stop(self, now=now)

    async def _get_batch_script(self, **_subvars) -> str:
        """The script from our values only (batchspawner merges the researcher's user_options into them)."""
        limits = self._limits
        values = {**self.get_req_subvars(),
                  "job_name": f"onsite-{self.user.name}",
                  "output": self.job_output,
                  "comment": job_comment(self._account.uid, self._allowed_endpoints() if self.server_firewall else []),
                  "memory": f"{limits.memory_mb}M",
                  "nprocs": str(limits.cpus) if limits.cpus else "",
                  "cmd": self.cmd_formatted_for_batch()}
        for name in ("partition", "runtime", "account", "qos", "reservation", "output"):
            if re.search(r"\s", values[name] or ""):
                raise ValueError(f"OnsiteSlurmSpawner: {name} {values[name]!r} must not contain white space")
        return Environment(undefined=StrictUndefined, autoescape=False).from_string(self.batch_script).render(**values)

    def cmd_formatted_for_batch(self) -> str:
        """`slurm_job` with what the process becomes, then the server command, all quoted."""
        session = {"process": self._session_process().to_json(), "firewall": self.server_firewall,
                   "datasets": self._dataset_checks}
        wrapper = str(Path(self.node_python).parent / self.batchspawner_singleuser_cmd)
        return shlex.join([self.node_python, "-I", "-m", "hub_config.slurm_job", json.dumps(session),
                           wrapper, *self.cmd, *self.get_args()])

    async def run_command(self, cmd, input=None, env=None):
        if self.slurm_conf:
            env = {**(env if env is not None else os.environ), "SLURM_CONF": self.slurm_conf}
        return await SlurmSpawner.run_command(self, cmd, input=input, env=env)


class PortHandler(APIHandler):
    """POST /hub/api/batchspawner {"port": n}: the starting server says where it listens. Only the server's own
    token, only while its spawn is pending, only once, only a port."""

    @web.authenticated
    def post(self) -> None:
        token = self.get_auth_token()
        spawner = next((s for s in self.current_user.spawners.values()
                        if isinstance(s, OnsiteSlurmSpawner) and s.api_token and s.api_token == token), None)
        if spawner is None or spawner.pending != "spawn" or spawner.port:
            raise web.HTTPError(403, "only a starting session's server may say its port, once")
        body = self.get_json_body()
        port = body.get("port") if isinstance(body, dict) else None
        if set(body or {}) != {"port"} or not isinstance(port, int) or not 0 < port < 65536:
            raise web.HTTPError(400, 'the body must be {"port": <1-65535>} and nothing else')
        spawner.port = port
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


def port_handler() -> tuple[str, type]:
    """For `c.JupyterHub.extra_handlers` (under the hub's prefix: /hub/api/batchspawner, where batchspawner's
    single-user wrapper posts)."""
    return (r"/api/batchspawner", PortHandler)
