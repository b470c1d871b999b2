"""The wire format (disclosure_review.wire): what the kernel builds, the forwarder's schema and the service's parser agree.

The schema must never refuse what the service accepts (the forwarder would block a
good request) and must refuse nothing the service would take; every payload the real
kernel builders make must pass both. The forwarder is run for real against a small
HTTP server standing in for the review service's API.
"""
from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import json
import socket
from pathlib import Path

import pytest
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from disclosure_review import wire
from disclosure_review.workflow import ingress, service
from disclosure_review.workflow.exceptions import IngressInvalid, ReleaseRequestInvalid

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
TABLE_SPEC = {"version": 1, "kind": "frequency", "name": "t", "query": "SELECT * FROM survey", "rows": ["region"]}
VALID = {
    "": {"project": "p1", "title": "Income", "purpose": "paper", "outputs": [
        {"kind": "table", "name": "t", "spec": TABLE_SPEC, "claimed": {"verdict": "pass"}},
        {"kind": "table", "name": "t2", "spec": TABLE_SPEC},
        {"kind": "extract", "name": "e", "spec": {"version": 1, "kind": "extract", "name": "e",
                                                  "query": "SELECT region FROM survey"}, "claimed": None},
        {"kind": "file", "name": "f", "filename": "f.png", "content_b64": base64.b64encode(PNG).decode(),
         "code": "plt.plot()", "explanation": "why"},
    ]},
    "ingress": {"project": "p1", "name": "codes", "description": "municipality codes", "filename": "codes.csv",
                "content_b64": base64.b64encode(b"code\n01\n").decode()},
    "reference": {"project": "p1", "name": "codes"},
}


def _mutations(payload: dict) -> list[tuple[str, dict]]:
    """Each payload broken one way at the top level and, for release requests, in its first and last output."""
    found = []

    def at(data: dict, where: str, path: tuple) -> None:
        for key, value in data.items():
            for label, new in (("dropped", ...), ("null", None), ("number", 7), ("blank", " "), ("long", "x" * 300_000),
                               ("list", []), ("object", {}), ("not base64", "not base64!")):
                broken = copy.deepcopy(payload)
                target = broken
                for step in path:
                    target = target[step]
                if new is ...:
                    del target[key]
                else:
                    target[key] = new
                found.append((f"{where}{key} {label}", broken))
        broken = copy.deepcopy(payload)
        target = broken
        for step in path:
            target = target[step]
        target["surplus"] = 1
        found.append((f"{where}surplus key", broken))

    at(payload, "", ())
    for index in (0, len(payload.get("outputs", [])) - 1) if "outputs" in payload else ():
        at(payload["outputs"][index], f"output {index}: ", ("outputs", index))
    return found


@pytest.mark.parametrize("kind", list(VALID), ids=["release", "ingress", "reference"])
def test_the_schema_accepts_exactly_what_the_parser_accepts_structurally(kind):
    # heavy: jsonschema loads its format checkers (rfc3987_syntax builds a grammar, 1-2 CPU-s); imported by the
    # tests that use it, which run on one worker (tests/conftest.py ONE_GROUP_FILES), not by every process
    from jsonschema import Draft202012Validator

    cls, validator = wire.MESSAGES[kind], Draft202012Validator(wire.json_schema(wire.MESSAGES[kind]))
    Draft202012Validator.check_schema(wire.json_schema(cls))
    parsed = cls.from_json(VALID[kind])
    assert validator.is_valid(VALID[kind]) and cls.from_json(parsed.to_json()) == parsed
    for label, broken in _mutations(VALID[kind]):
        try:
            cls.from_json(broken)
            parsed = True
        except wire.PayloadInvalid:
            parsed = False
        # what the service accepts the forwarder never blocks; the schema lets through only the
        # refusals JSON Schema cannot express (a spec's own rules, base64 content, a file type)
        assert validator.is_valid(broken) or not parsed, label
        if validator.is_valid(broken) and not parsed:
            assert label.split(": ")[-1].split()[0] in ("spec", "content_b64", "filename", "name"), label


