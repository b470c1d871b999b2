"""Single-user server extension: forwards release and ingress requests from the outbox.

(It also wires the lock-down, `singleuser.lockdown`, and JupyterLab's translations with Onsite's
entries, `singleuser.lab_translations`.)

The kernel runs researcher code and holds no Hub token, so
`analysis_kernel.request_release` only drops `<rid>.request.json` into the
session outbox (`manifest.outbox`). This extension, running inside the
single-user server with the server's Hub token, checks each request against
its payload's JSON Schema (`disclosure_review.wire`), posts it to the review
service (`$ONSITE_REVIEW_URL` + the payload's endpoint) and writes the answer
next to it: `<rid>.response.json` on success, `<rid>.error.json` with the
service's status and message otherwise (status 0 when the file was refused
here, unread, or the service unreachable). A file past the wire's output limits
(`wire.MAX_REQUEST_BYTES`, not even read; `wire.MAX_OUTPUT_BYTES`) is answered
status 413 with the limit's code, size and setting, and removed. The service takes the requester's
identity from the token, never from the file, and checks the payload again.
The request's kind is the last part of its id: `<hex>.request.json` is a
release request (`api/requests`), `<hex>.ingress.request.json` reference data
brought in (`api/ingress`), `<hex>.reference.request.json` a read of approved
reference data (`api/reference`).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback

from disclosure_review import wire
from onsite_base.fileio import write_json_atomic
from singleuser import events, lab_translations, lockdown

log = logging.getLogger(__name__)

POLL_MS = 300
VALIDATORS = {kind: Draft202012Validator(schema) for kind, schema in wire.schemas().items()}
"""Kind of request (the part of its id after a dot) -> its payload's JSON Schema."""


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "singleuser.serverext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    lockdown.load(serverapp)
    # JupyterLab's translations with Onsite's own entries (labconfig/page_config.json points JupyterLab here).
    serverapp.web_app.add_handlers(".*$", lab_translations.handlers(serverapp.base_url))
    outbox = outbox_from_manifest(os.environ.get("ONSITE_SESSION", ""))
    review_url = os.environ.get("ONSITE_REVIEW_URL", "")
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if outbox is None or not review_url or not token:
        serverapp.log.warning(
            "onsite: release outbox forwarder off (ONSITE_SESSION manifest, ONSITE_REVIEW_URL or "
            "JUPYTERHUB_API_TOKEN missing): release requests will not reach the review service"
        )
        return
    serverapp.web_app.settings["onsite_outbox_forwarder"] = OutboxForwarder(outbox, review_url, token)
    serverapp.log.info("onsite: forwarding release requests from %s to %s", outbox, review_url)


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    # The session-event and outbox forwarders start here, inside the running event loop: a periodic
    # callback started while the extension loads may be bound to a loop that never runs.
    for key in (events.SETTINGS_KEY, "onsite_outbox_forwarder"):
        forwarder = serverapp.web_app.settings.get(key)
        if forwarder is not None:
            forwarder.start()


def outbox_from_manifest(manifest_path: str) -> Path | None:
    if not manifest_path:
        return None
    try:
        data = json.loads(Path(manifest_path).read_text())
    except (OSError, ValueError):
        log.warning("onsite: cannot read the session manifest %s", manifest_path)
        return None
    outbox = data.get("outbox")
    return Path(outbox) if outbox else None


