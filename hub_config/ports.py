"""Loopback ports for the listeners the hub starts: hub API, proxy API, services, single-user servers.

A port is picked at random below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), not
inside it as `bind(("", 0))` would: outgoing connections of every process on the machine take their
local ports from that range, and one may take the picked port in the seconds before a single-user
server binds it ("port already in use", seen with several hubs on one machine).
"""
from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
"""Ports below are left to services with well-known or configured ports."""


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, below the ephemeral range (a small race remains with
    another picker of the same port; the ephemeral range itself when it starts too low to leave room)."""
    high = ephemeral_low()
    for _ in range(50):
        with socket.socket() as s:
            try:
                s.bind((host, random.randrange(LOWEST, high) if high - LOWEST >= 1000 else 0))
            except OSError:  # taken: pick another
                continue
            return s.getsockname()[1]
    raise OSError(f"no free TCP port on {host} between {LOWEST} and {high}")
