"""Session events: what the researcher does in the server, sent to the hub's audit ledger.

Runs inside every single-user server, as the researcher's own account (see
DESIGN.md for why the server's switches are defence in depth, not the boundary
— the facility terminal and the network are). So the record is not kept here:
`SessionEventForwarder` sends each event — the code the browser makes a kernel
run (`singleuser.kernel_websocket`), the server's contents and kernel events,
and every refusal of the lock-down — to the hub, which writes them to the
audit ledger (`hub_config.audit_sink`), out of the researcher's reach.

Two ways, by what an event gates. What a kernel is about to run is sent at
once, alone, and `record_durably` returns only when the hub has answered that
the ledger committed it (one round trip to the hub per executed cell; nothing
that gates execution is batched): until then the message waits, and if the hub
cannot record it (store down, sink error, no answer within
`SessionEvents.record_timeout_s`) it never reaches the kernel. After
`SessionEvents.max_record_failures` such failures in a row the server stops
itself, kernels included: a session
that cannot be audited does not go on. Everything else (contents, kernel
events, refusals) is queued and sent once a second.
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, TraitError, validate
from traitlets.config import Configurable

log = logging.getLogger(__name__)

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_EVENTS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
SINK_PATH = "/onsite/session-events"  # under $JUPYTERHUB_API_URL (see hub_config.audit_sink)
FORWARD_MS = 1000
MAX_QUEUED = 10_000
MAX_BATCH = 1000  # the hub takes at most this many events a request (hub_config.audit_sink)
SETTINGS_KEY = "onsite_session_events"
"""The forwarder in the web application's settings, for handlers (the kernel websocket)."""


class SessionEvents(Configurable):
    """How the single-user server records what gates execution (set for every server through the hub's
    `c.OnsiteSpawner.args`, e.g. `["--SessionEvents.record_timeout_s=5"]`)."""

    record_timeout_s = Float(
        10.0,
        help="""Seconds a cell waits for the hub to answer that the audit ledger committed its record (the hub
        commits one in milliseconds). With no answer in time the cell is not run and the failure counts
        towards max_record_failures; a record committed after the timeout is in the ledger though its code
        never ran (the safe side). Must be above 0.""",
    ).tag(config=True)

    max_record_failures = Int(
        3,
        help="""Records in a row the hub could not commit (store down, no answer within record_timeout_s)
        before the server stops itself and its kernels: a session that cannot be audited does not go on.
        At least 1.""",
    ).tag(config=True)

    @validate("record_timeout_s")
    def _positive_timeout(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError(f"SessionEvents.record_timeout_s must be above 0, not {proposal.value}")
        return proposal.value

    @validate("max_record_failures")
    def _at_least_one_failure(self, proposal: Any) -> int:
        if proposal.value < 1:
            raise TraitError(f"SessionEvents.max_record_failures must be at least 1, not {proposal.value}")
        return proposal.value


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


class RecordNotDurable(Exception):
    """The hub did not confirm that the ledger committed a record: what it gates must not run."""

    def __init__(self, cause: str, *, stopping: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.stopping = stopping
        """True when this failure ends the session (`SessionEvents.max_record_failures` in a row)."""


class SessionEventForwarder:
    """Sends session events to the hub's append-only log: gating records at once (`record_durably`),
    the others queued, in order, with retries.

    Queued events wait in memory while the hub cannot be reached (a hub restart);
    past MAX_QUEUED the oldest are dropped and the count of dropped events is sent
    with the next batch, so a gap is visible in the log.
    """

    def __init__(self, api_url: str, token: str, on_give_up: Callable[[str], None] | None = None,
                 settings: SessionEvents | None = None) -> None:
        self.endpoint = api_url.rstrip("/") + SINK_PATH
        self.token = token
        self.settings = settings or SessionEvents()
        self.on_give_up = on_give_up
        """Called once, with the cause, after `settings.max_record_failures` failed records in a row: stops
        the server."""
        self.queue: deque[dict] = deque()
        self.dropped = 0
        self.durable_failures = 0
        self._evicted = 0  # events add() pushed out of the queue's front since the current send began
        self._sending = False
        self._callback = PeriodicCallback(self.flush, FORWARD_MS)

    def _request(self, body: dict, timeout: float) -> HTTPRequest:
        return HTTPRequest(self.endpoint, method="POST", body=json.dumps(body),
                           headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
                           connect_timeout=timeout, request_timeout=timeout)

    async def record_durably(self, event: dict) -> None:
        """Send `event` alone; return once the hub answered that the ledger committed it.

        Raises RecordNotDurable otherwise (the hub unreachable or erring, the store
        down, no answer within `record_timeout_s`); the failure is logged here, and
        the `max_record_failures`-th in a row calls `on_give_up`. A record the hub
        commits after the timeout is in the ledger though its code never ran: the
        safe side.
        """
        try:
            response = await AsyncHTTPClient().fetch(
                self._request({"events": [{**event, "at": time.time()}], "dropped": 0},
                              self.settings.record_timeout_s))
            appended = json.loads(response.body).get("appended")
            if response.code != 201 or appended != 1:
                raise ValueError(f"unexpected answer {response.code} {appended!r}")
        except Exception as e:  # any failure means: not known to be durable
            self.durable_failures += 1
            cause = f"{type(e).__name__}: {e}"[:300]
            most = self.settings.max_record_failures
            stopping = self.durable_failures >= most
            log.error("onsite: the hub did not commit a %s record (%d in a row): %s", event.get("kind"),
                      self.durable_failures, cause)
            if self.durable_failures == most and self.on_give_up is not None:
                self.on_give_up(cause)
            raise RecordNotDurable(cause, stopping=stopping) from e
        self.durable_failures = 0

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
                    await AsyncHTTPClient().fetch(self._request({"events": batch, "dropped": sent_dropped}, 30))
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
    """Forward refusals, kernel websocket records and the server's contents and kernel events to the hub
    (`start()` it inside the running event loop)."""
    global _forwarder
    settings = SessionEvents(config=serverapp.config)

    def give_up(cause: str) -> None:
        log.critical("onsite: %d records in a row could not be committed to the audit ledger (%s): "
                     "stopping this server and its kernels", settings.max_record_failures, cause)
        serverapp.stop()

    forwarder = _forwarder = SessionEventForwarder(api_url, token, on_give_up=give_up, settings=settings)
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
    return forwarder  # started by singleuser.serverext once the server's event loop runs
