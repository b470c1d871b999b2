"""Session events: what the researcher does in the server, sent to the hub's audit ledger.

Runs inside every single-user server, as the researcher's own account (see
DESIGN.md for why the server's switches are defence in depth, not the boundary
— the facility terminal and the network are). So the record is not kept here:
`SessionEventForwarder` sends each event — the code the browser makes a kernel
run (`singleuser.kernel_websocket`), the server's contents and kernel events,
and every refusal of the lock-down — to the hub, which writes them to the
audit ledger (`hub_config.audit_sink`), out of the researcher's reach.
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback

log = logging.getLogger(__name__)

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_EVENTS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
SINK_PATH = "/onsite/session-events"  # under $JUPYTERHUB_API_URL (see hub_config.audit_sink)
FORWARD_MS = 1000
MAX_QUEUED = 10_000
MAX_BATCH = 1000  # the hub takes at most this many events a request (hub_config.audit_sink)
SETTINGS_KEY = "onsite_session_events"
"""The forwarder in the web application's settings, for handlers (the kernel websocket)."""


def request_path(handler: Any) -> str:
    """The request path below the server's base URL, without leading slash: how a refusal names what was asked."""
    base = handler.base_url.rstrip("/") + "/"
    path = handler.request.path
    return path[len(base):] if path.startswith(base) else path.lstrip("/")


_forwarder: SessionEventForwarder | None = None  # set by forward_session_events(); refusals outside a handler go through it


def record_refusal(method: str, path: str, reason: str, **details: str) -> None:
    log.warning("onsite: refused %s %s (%s)", method, path, reason)
    if _forwarder is not None:
        _forwarder.add({"kind": "refused", "method": method, "path": path, "reason": reason, **details})


class SessionEventForwarder:
    """Sends session events to the hub's append-only log, in order, with retries.

    Events wait in memory while the hub cannot be reached (a hub restart); past
    MAX_QUEUED the oldest are dropped and the count of dropped events is sent
    with the next batch, so a gap is visible in the log.
    """

    def __init__(self, api_url: str, token: str) -> None:
        self.endpoint = api_url.rstrip("/") + SINK_PATH
        self.token = token
        self.queue: deque[dict] = deque()
        self.dropped = 0
        self._evicted = 0  # events add() pushed out of the queue's front since the current send began
        self._sending = False
        self._callback = PeriodicCallback(self.flush, FORWARD_MS)

    def start(self) -> None:
        self._callback.start()

    def stop(self) -> None:
        self._callback.stop()

    def add(self, event: dict) -> None:
        if len(self.queue) >= MAX_QUEUED:
            self.queue.popleft()
            self.dropped += 1
            self._evicted += 1
        self.queue.append({**event, "at": time.time()})

    async def flush(self) -> None:
        """Send what is queued, at most MAX_BATCH events a request: a burst of more must
        not make every later request too large for the hub (the log would stall)."""
        if self._sending:
            return
        self._sending = True
        try:
            while self.queue:
                batch = [self.queue[i] for i in range(min(MAX_BATCH, len(self.queue)))]
                sent_dropped, self._evicted = self.dropped, 0
                try:
                    request = HTTPRequest(self.endpoint, method="POST",
                                          body=json.dumps({"events": batch, "dropped": sent_dropped}),
                                          headers={"Authorization": f"token {self.token}",
                                                   "Content-Type": "application/json"},
                                          request_timeout=30)
                    await AsyncHTTPClient().fetch(request)
                    self.dropped -= sent_dropped
                except HTTPClientError as e:
                    if e.code != 400:
                        log.warning("onsite: session events not yet delivered to the hub (%d waiting): %s", len(self.queue), e)
                        return
                    # Refused as malformed: retrying cannot help. Drop the batch and count it as lost.
                    log.error("onsite: the hub refused %d session events: %s", len(batch), e)
                    self.dropped += len(batch)
                except OSError as e:
                    log.warning("onsite: session events not yet delivered to the hub (%d waiting): %s", len(self.queue), e)
                    return
                # add() may have evicted some of this batch from the front while it was sent.
                for _ in range(max(0, len(batch) - self._evicted)):
                    self.queue.popleft()
        finally:
            self._sending = False


def forward_session_events(serverapp: Any, api_url: str, token: str) -> SessionEventForwarder:
    """Start forwarding refusals, kernel websocket records and the server's contents and kernel events to the hub."""
    global _forwarder
    forwarder = _forwarder = SessionEventForwarder(api_url, token)
    serverapp.web_app.settings[SETTINGS_KEY] = forwarder
    root = Path(serverapp.root_dir)

    async def on_contents(logger: Any, schema_id: str, data: dict) -> None:
        if data.get("action") == "get" and (root / str(data.get("path", ""))).is_dir():
            return  # the file browser lists folders every few seconds: not an action of the researcher
        event = {"kind": "contents", "action": data.get("action"), "path": data.get("path")}
        if data.get("source_path"):
            event["source_path"] = data["source_path"]
        forwarder.add(event)

    async def on_kernel(logger: Any, schema_id: str, data: dict) -> None:
        forwarder.add({"kind": "kernel", "action": data.get("action"), "status": data.get("status"),
                       "kernel_id": data.get("kernel_id"), "kernel_name": data.get("kernel_name")})

    serverapp.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=on_contents)
    serverapp.event_logger.add_listener(schema_id=KERNEL_EVENTS, listener=on_kernel)
    forwarder.start()
    return forwarder
