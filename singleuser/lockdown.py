"""Lock-down of the single-user server: what the browser may not do, and what it does is audited.

Loaded by `singleuser.serverext` inside every single-user server (the server
runs as the researcher's own account; see DESIGN.md for why these switches are
defence in depth, not the boundary — the facility terminal and the network are).

- `LockdownAuthorizer` refuses (403) file download and export: `/files/`,
  `/view/`, `/nbconvert/`, `/api/nbconvert`, any `?download=` request, and
  binary reads through the contents API (`format=base64`) except images, which
  JupyterLab's image viewer needs. What stays open, because JupyterLab cannot
  open a document without it: `GET /api/contents/<path>` of notebooks, text
  files and directory listings (content shown on screen is on screen anyway).
- `LockdownContentsManager` accepts uploads (JupyterLab uploads every file as
  `format=base64`, large ones in chunks) only under `Lockdown.intake_dir` and
  up to `Lockdown.intake_max_bytes`. Saving notebooks and text typed in the
  editor is not an upload and works everywhere in the home.
  Binary contents reads other than images are refused by the contents manager
  too, whatever the query asks for (without `format` the server itself falls
  back to base64 for a file that is not UTF-8).
- `AuditedKernelWebsocketConnection` records the code (and the user
  expressions) of every `execute_request` the browser sends, before it reaches the kernel (never the
  outputs, never from the kernel), and what the browser feeds a running cell
  (`input_reply`, comm data). It reads each message with the same decoder the
  kernel uses and fails closed: a message it cannot read, or of a type not in
  `ALLOWED_MESSAGES` (e.g. `debug_request`, whose `evaluate` would run code
  unrecorded), never reaches the kernel. `SessionEventForwarder` sends these,
  with the server's contents and kernel events, to the hub, which writes them
  to the audit ledger (`hub_config.audit_sink`), out of the researcher's reach.
- `TerminalGuard` answers 403 to every request (HTTP or websocket) whose client
  address is not the terminal the session was started from: a stolen cookie
  is useless from another address. The terminal (`$ONSITE_TERMINAL_ADDRESS`)
  and the trusted proxies (`$ONSITE_TRUSTED_PROXIES`) are set by the hub's
  spawner in the server's environment, never by the researcher; the client
  address is read as the hub reads it (`onsite_base.netaddr.client_address`:
  the last `X-Forwarded-For` entry, which configurable-http-proxy appends, and
  never a header the browser wrote). Runs before any handler, so nothing of the
  server answers another address; each refusal is an audit event.
- `make_undumpable()` (called from the server's config file, before anything
  of the researcher runs) makes the server process non-dumpable: its
  /proc/<pid>/environ (the Hub token), mem and maps become root's, and no
  process of the same account can ptrace it.
"""
from __future__ import annotations

import ctypes
import json
import logging
import mimetypes
import os
import time
from collections import deque
from pathlib import Path, PurePosixPath
from typing import Any

from jupyterhub.singleuser.extension import JupyterHubAuthorizer
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.services.kernels.connection.base import deserialize_binary_message, deserialize_msg_from_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback
from tornado.routing import Matcher, Rule
from tornado.web import HTTPError, RequestHandler
from traitlets import Int, Unicode
from traitlets.config import Configurable

from onsite_base.netaddr import client_address
from singleuser.kernelspec import KERNEL_NAME

