"""A real one-node Slurm cluster on this machine: munged, slurmctld and slurmd (Debian packages munge,
slurmctld, slurmd), each with its configuration, key, sockets, state and logs in one temporary directory and
ports of its own, so it touches nothing of the machine's own Slurm. The node's Prolog and Epilog are
Onsite's (`python -m hub_config.slurm_node prolog|epilog`), as docs/how-to/operator.md says to install them.
Used by tests/security/test_slurm_sessions.py and by the Slurm hubs of bench/bench_sessions.py (both import it;
it lives in `bench`, the installed package the test suite already imports from).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hub_config.ports import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> list[str]:
    return [d for d in DAEMONS if shutil.which(d, path="/usr/sbin:/usr/bin") is None]


class SlurmCluster:
    """`start()` writes the configuration and starts the three daemons; `stop()` ends them. `cpus` and
    `memory_mb` declare the node bigger than the machine (slurmd's `config_overrides`) so that more sessions
    than cores are placed at once, as the benchmark's 30 need; by default the machine's own."""

    def __init__(self, base: Path, cpus: int | None = None, memory_mb: int | None = None) -> None:
        self.base = base
        self.conf = base / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.pids: dict[str, Path] = {name: base / f"{name}.pid" for name in DAEMONS}
        self.cpus, self.memory_mb = cpus, memory_mb

    def onsite_config(self) -> str:
        """The hub's onsite_config.py lines for sessions on this cluster (its slurm.conf, the jobs' logs)."""
        return (f"c.OnsiteSlurmSpawner.slurm_conf = {str(self.conf)!r}\n"
                f"c.OnsiteSlurmSpawner.job_output = {str(self.base / 'jobs' / 'session-%j.log')!r}\n")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=30)

    def _write(self) -> None:
        base = self.base
        for folder in ("munge", "state", "spool", "log", "jobs"):
            (base / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(base / "munge", 0o711)  # its socket, for jobs submitted as a user (the key stays root's, 0400)
        (base / "munge" / "munge.key").write_bytes(os.urandom(1024))
        os.chmod(base / "munge" / "munge.key", 0o400)
        for hook in ("prolog", "epilog"):
            script = base / f"{hook}.sh"
            script.write_text(f"#!/bin/sh\nexec {sys.executable} -I -m hub_config.slurm_node {hook}\n")
            script.chmod(0o755)
        memory_mb = self.memory_mb or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 512
        overrides = "SlurmdParameters=config_overrides\n" if self.cpus or self.memory_mb else ""
        self.conf.write_text(f"""ClusterName=onsite{os.getpid()}
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={base}/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={self.pids['slurmctld']}
SlurmdPidFile={self.pids['slurmd']}
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
Prolog={base}/prolog.sh
Epilog={base}/epilog.sh
{overrides}NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus or os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN
PartitionName=onsite Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def start(self, timeout: float = 60) -> SlurmCluster:
        self._write()
        munge = self.base / "munge"
        subprocess.run(["munged", f"--socket={munge}/munge.socket", f"--key-file={munge}/munge.key",
                        f"--pid-file={self.pids['munged']}", f"--log-file={munge}/munged.log", f"--seed-file={munge}/seed",
                        "--force"], check=True, capture_output=True, timeout=30)
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(self.conf)], env=self.env, check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%T").stdout.strip()
            if state == "idle":
                return self
            time.sleep(0.2)
        raise RuntimeError(f"the Slurm node did not come up (sinfo: {state!r}):\n{self.logs()}")

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller knows that is not finished: id, name, user, state, node, comment."""
        out = self.run("squeue", "-h", "-o", "%i|%j|%u|%T|%N|%k").stdout
        keys = ("id", "name", "user", "state", "node", "comment")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-30:])
                         for p in sorted((self.base / "log").glob("*.log")))

    def stop(self) -> None:
        for daemon in ("slurmd", "slurmctld", "munged"):
            try:
                pid = int(self.pids[daemon].read_text())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)
