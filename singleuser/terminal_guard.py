"""The terminal guard: a session answers only the terminal it was started from.

Runs inside every single-user server, as the researcher's own account (see
DESIGN.md for why the server's switches are defence in depth, not the boundary
— the facility terminal and the network are).

`TerminalGuard` answers 403 to every request (HTTP or websocket) whose client
address is not the terminal the session was started from: a stolen cookie is
useless from another address. The terminal (`$ONSITE_TERMINAL_ADDRESS`) and
the trusted proxies (`$ONSITE_TRUSTED_PROXIES`) are set by the hub's spawner in
the server's environment, never by the researcher; the client address is read
as the hub reads it (`onsite_base.netaddr.client_address`: the last
`X-Forwarded-For` entry, which configurable-http-proxy appends, and never a
header the browser wrote). Runs before any handler, so nothing of the server
answers another address; each refusal is an audit event (`singleuser.events`).
"""
from __future__ import annotations

import logging
from typing import Any

from tornado.routing import Matcher, Rule
from tornado.web import RequestHandler

from onsite_base.netaddr import client_address
from singleuser.events import record_refusal, request_path

log = logging.getLogger(__name__)


class TerminalGuard(Matcher):
    """Matches every request that does not come from the session's terminal (see the module doc).

    Put first in the application's router, so a request from anywhere else
    reaches `ForeignClientHandler` and nothing else. No terminal given (a server
    the Onsite spawner did not start) matches every request: fail closed.
    """

    def __init__(self, terminal: str, trusted_proxies: set[str]) -> None:
        self.terminal = terminal
        self.trusted_proxies = trusted_proxies

    def client(self, request: Any) -> str:
        return client_address(request, self.trusted_proxies)

    def match(self, request: Any) -> dict | None:
        return None if self.terminal and self.client(request) == self.terminal else {}


class ForeignClientHandler(RequestHandler):
    """403 for a request from another address than the session's terminal, recorded as an audit event."""

    def initialize(self, guard: TerminalGuard) -> None:
        self.guard = guard

    @property
    def base_url(self) -> str:
        return self.settings.get("base_url", "/")

    def check_xsrf_cookie(self) -> None:
        """The refusal below answers every method, with or without an _xsrf."""

    def prepare(self) -> None:
        client = self.guard.client(self.request)
        reason = "this session can be used only from the terminal it was started at"
        method = "WS" if self.request.headers.get("Upgrade", "").lower() == "websocket" else self.request.method
        if self.request.headers.get("X-Forwarded-For"):
            record_refusal(method, request_path(self), reason, client=client, terminal=self.guard.terminal)
        else:
            # Not through the proxy, which always appends X-Forwarded-For: the hub's own
            # readiness check (any answer but 5xx will do for it). Refused, not an audit event.
            log.info("onsite: refused %s %s from %s, not through the proxy", method, request_path(self), client)
        for name, value in self.settings.get("headers", {}).items():
            self.set_header(name, value)
        self.set_status(403)
        self.finish({"message": f"{reason}; a request from {client} is refused"})


def guard_terminal(web_app: Any, environ: dict[str, str]) -> TerminalGuard:
    """Refuse every request from another address than $ONSITE_TERMINAL_ADDRESS (set by the spawner)."""
    proxies = {p.strip() for p in environ.get("ONSITE_TRUSTED_PROXIES", "").split(",") if p.strip()}
    guard = TerminalGuard(environ.get("ONSITE_TERMINAL_ADDRESS", ""), proxies)
    web_app.default_router.rules.insert(0, Rule(guard, ForeignClientHandler, {"guard": guard}))
    return guard