log = logging.getLogger(__name__)

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_EVENTS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
SINK_PATH = "/onsite/session-events"  # under $JUPYTERHUB_API_URL (see hub_config.audit_sink)
REFUSED_PREFIXES = ("files", "view", "nbconvert", "api/nbconvert", "api/terminals", "terminals")
MAX_CODE_CHARS = 100_000  # a cell longer than this is recorded truncated, with its full length
FORWARD_MS = 1000
MAX_QUEUED = 10_000
MAX_BATCH = 1000  # the hub takes at most this many events a request (hub_config.audit_sink)
PR_SET_DUMPABLE = 4
# Messages from the browser that carry what a kernel runs or is fed: (event kind, content field).
RECORDED_MESSAGES = {
    "execute_request": ("execute", "code"),
    "input_reply": ("input", "value"),
    "comm_open": ("comm", "data"),
    "comm_msg": ("comm", "data"),
}
# What the browser may send a kernel: what JupyterLab's notebooks and consoles use.
# Not debug_request: the debugger's `evaluate` runs code that no execute_request records.
ALLOWED_MESSAGES = frozenset({
    "execute_request", "inspect_request", "complete_request", "history_request", "is_complete_request",
    "comm_info_request", "kernel_info_request", "comm_open", "comm_msg", "comm_close",
    "shutdown_request", "interrupt_request", "input_reply",
})


class Lockdown(Configurable):
    """Settings of the single-user lock-down (set in singleuser/jupyter_config/jupyter_server_config.py)."""

    intake_dir = Unicode(
        "intake",
        help="""Folder, relative to the server's root (the researcher's home), into which
        files may be uploaded from the browser; uploads anywhere else are refused (403).
        Created at server start (0700).""",
    ).tag(config=True)

    intake_max_bytes = Int(
        50 * 1024 * 1024,
        help="""Largest file (bytes, after base64 decoding) that may be uploaded into the
        intake folder, counting every chunk of a chunked upload. 0 refuses all uploads.
        Keep ServerApp.max_body_size above this plus base64 overhead, or large uploads
        fail at the HTTP layer first.""",
    ).tag(config=True)


def _relative(handler: Any) -> str:
    """The request path below the server's base URL, without leading slash."""
    base = handler.base_url.rstrip("/") + "/"
    path = handler.request.path
    return path[len(base):] if path.startswith(base) else path.lstrip("/")


def is_image(path: str) -> bool:
    kind, _ = mimetypes.guess_type(path)
    return bool(kind) and kind.startswith("image/")


def refusal(handler: Any, action: str, resource: str) -> str | None:
    """Why this request is a download or export, or None when it may go on."""
    relative = _relative(handler)
    if any(relative == p or relative.startswith(p + "/") for p in REFUSED_PREFIXES):
        return f"{relative.split('/')[0]} is switched off in Onsite"
    if resource in ("nbconvert", "terminals"):
        return f"{resource} is switched off in Onsite"
    if handler.get_query_argument("download", None) is not None:
        return "downloads are switched off in Onsite"
    if resource == "contents" and action == "read" and handler.get_query_argument("format", None) == "base64":
        target = relative.removeprefix("api/contents/")
        if not is_image(target):
            return "binary reads of files other than images are switched off in Onsite"
    return None


