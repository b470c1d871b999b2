"""Asking for the release of outputs: `request_release([...], title=..., purpose=...)`.

The kernel holds no Hub token (it runs researcher code), so the request is
written to the session outbox; the single-user server's extension
(`singleuser.serverext`) posts it to the review service with the server's
token and writes the answer back next to it. The review service recomputes
every declarative output itself: what this function sends is a request, not
evidence.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis_kernel.verdicts import translator, verdict_word
from dataplane.manifest import SessionManifest, SessionManifestInvalid
from disclosure_review import wire
from onsite_base.errors import UserError
from onsite_base.fileio import write_json_atomic

POLL_S = 0.2


class ReleaseError(UserError):
    """A release request could not be made or was refused; the message says why."""


def _manifest() -> dict[str, Any]:
    try:
        manifest = SessionManifest.load()
    except SessionManifestInvalid as e:
        raise ReleaseError(f"request_release works inside an Onsite session: {e}") from e
    return {"projects": dict(manifest.projects), "outbox": manifest.outbox, "language": manifest.language}


def _choose_project(projects: dict[str, Any], project: str | None) -> str:
    if project is not None:
        if project not in projects:
            raise ReleaseError(f"project {project!r} is not active in this session; choose one of: {', '.join(sorted(projects)) or '(none)'}")
        return project
    if len(projects) == 1:
        return next(iter(projects))
    if not projects:
        raise ReleaseError("this session has no active project, so nothing can be released")
    raise ReleaseError(f"this session has several projects: pass project= one of {', '.join(sorted(projects))}")


def _request_payload(output: Any) -> wire.OutputPayload:
    to_request = getattr(output, "to_request", None)
    payload = to_request() if callable(to_request) else None
    if not isinstance(payload, tuple(wire.OUTPUT_KINDS.values())):
        raise ReleaseError(
            f"{type(output).__name__} is not an output: build it with analysis_kernel.outputs "
            "(frequency_table(...), file_output(...))"
        )
    return payload


def request_release(
    outputs: Sequence[Any],
    *,
    title: str,
    purpose: str,
    project: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Send `outputs` for disclosure review and return the service's answer.

    The answer is `{"id", "status", "outputs": [{"name", "verdict"}, ...]}`: the
    verdicts the review service reached on its own recomputation. Reviewers then
    decide; approved outputs appear as a release package to collect.
    Raises ReleaseError with the service's message when it refuses.
    """
    if not title.strip():
        raise ReleaseError("give the request a title (what these outputs are)")
    if not purpose.strip():
        raise ReleaseError("give the request a purpose (why they need to leave the facility)")
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, Sequence) or not outputs:
        raise ReleaseError("pass a non-empty list of outputs, e.g. request_release([table], title=..., purpose=...)")
    session = _manifest()
    project_id = _choose_project(session["projects"], project)
    payload = wire.ReleasePayload(project=project_id, title=title, purpose=purpose,
                                  outputs=tuple(_request_payload(o) for o in outputs))
    try:
        check_size(payload, sum(getattr(o, "cells", 0) for o in outputs))
    except wire.LimitExceeded as exc:
        raise ReleaseError(exc.text(session["language"])) from None
    answer = send_to_review_service(payload, timeout=timeout, outbox=session["outbox"], language=session["language"])
    _print_verdicts(answer, session["language"], outputs)
    return answer


def check_size(payload: wire.ReleasePayload, cells: int) -> None:
    """Raise `wire.LimitExceeded` when the request or one of its outputs is past the wire's output limits
    (the service checks its own, which a site may set lower, on what it recomputes and receives)."""
    for output in payload.outputs:
        wire.check_limit("output_bytes", wire.json_size(output.to_json()), wire.MAX_OUTPUT_BYTES, name=output.name)
    wire.check_limit("request_cells", cells, wire.MAX_CELLS_PER_REQUEST)
    wire.check_limit("request_bytes", wire.json_size(payload.to_json()), wire.MAX_REQUEST_BYTES)


def send_to_review_service(payload: wire.ReleasePayload | wire.IngressPayload | wire.ReferencePayload, *,
                           timeout: float, outbox: Path, error: type[UserError] = ReleaseError,
                           forget: bool = False, language: str = "en") -> dict[str, Any]:
    """Drop `payload` in the session outbox for the server's forwarder and wait for the review service's answer.

    The file is `<hex>[.<kind>].request.json`, its kind the payload's (`wire.MESSAGES`).
    `forget`: remove the request and its answer once read (a read of reference data, not a request to keep).
    A refusal of an output limit is shown in `language` (the forwarder and the service send its code).
    Raises `error` with the service's message when it refuses, or when no answer comes within `timeout`.
    """
    outbox = Path(outbox)
    if not outbox.is_dir():
        raise error(f"the session outbox {outbox} does not exist: restart your server from the hub")
    rid = uuid.uuid4().hex + (f".{payload.OUTBOX_KIND}" if payload.OUTBOX_KIND else "")
    request_path = outbox / (rid + wire.REQUEST_SUFFIX)
    write_json_atomic(request_path, payload.to_json())
    response_path = outbox / (rid + wire.RESPONSE_SUFFIX)
    error_path = outbox / (rid + wire.ERROR_SUFFIX)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if response_path.exists():
            answer = json.loads(response_path.read_text())
            _forget(forget, request_path, response_path)
            return answer
        if error_path.exists():
            refusal = json.loads(error_path.read_text())
            _forget(forget, request_path, error_path)
            status = refusal.get("status")
            where = f" (HTTP {status})" if status else ""
            raise error(f"the review service refused the request{where}: {_refusal_text(refusal, language)}")
        time.sleep(POLL_S)
    raise error(
        f"no answer from the review service within {timeout:g} s (large tables take longer: pass timeout=...). "
        f"The request {rid} is not lost: the service's answer will be written to {response_path} (or "
        f"{error_path.name}); do not send it again"
    )


def _refusal_text(refusal: dict[str, Any], language: str) -> str:
    """The refusal's message; an output limit's in `language`, from its code."""
    code, args = refusal.get("code"), refusal.get("args")
    if code in wire.LIMIT_MESSAGES and isinstance(args, dict):
        try:
            return wire.limit_text(code, args, language)
        except (KeyError, ValueError, TypeError):
            pass  # arguments not as expected: the message as sent
    return str(refusal.get("message", "no message"))


def _forget(forget: bool, *paths: Path) -> None:
    for path in paths if forget else ():
        path.unlink(missing_ok=True)


def _print_verdicts(answer: dict[str, Any], lang: str, outputs: Sequence[Any] = ()) -> None:
    """The service's answer in the session's language: the request's status (as the service names it) and
    each output's verdict; a table of `outputs` released perturbed, its cells beside the released ones when the
    answer holds them (`TableOutput.released_beside`)."""
    print(translator(lang)("release_request", id=answer.get("id"), status=answer.get("status")))
    for item in answer.get("outputs", []):
        print(f"  {item.get('name')}: {verdict_word(item.get('verdict'), lang)}")
        loss = item.get("cell_key")
        if loss:  # computed by the review service, which alone holds the record keys
            mrd = loss.get("mean_relative_deviation")
            print("    " + translator(lang)("cell_key_loss", changed=loss.get("changed"), cells=loss.get("cells"),
                                            mad=loss.get("mean_absolute_deviation") or 0.0,
                                            mrd="—" if mrd is None else f"{100 * mrd:.2f} %"))
    for output in outputs:
        beside = getattr(output, "released_beside", None)
        shown = beside(answer) if callable(beside) else None
        if shown is not None:
            print(repr(shown))
