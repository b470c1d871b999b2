"""Lock-down of the single-user server: what the browser may not do, and what it does is audited.

Loaded by `hub_config.serverext` inside every single-user server (the server
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
- `AuditedKernelWebsocketConnection` records the code of every
  `execute_request` the browser sends, before it reaches the kernel (never the
  outputs, never from the kernel); `SessionEventForwarder` sends it, with the
  server's contents and kernel events, to the hub's session event log
  (`hub_config.audit_sink`), which the researcher's processes cannot write.
"""
from __future__ import annotations

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
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback
from tornado.web import HTTPError
from traitlets import Int, Unicode
from traitlets.config import Configurable

log = logging.getLogger(__name__)

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_EVENTS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
SINK_PATH = "/onsite/session-events"  # under $JUPYTERHUB_API_URL (see hub_config.audit_sink)
REFUSED_PREFIXES = ("files", "view", "nbconvert", "api/nbconvert", "api/terminals", "terminals")
MAX_CODE_CHARS = 100_000  # a cell longer than this is recorded truncated, with its full length
FORWARD_MS = 1000
MAX_QUEUED = 10_000


class Lockdown(Configurable):
    """Settings of the single-user lock-down (set in hub_config/singleuser/jupyter_server_config.py)."""

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


class LockdownAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's scope check, then Onsite's refusals of download and export."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        reason = refusal(handler, action, resource)
        if reason is not None:
            log.warning("onsite: refused %s %s (%s)", handler.request.method, handler.request.path, reason)
            forwarder = handler.settings.get("onsite_session_events")
            if forwarder is not None:
                forwarder.add({"kind": "refused", "method": handler.request.method,
                               "path": _relative(handler), "reason": reason})
            return False
        return super().is_authorized(handler, user, action, resource)


def check_upload(model: dict, path: str, contents_manager: Any) -> None:
    """Refuse (403) an upload outside the intake folder, (413) one over the size limit."""
    if model.get("type") != "file" or model.get("format") != "base64":
        return  # a notebook or text file saved from the editor: not an upload
    settings = Lockdown(config=contents_manager.config)
    parts = PurePosixPath(path.strip("/")).parts
    if not parts or parts[0] != settings.intake_dir or ".." in parts or len(parts) < 2:
        raise HTTPError(403, f"uploads are accepted only into the folder {settings.intake_dir}/")
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
    """JupyterLab's default contents manager, checking every upload chunk.

    A pre-save hook would not do: the large-file manager runs hooks on the first
    chunk only, so later chunks could append anywhere.
    """

    async def save(self, model: dict, path: str = "") -> dict:
        check_upload(model, path, self)
        return await super().save(model, path)


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
        self.queue.append({**event, "at": time.time()})

    async def flush(self) -> None:
        if self._sending or not self.queue:
            return
        self._sending = True
        batch = list(self.queue)
        try:
            request = HTTPRequest(self.endpoint, method="POST",
                                  body=json.dumps({"events": batch, "dropped": self.dropped}),
                                  headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
                                  request_timeout=30)
            await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError) as e:
            log.warning("onsite: session events not yet delivered to the hub (%d waiting): %s", len(batch), e)
            return
        finally:
            self._sending = False
        for _ in batch:
            self.queue.popleft()
        self.dropped = 0


class AuditedKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """The kernel websocket, recording the code of each execute_request (not its outputs)."""

    def handle_incoming_message(self, incoming_msg: Any) -> None:
        try:
            self._record_execute(incoming_msg)
        except Exception:  # a malformed message is the kernel's business; recording must not break it
            log.warning("onsite: could not read an incoming kernel message for the audit", exc_info=True)
        super().handle_incoming_message(incoming_msg)

    def _record_execute(self, incoming_msg: Any) -> None:
        if self.subprotocol == "v1.kernel.websocket.jupyter.org":
            channel, parts = deserialize_msg_from_ws_v1(incoming_msg)
            header, content = json.loads(parts[0]), json.loads(parts[3])
        else:
            msg = json.loads(incoming_msg)
            channel, header, content = msg.get("channel"), msg.get("header") or {}, msg.get("content") or {}
        if header.get("msg_type") != "execute_request":
            return
        forwarder = self.websocket_handler.settings.get("onsite_session_events")
        if forwarder is None:
            return
        code = str(content.get("code", ""))
        forwarder.add({"kind": "execute", "kernel_id": self.kernel_id, "channel": channel,
                       "msg_id": str(header.get("msg_id", "")), "code": code[:MAX_CODE_CHARS], "code_chars": len(code)})


def load(serverapp: Any) -> None:
    """Intake folder and session event forwarding; called by hub_config.serverext."""
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
    forwarder = SessionEventForwarder(api_url, token)
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