def make_undumpable() -> None:
    """PR_SET_DUMPABLE 0 for this process: /proc/<pid>/environ, mem, maps and fd become
    root's and ptrace by the same account is refused, so no process of the session
    reads the server's Hub token. Lost on execve, so the server calls it itself."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(errno)}")


_forwarder: SessionEventForwarder | None = None  # set by load(); refusals outside a handler go through it


def record_refusal(method: str, path: str, reason: str, **details: str) -> None:
    log.warning("onsite: refused %s %s (%s)", method, path, reason)
    if _forwarder is not None:
        _forwarder.add({"kind": "refused", "method": method, "path": path, "reason": reason, **details})


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
            record_refusal(method, _relative(self), reason, client=client, terminal=self.guard.terminal)
        else:
            # Not through the proxy, which always appends X-Forwarded-For: the hub's own
            # readiness check (any answer but 5xx will do for it). Refused, not an audit event.
            log.info("onsite: refused %s %s from %s, not through the proxy", method, _relative(self), client)
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


def requested_kernel(handler: Any, resource: str) -> Any:
    """The kernel name a POST/PATCH of /api/kernels or /api/sessions asks to start, or None."""
    if handler.request.method not in ("POST", "PATCH") or resource not in ("kernels", "sessions"):
        return None
    try:
        body = json.loads(handler.request.body or b"{}")  # as the handler's get_json_body reads it
    except ValueError:
        return None  # the handler answers 400 itself
    if not isinstance(body, dict):
        return None
    if resource == "sessions":
        kernel = body.get("kernel")
        return kernel.get("name") if isinstance(kernel, dict) and kernel.get("id") is None else None
    return body.get("name")


class LockdownAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's scope check, then Onsite's refusals of download, export and other kernels."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        reason = refusal(handler, action, resource)
        if reason is not None:
            record_refusal(handler.request.method, _relative(handler), reason)
            return False
        name = requested_kernel(handler, resource)
        allowed = getattr(handler.kernel_spec_manager, "locked_name", KERNEL_NAME)
        if name is not None and name != allowed:
            # 403 with the reason (the kernelspec manager's own refusal would surface as a 500).
            asked = str(name)[:64].replace("%", "?")  # echoed in a log format string: no % of the client's
            reason = f"only the kernel {allowed!r} can be started in Onsite, not {asked!r}"
            record_refusal(handler.request.method, _relative(handler), reason)
            raise HTTPError(403, reason)
        return super().is_authorized(handler, user, action, resource)


def check_upload(model: dict, path: str, contents_manager: Any) -> None:
    """Refuse (403) an upload outside the intake folder, (413) one over the size limit."""
    if model.get("type") != "file" or model.get("format") != "base64":
        return  # a notebook or text file saved from the editor: not an upload
    settings = Lockdown(config=contents_manager.config)
    parts = PurePosixPath(path.strip("/")).parts
    refused = HTTPError(403, f"uploads are accepted only into the folder {settings.intake_dir}/")
    if not parts or parts[0] != settings.intake_dir or ".." in parts or len(parts) < 2:
        raise refused
    # Not through a symbolic link the kernel planted in (or as) the intake folder.
    root = os.path.realpath(contents_manager.root_dir)
    if not os.path.realpath(os.path.join(root, *parts)).startswith(os.path.join(root, settings.intake_dir) + os.sep):
        raise refused
    content = model.get("content") or ""
    size = len(content) * 3 // 4 - content[-2:].count("=")
    chunk = model.get("chunk")
    if chunk is not None and chunk != 1:  # later chunks are appended to what is there
        existing = Path(contents_manager.root_dir, *parts)
        size += existing.stat().st_size if existing.is_file() else 0
    if size > settings.intake_max_bytes:
        raise HTTPError(413, f"uploads are limited to {settings.intake_max_bytes // (1024 * 1024)} MB "
                             f"(this one is at least {size // (1024 * 1024)} MB)")


class LockdownContentsManager(AsyncLargeFileManager):
    """JupyterLab's default contents manager, checking every upload chunk and every read.

    A pre-save hook would not do: the large-file manager runs hooks on the first
    chunk only, so later chunks could append anywhere.
    """

    async def save(self, model: dict, path: str = "") -> dict:
        check_upload(model, path, self)
        return await super().save(model, path)

    async def get(self, path: str, content: bool = True, type: str | None = None, format: str | None = None,
                  require_hash: bool = False) -> dict:
        model = await super().get(path, content=content, type=type, format=format, require_hash=require_hash)
        # Without `format` the server sends a file that is not UTF-8 as base64: the
        # authorizer's query check alone would let that through.
        if model.get("type") == "file" and model.get("format") == "base64" and model.get("content") is not None \
                and not is_image(path):
            reason = "binary reads of files other than images are switched off in Onsite"
            record_refusal("GET", f"api/contents/{path.strip('/')}", reason)
            raise HTTPError(403, reason)
        return model


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


class AuditedKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """The kernel websocket, recording what the browser makes the kernel run (never outputs).

    Each message is decoded exactly as it will reach the kernel (v1 protocol: the
    session's own unpacker, which the kernel shares; legacy: the parent's JSON or
    binary decoding, re-sent as parsed). A message that cannot be decoded, or whose
    type is not in ALLOWED_MESSAGES, is dropped and the refusal recorded: nothing
    reaches the kernel unrecorded.
    """

    def handle_incoming_message(self, incoming_msg: Any) -> None:
        try:
            msg_type, event = self._inspect(incoming_msg)
        except Exception as e:
            self._refuse(f"unreadable kernel message dropped ({type(e).__name__})")
            return
        if msg_type not in ALLOWED_MESSAGES:
            self._refuse(f"kernel message type {str(msg_type)[:64]!r} is switched off in Onsite")
            return
        if event is not None:
            forwarder = self.websocket_handler.settings.get("onsite_session_events")
            if forwarder is not None:
                forwarder.add(event)
        super().handle_incoming_message(incoming_msg)

    def _inspect(self, incoming_msg: Any) -> tuple[str, dict | None]:
        """The message type and the session event it makes (None for one that runs nothing)."""
        if self.subprotocol == "v1.kernel.websocket.jupyter.org":
            channel, parts = deserialize_msg_from_ws_v1(incoming_msg)
            header = self.get_part("header", None, parts)
            msg_type = header["msg_type"]
            content = self.get_part("content", None, parts) if msg_type in RECORDED_MESSAGES else {}
        else:
            msg = deserialize_binary_message(incoming_msg) if isinstance(incoming_msg, bytes) else json.loads(incoming_msg)
            channel, header, content = msg.get("channel"), msg["header"], msg.get("content")
            msg_type = header["msg_type"]
        if not isinstance(msg_type, str):
            raise TypeError("msg_type is not a string")
        if msg_type not in RECORDED_MESSAGES:
            return msg_type, None
        if not isinstance(content, dict):
            raise TypeError("content is not an object")
        kind, field = RECORDED_MESSAGES[msg_type]
        value = content.get(field, "")
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        event = {"kind": kind, "kernel_id": self.kernel_id, "channel": channel,
                 "msg_id": str(header.get("msg_id", "")), field: text[:MAX_CODE_CHARS], f"{field}_chars": len(text)}
        if kind == "comm":
            event.update(msg_type=msg_type, comm_id=str(content.get("comm_id", ""))[:64])
        if msg_type == "execute_request" and content.get("user_expressions"):
            # The kernel evaluates each of these too, whatever the code is (even empty).
            event["user_expressions"] = json.dumps(content["user_expressions"], default=str)[:MAX_CODE_CHARS]
        return msg_type, event

    def _refuse(self, reason: str) -> None:
        record_refusal("WS", f"api/kernels/{self.kernel_id}/channels", reason)


def load(serverapp: Any) -> None:
    """Terminal guard, intake folder and session event forwarding; called by singleuser.serverext."""
    guard = guard_terminal(serverapp.web_app, dict(os.environ))
    if guard.terminal:
        serverapp.log.info("onsite: requests are answered only from the terminal %s", guard.terminal)
    else:
        serverapp.log.error("onsite: no ONSITE_TERMINAL_ADDRESS from the hub: every request is refused")
    settings = Lockdown(config=serverapp.config)
    root = Path(serverapp.root_dir)
    intake = root / settings.intake_dir
    try:
        intake.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        serverapp.log.warning("onsite: cannot create the intake folder %s: %s", intake, e)
    api_url, token = os.environ.get("JUPYTERHUB_API_URL", ""), os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not api_url or not token:
        serverapp.log.warning("onsite: no JUPYTERHUB_API_URL/TOKEN: session events are not recorded")
        return
    global _forwarder
    forwarder = _forwarder = SessionEventForwarder(api_url, token)
    serverapp.web_app.settings["onsite_session_events"] = forwarder

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
    serverapp.log.info("onsite: session events go to %s", forwarder.endpoint)

