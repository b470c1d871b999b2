"""OnsiteSlurmSpawner's start waits until the job's server listens: batchspawner returns once the server has
said its port, which the server does before importing itself (seconds), and JupyterHub's own readiness check
would then back off (0.2, 0.4, 0.8 … s). The job's state is Slurm's answer to `batch_query_cmd`; here a real
command standing in for squeue's output, the server a real socket."""
from __future__ import annotations

import asyncio
import socket
import time
from types import SimpleNamespace

from hub_config.slurm import OnsiteSlurmSpawner


def spawner(query: str) -> OnsiteSlurmSpawner:
    s = OnsiteSlurmSpawner(user=SimpleNamespace(name="tanaka"), batch_query_cmd=query, exec_prefix="", req_keepvars="PATH",
                           job_check_interval=0.2, http_timeout=10)
    s.job_id = "7"
    return s


def test_the_start_returns_once_the_jobs_server_listens():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]

        async def listen_later() -> None:
            await asyncio.sleep(1.0)
            server.listen()

        async def run() -> float:
            began = time.monotonic()
            later = asyncio.create_task(listen_later())
            await spawner("echo RUNNING node1")._until_listening("127.0.0.1", port)
            waited = time.monotonic() - began
            await later
            return waited

        assert 1.0 <= asyncio.run(run()) < 5


def test_a_job_that_ends_before_its_server_listens_ends_the_wait():
    with socket.socket() as nobody:
        nobody.bind(("127.0.0.1", 0))  # bound, never listening: connections refused
        began = time.monotonic()
        asyncio.run(spawner("echo COMPLETED node1")._until_listening("127.0.0.1", nobody.getsockname()[1]))
        assert time.monotonic() - began < 5  # not http_timeout (10 s)
