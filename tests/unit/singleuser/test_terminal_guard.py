"""The single-user server's terminal guard on a real tornado server, without a hub: which address it
believes, that a direct request (the hub's readiness check) is refused without an audit event,
and that a server started without a terminal refuses everything.
(The attack through a real hub and proxy: tests/security/test_hub_attacks.py.)"""
from __future__ import annotations

import asyncio

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from singleuser import events
from singleuser.terminal_guard import guard_terminal

TERMINAL = "10.1.2.3"


class Status(RequestHandler):
    def get(self) -> None:
        self.finish({"ok": True})


async def status_code(environ: dict[str, str], source: str, headers: dict[str, str]) -> int:
    """GET the server's /api/status from local address `source` with `headers`."""
    app = Application([(r"/user/tanaka/api/status", Status)], base_url="/user/tanaka/")
    guard_terminal(app, environ)
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        request = HTTPRequest(f"http://127.0.0.1:{port}/user/tanaka/api/status", headers=headers, network_interface=source)
        return (await AsyncHTTPClient(force_instance=True).fetch(request, raise_error=False)).code
    finally:
        server.stop()


@pytest.fixture
def refusals(monkeypatch) -> list[dict]:
    """The audit events the guard queues for the hub."""
    forwarder = events.SessionEventForwarder("http://127.0.0.1:1/hub/api", "unused")
    monkeypatch.setattr(events, "_forwarder", forwarder)
    return forwarder.queue  # type: ignore[return-value]


ENVIRON = {"ONSITE_TERMINAL_ADDRESS": TERMINAL, "ONSITE_TRUSTED_PROXIES": "127.0.0.1,::1"}


@pytest.mark.parametrize(
    ("source", "headers", "expected"),
    [
        ("127.0.0.1", {"X-Forwarded-For": TERMINAL}, 200),  # the proxy appended the terminal
        ("127.0.0.1", {"X-Forwarded-For": f"{TERMINAL}, 10.9.9.9"}, 403),  # the browser's own claim is not the last entry
        ("127.0.0.1", {"X-Forwarded-For": "10.9.9.9", "X-Real-Ip": TERMINAL}, 403),  # X-Real-Ip is never believed
        ("127.0.0.2", {"X-Forwarded-For": TERMINAL}, 403),  # not a trusted proxy: its header is ignored
    ],
)
def test_only_the_terminal_as_the_proxy_saw_it_is_answered(refusals, source, headers, expected):
    assert asyncio.run(status_code(ENVIRON, source, headers)) == expected
    if expected == 403:
        assert [(e["kind"], e["method"], e["path"], e["terminal"]) for e in refusals] == [("refused", "GET", "api/status", TERMINAL)]
        assert refusals[0]["client"] != TERMINAL
    else:
        assert not refusals


def test_a_request_not_through_the_proxy_is_refused_without_an_audit_event(refusals):
    # The hub's readiness check: any answer below 500 will do for it, so it is refused like any other address.
    assert asyncio.run(status_code(ENVIRON, "127.0.0.1", {})) == 403
    assert not refusals


def test_a_server_without_a_terminal_refuses_everything(refusals):
    assert asyncio.run(status_code({"ONSITE_TRUSTED_PROXIES": "127.0.0.1"}, "127.0.0.1", {"X-Forwarded-For": TERMINAL})) == 403
    assert [e["terminal"] for e in refusals] == [""]