class OutboxForwarder:
    """Polls the outbox and posts each new request once."""

    def __init__(self, outbox: Path, review_url: str, token: str) -> None:
        self.outbox = outbox
        self.review_url = review_url.rstrip("/") + "/"
        self.token = token
        self._in_flight: set[str] = set()
        self._callback: PeriodicCallback | None = None

    def start(self) -> None:
        self._callback = PeriodicCallback(self.scan, POLL_MS)
        self._callback.start()

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()

    def pending(self) -> list[Path]:
        if not self.outbox.is_dir():
            return []
        found = []
        for path in sorted(self.outbox.glob("*" + wire.REQUEST_SUFFIX)):
            rid = path.name[: -len(wire.REQUEST_SUFFIX)]
            answered = (self.outbox / (rid + wire.RESPONSE_SUFFIX)).exists() or (self.outbox / (rid + wire.ERROR_SUFFIX)).exists()
            if not answered and rid not in self._in_flight:
                found.append(path)
        return found

    async def scan(self) -> None:
        for path in self.pending():
            rid = path.name[: -len(wire.REQUEST_SUFFIX)]
            self._in_flight.add(rid)
            try:
                await self.forward(rid, path)
            finally:
                self._in_flight.discard(rid)

    async def forward(self, rid: str, path: Path) -> None:
        kind = rid.partition(".")[2]
        if kind not in VALIDATORS:
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX), {"status": 0, "message": f"unknown kind of request {kind!r}"})
            return
        try:
            size = path.stat().st_size
            # Not read, and removed: an oversized file would hold the server's memory and the researcher's disk.
            wire.check_limit("request_bytes", size, wire.MAX_REQUEST_BYTES)
            body = path.read_bytes()
            payload = json.loads(body)
        except wire.LimitExceeded as e:
            log.warning("onsite: request %s refused unread: %s", rid, e)
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX), {"status": 413, **e.to_json()})
            path.unlink(missing_ok=True)
            return
        except (OSError, ValueError) as e:
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX), {"status": 0, "message": f"unreadable request file: {e}"})
            return
        problem = schema_problem(kind, payload)
        if problem:
            log.warning("onsite: request %s does not follow the wire format: %s", rid, problem)
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX), {"status": 0, "message": problem})
            return
        try:
            check_output_sizes(kind, payload)
        except wire.LimitExceeded as e:
            log.warning("onsite: request %s refused: %s", rid, e)
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX), {"status": 413, **e.to_json()})
            path.unlink(missing_ok=True)
            return
        request = HTTPRequest(
            self.review_url + wire.MESSAGES[kind].ENDPOINT,
            method="POST",
            body=body,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            request_timeout=wire.FORWARDER_TIMEOUT_S,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            body = e.response.body if e.response is not None else b""
            message = _service_message(body) or str(e)
            log.warning("onsite: release request %s refused by the review service: HTTP %s", rid, e.code)
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX),
                              {"status": e.code, "message": message, **_limit_refusal(body)})
            return
        except OSError as e:
            log.warning("onsite: review service unreachable for request %s: %s", rid, e)
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX), {"status": 0, "message": f"review service unreachable: {e}"})
            return
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            write_json_atomic(self.outbox / (rid + wire.ERROR_SUFFIX), {"status": response.code, "message": "review service answered with something that is not a JSON object"})
            return
        write_json_atomic(self.outbox / (rid + wire.RESPONSE_SUFFIX), answer)
        log.info("onsite: request %s answered (%s)", rid, answer.get("id"))


def check_output_sizes(kind: str, payload: dict[str, Any]) -> None:
    """Raise `wire.LimitExceeded` when an output of a release request is past the wire's bytes per output."""
    if wire.MESSAGES[kind] is not wire.ReleasePayload:
        return
    for output in payload["outputs"]:
        wire.check_limit("output_bytes", wire.json_size(output), wire.MAX_OUTPUT_BYTES, name=output["name"])


def schema_problem(kind: str, payload: Any) -> str | None:
    """Why `payload` breaks the JSON Schema of its kind (the first problem, where it is), or None."""
    error = best_match(VALIDATORS[kind].iter_errors(payload))  # descends into oneOf to the field at fault
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    # jsonschema quotes the value; a long one (a file's base64) is named by the rule it breaks instead
    what = error.message if len(error.message) <= 300 else \
        f"breaks its {error.validator!r} rule ({json.dumps(error.validator_value)[:200]})"
    return f"the request file does not follow the wire format ({wire.MESSAGES[kind].__name__}) at {where}: {what}"


def _limit_refusal(body: bytes) -> dict[str, Any]:
    """The code, arguments and setting of an output limit the service refused (`wire.LimitExceeded.to_json()`), so
    that the kernel shows it in its language; {} for any other answer."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict) or data.get("code") not in wire.LIMIT_MESSAGES:
        return {}
    return {key: data[key] for key in ("code", "args", "limit") if key in data}


def _service_message(body: bytes) -> str:
    """The review service's own explanation from an error body (JSON `message`/`error`, else text)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:2000]
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "reason"):
            if data.get(key):
                return str(data[key])
    return text[:2000]