def test_schema_properties_are_the_dataclass_fields():
    for cls in (*wire.MESSAGES.values(), *wire.OUTPUT_KINDS.values()):
        schema = wire._object_schema(cls)
        keys = {f.metadata["wire"].key(f.name) for f in dataclasses.fields(cls)} | ({"kind"} if cls.KIND else set())
        assert set(schema["properties"]) == keys
        assert set(schema["required"]) == {f.metadata["wire"].key(f.name) for f in dataclasses.fields(cls)
                                           if f.default is not None} | ({"kind"} if cls.KIND else set())


def test_the_services_refusals_keep_their_exception_and_message():
    with pytest.raises(ReleaseRequestInvalid, match=r"output 'f': file type of 'f.exe' cannot be released"):
        service.validate_payload(VALID[""] | {"outputs": [VALID[""]["outputs"][3] | {"filename": "f.exe"}]})
    with pytest.raises(ReleaseRequestInvalid, match=r"output 'f': .*not readable as an image"):
        service.validate_payload(VALID[""] | {"outputs": [VALID[""]["outputs"][3] | {"content_b64": "aGVsbG8="}]})
    with pytest.raises(IngressInvalid, match=r"the ingress request: description is required"):
        ingress.validate_payload(VALID["ingress"] | {"description": "  "})
    with pytest.raises(IngressInvalid, match=r"reference.<name>"):
        ingress.validate_payload(VALID["ingress"] | {"name": "Codes"})
    assert ingress.validate_payload(VALID["ingress"] | {"filename": "C:\\Users\\x\\codes.csv"}).filename == "codes.csv"


# ---------------------------------------------------------------- the forwarder


class _Recorder(RequestHandler):
    def post(self) -> None:
        self.application.settings["posted"].append(json.loads(self.request.body))
        self.write({"id": 1, "status": "SUBMITTED"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _forward(outbox: Path, files: dict[str, object]) -> list[dict]:
    """Drop `files` ({rid: JSON}) in the outbox, run the real forwarder once against a recording service."""
    for rid, data in files.items():
        (outbox / (rid + wire.REQUEST_SUFFIX)).write_text(json.dumps(data) if not isinstance(data, str) else data)
    posted: list[dict] = []

    async def run() -> None:
        # heavy: the forwarder's module validates with jsonschema (see the schema test above)
        from singleuser.serverext import OutboxForwarder

        port = _free_port()
        app = Application([(r"/api/(?:requests|ingress|reference)", _Recorder)], posted=posted)
        server = HTTPServer(app)
        server.listen(port, "127.0.0.1")
        try:
            await OutboxForwarder(outbox, f"http://127.0.0.1:{port}/", "token").scan()
        finally:
            server.stop()

    asyncio.run(run())
    return posted


def test_the_forwarder_posts_valid_files_and_answers_invalid_ones_itself(tmp_path):
    forged = copy.deepcopy(VALID[""])
    forged["requester"] = "bob"  # identity never comes from the file
    too_long = copy.deepcopy(VALID[""])
    too_long["outputs"][3]["code"] = "x" * (wire.MAX_CODE + 1)
    posted = _forward(tmp_path, {"a": VALID[""], "b.ingress": VALID["ingress"], "c.reference": {"project": "p1"},
                                 "d": forged, "e": too_long, "f.reference": {"project": "p1", "name": "../etc"},
                                 "g": "{not json", "h.other": {}})
    assert posted == [VALID[""], VALID["ingress"], {"project": "p1"}]
    for rid in ("a", "b.ingress", "c.reference"):
        assert json.loads((tmp_path / (rid + wire.RESPONSE_SUFFIX)).read_text()) == {"id": 1, "status": "SUBMITTED"}
    refusals = {rid: json.loads((tmp_path / (rid + wire.ERROR_SUFFIX)).read_text())
                for rid in ("d", "e", "f.reference", "g", "h.other")}
    assert all(r["status"] == 0 for r in refusals.values())
    assert "ReleasePayload) at the top level" in refusals["d"]["message"] and "'requester'" in refusals["d"]["message"]
    assert "at outputs/3/code: breaks its 'maxLength' rule (100000)" in refusals["e"]["message"]
    assert "ReferencePayload) at name" in refusals["f.reference"]["message"]
    assert "unreadable request file" in refusals["g"]["message"]
    assert "unknown kind of request 'other'" in refusals["h.other"]["message"]
