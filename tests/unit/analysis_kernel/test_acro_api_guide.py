"""docs/how-to/acro.md runs as written: its Onsite notebook (every `python` block not marked `ignore`), in order,
in a session granting the demo data as lfs_demo; `finalise` sends a release request the review service's parser
accepts, holding every output with the comments and the exception."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from dataplane.manifest import ProjectGrant, SessionManifest
from disclosure_review import wire
from onsite_base.fileio import write_json_atomic

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "how-to" / "acro.md"


def _python_blocks() -> list[str]:
    blocks, lines, i = [], GUIDE.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        info = lines[i][3:].split() if lines[i].startswith("```") else []
        i += 1
        if info[:1] == ["python"] and "ignore" not in info:
            body = []
            while lines[i] != "```":
                body.append(lines[i])
                i += 1
            blocks.append("\n".join(body))
    return blocks


@pytest.fixture
def session(demo_dataset, tmp_path, monkeypatch):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    manifest = SessionManifest(user="r.tanaka", outbox=outbox, projects={"p1": ProjectGrant(
        title="Women's employment", preset="acro-default", datasets={"lfs_demo": demo_dataset})})
    monkeypatch.setenv("ONSITE_SESSION", str(manifest.write(tmp_path / "session.json")))
    monkeypatch.chdir(tmp_path)
    return outbox


def _answer(outbox: Path, received: list, stop: threading.Event) -> None:
    """The forwarder and the service, as far as this test needs: the request parsed as the service parses it."""
    while not stop.wait(0.05):
        for request in outbox.glob("*" + wire.REQUEST_SUFFIX):
            payload = wire.ReleasePayload.from_json(json.loads(request.read_text()))
            received.append(payload)
            answer = {"id": 7, "status": "SUBMITTED", "outputs": [{"name": o.name, "verdict": "review"}
                                                                   for o in payload.outputs]}
            write_json_atomic(outbox / request.name.replace(wire.REQUEST_SUFFIX, wire.RESPONSE_SUFFIX), answer)
            request.unlink()


def test_the_guides_notebook_runs_as_written(session, tmp_path, capsys) -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 10 and "from analysis_kernel.acro import ACRO" in blocks[0]
    received: list = []
    stop = threading.Event()
    forwarder = threading.Thread(target=_answer, args=(session, received, stop), daemon=True)
    forwarder.start()
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(GUIDE), "exec"), namespace)  # noqa: S102 - the guide's own code
    finally:
        stop.set()
        forwarder.join(timeout=5)
    acro = namespace["acro"]
    assert not (tmp_path / "outputs").exists()
    [payload] = received
    assert payload.title == "Income by sex and employment status"
    assert "Table 2 of the paper" in payload.purpose and "status 6 is published" in payload.purpose
    names = [o.name for o in payload.outputs]
    assert names[0] == "mean_income_by_sex_and_status" and "output_0" not in names
    assert acro.results.answer["id"] == 7
    records = acro.results.results
    assert all(r.verified for r in records.values() if r.output_type in ("table", "histogram"))
    said = capsys.readouterr().out
    assert "outcome:" in said and "release request 7: SUBMITTED" in said and "Onsite writes no folder" in said
