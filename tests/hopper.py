"""A process that changes its pid every few milliseconds, for tests that a session's processes all end."""
from __future__ import annotations

import time
from pathlib import Path

HOPPER = """
import os, sys, time
beat = sys.argv[1]
while True:  # a new pid every few milliseconds: never where a list of pids read from /proc says it is
    try:
        if os.fork():
            os._exit(0)
    except OSError:
        time.sleep(0.01)
    with open(beat, "w") as f:
        f.write(str(time.time()))
    time.sleep(0.002)
"""


def beating(path: Path) -> bool:
    """The hopper is alive when its heartbeat file changes (`ps` is too slow to catch it)."""
    before = path.read_text() if path.exists() else ""
    time.sleep(0.3)
    return path.exists() and path.read_text() != before


def started(path: Path, timeout: float = 20.0) -> bool:
    """Wait until the hopper beats (Python starts slowly on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if beating(path):
            return True
    return False
