"""The hub's listener ports are picked below the ephemeral range, where outgoing connections take theirs."""
from __future__ import annotations

import socket

from hub_config import ports


def test_a_picked_port_is_free_and_below_the_ephemeral_range():
    picked = {ports.free_port() for _ in range(20)}
    assert all(ports.LOWEST <= port < ports.ephemeral_low() for port in picked), picked
    assert len(picked) > 1  # at random, not one fixed port
    with socket.socket() as s:
        s.bind(("127.0.0.1", picked.pop()))


def test_a_port_something_listens_on_is_never_picked(monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", ports.free_port()))
        listener.listen()
        taken = listener.getsockname()[1]
        choices = iter([taken, taken, taken + 1 if taken + 1 < ports.ephemeral_low() else taken - 1])
        monkeypatch.setattr(ports.random, "randrange", lambda low, high: next(choices))
        assert ports.free_port() != taken
