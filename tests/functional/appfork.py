"""A web app in its own process per test, forked from one that imported the app once.

The admin and reviewer apps' tests start a server per test (96 of them): each with its own
environment, database and process, as a production service runs. Importing the app costs
~1.5 CPU-s a start; a "zygote" process pays it once per test worker and forks a server
for each test (the server scripts, e.g. review_web_server.py, run `serve_from_argv`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import requests

Serve = Callable[[int, str], Coroutine[Any, Any, None]]


def serve_from_argv(serve: Serve) -> None:
    """`script PORT PREFIX`: serve (by hand). `script --zygote`: read one JSON job a line
    ({"port", "prefix", "env", "log"}), fork a server for it and answer with its pid."""
    if sys.argv[1:] != ["--zygote"]:
        logging.basicConfig(level=logging.INFO)
        asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
        return
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the servers
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os.setsid()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.environ.clear()
            os.environ.update(job["env"])
            try:
                logging.basicConfig(level=logging.INFO)
                asyncio.run(serve(job["port"], job["prefix"]))
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(1)
        print(pid, flush=True)


class AppForker:
    """The test side: one zygote per server script, a server per `start`."""

    def __init__(self, script: Path) -> None:
        self.zygote = subprocess.Popen([sys.executable, str(script), "--zygote"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)

    def start(self, port: int, prefix: str, env: dict[str, str], log: Path, probe: str) -> AppServer:
        """A server on `port` with `env`; returns once `probe` (a URL) answers."""
        self.zygote.stdin.write(json.dumps({"port": port, "prefix": prefix, "env": dict(env), "log": str(log)}) + "\n")
        self.zygote.stdin.flush()
        server = AppServer(int(self.zygote.stdout.readline()), log)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(probe, timeout=1)
                return server
            except requests.ConnectionError:
                if not server.alive() or time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(f"the app did not start:\n{server.log_tail()}") from None
                time.sleep(0.1)

    def close(self) -> None:
        self.zygote.stdin.close()
        self.zygote.wait(10)


class AppServer:
    def __init__(self, pid: int, log: Path) -> None:
        self.pid, self.log = pid, log

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.05)

    def log_tail(self, chars: int = 8000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"
