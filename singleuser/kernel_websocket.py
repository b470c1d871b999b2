"""The kernel websocket: what the browser makes a kernel run is recorded before the kernel gets it.

Runs inside every single-user server, as the researcher's own account (see
DESIGN.md for why the server's switches are defence in depth, not the boundary
— the facility terminal and the network are). Nothing inside the kernel can
be trusted to record what it ran, so the record is made here, on the way in.

`AuditedKernelWebsocketConnection` (the server's
`kernel_websocket_connection_class`) records the code (and the user
expressions) of every `execute_request` the browser sends, before it reaches
the kernel (never the outputs, never from the kernel), and what the browser
feeds a running cell (`input_reply`, comm data). It reads each message with
the same decoder the kernel uses and fails closed: a message it cannot read,
or of a type not in `ALLOWED_MESSAGES` (e.g. `debug_request`, whose
`evaluate` would run code unrecorded), never reaches the kernel. The records
go to the hub's audit ledger through `singleuser.events`.

Code runs only once its record is durable: a recorded message is held until
the hub answers that the ledger committed it (`record_durably`; one round trip
per executed cell), and later messages of the same websocket wait behind it,
so the kernel sees them in the order the browser sent them. When the hub
cannot record it the message is dropped and the notebook shows why (Japanese
and English: the cell ends with an error); after repeated failures the server
stops itself. A server without a hub to record to runs nothing.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.websocket import WebSocketClosedError

from singleuser.events import SETTINGS_KEY, RecordNotDurable, record_refusal

MAX_CODE_CHARS = 100_000  # a cell longer than this is recorded truncated, with its full length
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


NOT_RECORDED = (
    "このコードは実行されていません。監査記録を保存できませんでした（{cause}）。施設の担当者に連絡してください。\n"
    "This code was not run: its audit record could not be saved ({cause}). Please tell the facility staff."
)
SESSION_ENDING = (
    "\n監査記録の保存に繰り返し失敗したため、このセッションを終了します。\n"
    "The audit record failed repeatedly, so this session is being stopped."
)


class AuditedKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """The kernel websocket, recording what the browser makes the kernel run (never outputs).

    Each message is decoded exactly as it will reach the kernel (v1 protocol: the
    session's own unpacker, which the kernel shares; legacy: the parent's JSON or
    binary decoding, re-sent as parsed). A message that cannot be decoded, or whose
    type is not in ALLOWED_MESSAGES, is dropped and the refusal recorded; one that
    runs or feeds code reaches the kernel only after the hub committed its record.
    """

    _previous: asyncio.Future | None = None  # the message before this one, still on its way to the kernel

    def handle_incoming_message(self, incoming_msg: Any) -> None:
        previous = self._previous
        self._previous = asyncio.ensure_future(self._pass_on(incoming_msg, previous))

    async def _pass_on(self, incoming_msg: Any, previous: asyncio.Future | None) -> None:
        """After the message before it: drop, or record durably then hand to the kernel. Never raises
        (a failure would hold up every later message of the websocket)."""
        if previous is not None:
            await previous
        try:
            await self._gate(incoming_msg)
        except Exception:
            self.log.exception("onsite: a message to kernel %s was dropped", self.kernel_id)

    async def _gate(self, incoming_msg: Any) -> None:
        try:
            msg_type, channel, header, event = self._inspect(incoming_msg)
        except Exception as e:
            self._refuse(f"unreadable kernel message dropped ({type(e).__name__})")
            return
        if msg_type not in ALLOWED_MESSAGES:
            self._refuse(f"kernel message type {str(msg_type)[:64]!r} is switched off in Onsite")
            return
        if event is not None:
            forwarder = self.websocket_handler.settings.get(SETTINGS_KEY)
            try:
                if forwarder is None:
                    raise RecordNotDurable("no audit ledger to record to", stopping=False)
                await forwarder.record_durably(event)
            except RecordNotDurable as e:
                self._refuse(f"{msg_type} dropped: its record was not committed ({e.cause})")
                self._tell_not_run(msg_type, channel, header, e)
                return
        super().handle_incoming_message(incoming_msg)

    def _tell_not_run(self, msg_type: str, channel: str | None, header: dict, error: RecordNotDurable) -> None:
        """What the notebook shows for a message that never reached the kernel: the reason, in
        Japanese and English; an execute_request's cell ends with an error instead of waiting."""
        text = NOT_RECORDED.format(cause=error.cause) + (SESSION_ENDING if error.stopping else "")
        if msg_type != "execute_request":
            self._send("iopub", "stream", {"name": "stderr", "text": text + "\n"}, header)
            return
        failure = {"ename": "AuditRecordNotSaved", "evalue": text, "traceback": [text]}
        self._send("iopub", "error", failure, header)
        self._send(channel or "shell", "execute_reply", {"status": "error", "execution_count": None, **failure}, header)
        self._send("iopub", "status", {"execution_state": "idle"}, header)

    def _send(self, channel: str, msg_type: str, content: dict, parent: dict) -> None:
        msg = self.session.msg(msg_type, content=content, parent=parent)
        try:
            if self.subprotocol == "v1.kernel.websocket.jupyter.org":
                self.write_message(serialize_msg_to_ws_v1(msg, channel, self.session.pack), binary=True)
            else:
                self.write_message(json.dumps({**msg, "channel": channel}, default=json_default))
        except WebSocketClosedError:
            pass  # the browser left; the refusal is recorded all the same

    def _inspect(self, incoming_msg: Any) -> tuple[str, str | None, dict, dict | None]:
        """The message type, channel and header, and the session event it makes (None for one that runs nothing)."""
        if self.subprotocol == "v1.kernel.websocket.jupyter.org":
            channel, parts = deserialize_msg_from_ws_v1(incoming_msg)
            header = self.get_part("header", None, parts)
            msg_type = header["msg_type"]
            content = self.get_part("content", None, parts) if msg_type in RECORDED_MESSAGES else {}
        else:
            msg = deserialize_binary_message(incoming_msg) if isinstance(incoming_msg, bytes) else json.loads(incoming_msg)
            channel, header, content = msg.get("channel"), msg["header"], msg.get("content")
            msg_type = header["msg_type"]
        if not isinstance(msg_type, str) or not isinstance(header, dict):
            raise TypeError("the header is not an object with a string msg_type")
        if msg_type not in RECORDED_MESSAGES:
            return msg_type, channel, header, None
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
        return msg_type, channel, header, event

    def _refuse(self, reason: str) -> None:
        record_refusal("WS", f"api/kernels/{self.kernel_id}/channels", reason)
