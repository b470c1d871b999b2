"""`ACRO.finalise()` is a release request: the outputs of an ACRO session travel through the session outbox to the
real review service (service.submit, as the forwarder posts them), which recomputes the tables from their queries.
The released values equal the tables ACRO's methods returned; comments and exceptions reach the reviewers;
nothing is written to the folder ACRO would have written."""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import threading
import zipfile
from pathlib import Path

import pytest

from analysis_kernel.acro import ACRO
from analysis_kernel.release import ReleaseError
from analysis_kernel.connection import connect
from dataplane.manifest import ProjectGrant, SessionManifest
from disclosure_review import wire
from disclosure_review.sdc import MARGIN_LABEL, Verdict
from disclosure_review.workflow import service, signing
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from onsite_base.db import transaction
from onsite_base.errors import UserError
from onsite_base.fileio import write_json_atomic
from review_service.app import request_summary
from workflow_factories import payload, status_of, vote

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def session(world, tmp_path, monkeypatch):
    """An Onsite session of alice's on project p1: manifest, outbox, and a forwarder posting to the service."""
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    manifest = SessionManifest(user="alice", outbox=outbox, projects={"p1": ProjectGrant(
        title="Income", preset="acro-default", datasets={"survey": world.settings.datasets_dir / "survey.duckdb"})})
    monkeypatch.setenv("ONSITE_SESSION", str(manifest.write(tmp_path / "session.json")))
    monkeypatch.chdir(tmp_path)
    stop = threading.Event()
    forwarder = threading.Thread(target=_forward, args=(world, outbox, stop), daemon=True)
    forwarder.start()
    db = connect("p1", manifest=manifest, memory_limit="1GB")
    yield db
    db.close()
    stop.set()
    forwarder.join(timeout=5)


def _forward(world, outbox: Path, stop: threading.Event) -> None:
    """What singleuser.serverext does with an outbox file, the HTTP hop left out: the service's answer beside it."""
    while not stop.wait(0.05):
        for request in outbox.glob("*" + wire.REQUEST_SUFFIX):
            answer = outbox / request.name.replace(wire.REQUEST_SUFFIX, wire.RESPONSE_SUFFIX)
            refusal = outbox / request.name.replace(wire.REQUEST_SUFFIX, wire.ERROR_SUFFIX)
            if not answer.exists() and not refusal.exists():
                try:
                    stored = service.submit(world.factory, json.loads(request.read_text()), "alice")
                except UserError as exc:  # the service's 400, as the forwarder writes it
                    write_json_atomic(refusal, {"status": 400, "message": str(exc)})
                else:
                    write_json_atomic(answer, request_summary(stored))


def _stored(world, request_id: int):
    with transaction(world.factory) as s:
        request = service.view(s, request_id, "alice")
        return request.purpose, [(o.name, o.verdict, o.verified, o.recomputed) for o in request.outputs]


def test_finalise_sends_every_output_with_comments_and_exceptions_to_review(world, session, tmp_path) -> None:
    acro = ACRO(suppress=False, db=session)
    people = session.sql("SELECT * FROM survey").df()
    counts = acro.crosstab(people.region, people.sex, margins=True)
    means = acro.pivot_table(people, index="region", values="income", aggfunc="mean")
    south = people[people.region != "C"]  # filtered in pandas: sent as a file, unverified
    acro.crosstab(south.region, south.sex)
    acro.olsr("income ~ person_id", data=people)
    acro.rename_output("output_0", " persons by region sex")  # as ACRO's demo names outputs
    acro.add_comments(" persons by region sex", "Table 1 of the paper")
    acro.add_exception("output_1", "region C is published in the census")

    records = acro.finalise("outputs", "json", title="Regional income", purpose="Paper on regional income")

    assert not (tmp_path / "outputs").exists()  # nothing written where it could leave the facility
    answer = records.answer
    assert answer["status"] == "SUBMITTED"
    purpose, stored = _stored(world, answer["id"])
    assert purpose.startswith("Paper on regional income")
    assert "persons_by_region_sex" in purpose and "Table 1 of the paper" in purpose
    assert "exception requested: region C is published in the census" in purpose
    assert [(name, verified) for name, _, verified, _ in stored] == [
        ("persons_by_region_sex", True), ("output_1", True), ("output_2", False), ("output_3", False)]
    # the service's verdicts on its own recomputation are the session's (differencing aside: nothing else released)
    assert [verdict for _, verdict, _, _ in stored] == [
        Verdict(records.get(key).status) for key in records.get_keys()]
    assert stored[0][1] is Verdict.FAIL  # region C has 2 people

    # released values: the service's recomputed cells are the tables ACRO's methods returned
    for returned, (_, _, _, recomputed) in ((counts, stored[0]), (means, stored[1])):
        cells = {tuple(row[:-1]): row[-1] for row in recomputed["rows"]}
        for row in returned.index:
            for column in returned.columns:
                key = (MARGIN_LABEL if row == "All" else row,) + (
                    () if column == "income" else (MARGIN_LABEL if column == "All" else column,))
                assert math.isclose(returned.loc[row, column], cells[key], rel_tol=1e-9), key


def test_suppressed_outputs_are_released_as_returned(world, session) -> None:
    """Counts and means alike: the service re-applies the deletion of the failing cells' records to its own
    recomputation and releases what the notebook returned."""
    acro = ACRO(suppress=True, db=session)
    people = session.sql("SELECT region, sex, income FROM survey").df()
    tables = [acro.crosstab(people.region, people.sex, margins=True),
              acro.crosstab(people.region, people.sex, values=people.income, aggfunc="mean", margins=True)]
    records = acro.finalise(title="Persons", purpose="Table 1")
    _, stored = _stored(world, records.answer["id"])
    for table, key, (_, verdict, verified, recomputed) in zip(tables, records.get_keys(), stored, strict=True):
        assert verified and verdict.value == records.get(key).status
        cells = {tuple(row[:-1]): row[-1] for row in recomputed["rows"]}
        for row in table.index:
            for column in table.columns:
                released = cells.get(tuple(MARGIN_LABEL if v == "All" else v for v in (row, column)))  # C: deleted
                shown = table.loc[row, column]
                assert (released is None and math.isnan(shown)) or math.isclose(released, shown, rel_tol=1e-9)
        assert math.isnan(table.loc["C", "F"])  # the small cell is not released


def test_finalise_xlsx_is_a_release_request_too_and_interactive_asks_for_exceptions(world, session, tmp_path,
                                                                                   monkeypatch) -> None:
    """ACRO writes results.xlsx for ext="xlsx"; on Onsite it is the same release request, nothing written.
    interactive=True asks, as ACRO, for the reason of an exception for each output that did not pass."""
    acro = ACRO(suppress=False, db=session)
    people = session.sql("SELECT region, sex, 'all' AS everyone FROM survey").df()
    acro.crosstab(people.region, people.sex)  # region C has 2 people: fails
    acro.crosstab(people.sex, people.everyone)
    with pytest.raises(ValueError, match=r"Invalid file extension. Options: \{json, xlsx\}"):
        acro.finalise("outputs", "pdf")
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "C is in the census tables")
    records = acro.finalise("outputs", "xlsx", interactive=True, title="Persons", purpose="Table 1")
    assert not (tmp_path / "outputs").exists() and records.answer["status"] == "SUBMITTED"
    assert len(asked) == 1 and records.get("output_0").exception == "C is in the census tables"
    purpose, stored = _stored(world, records.answer["id"])
    assert "exception requested: C is in the census tables" in purpose and len(stored) == 2


def test_finalise_with_nothing_to_send_sends_nothing(session, capsys) -> None:
    assert ACRO(db=session).finalise() is None
    assert "no outputs" in capsys.readouterr().out
    assert list(Path(session.manifest.outbox).iterdir()) == []


PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def _sacro_viewer_reads(folder: Path) -> dict:
    """What SACRO-Viewer checks when it opens a folder (sacro/models.py ACROOutputs, sacro/versioning.py): one
    ACRO json with "version" (major.minor at least its supported 0.4) and "results", every output with files, each
    named and present; checksums/<name>.txt the file's SHA-256; sdc cells as [row, column] pairs."""
    document = json.loads((folder / "results.json").read_text())
    major, minor, *_ = document["version"].split(".")
    assert (int(major), int(minor)) >= (0, 4)
    for uid, result in document["results"].items():
        assert result["uid"] == uid and result["status"] in ("pass", "review", "fail") and result["files"]
        for entry in result["files"]:
            data = (folder / entry["name"]).read_bytes()
            assert (folder / "checksums" / f"{entry['name']}.txt").read_text() == hashlib.sha256(data).hexdigest()
            for pairs in entry["sdc"].get("cells", {}).values():
                assert all(len(pair) == 2 and all(isinstance(v, int) for v in pair) for pair in pairs)
    return document


def test_the_package_holds_acros_results_json_for_sacro_viewer(world, session, tmp_path) -> None:
    acro = ACRO(suppress=False, db=session)
    people = session.sql("SELECT * FROM survey").df()
    acro.crosstab(people.region, people.sex)  # region C has 2 people: fails
    (tmp_path / "figure.png").write_bytes(PNG)
    acro.custom_output(str(tmp_path / "figure.png"), "bars of the released table")
    acro.rename_output("output_0", "persons")
    acro.add_comments("persons", "Table 1")
    acro.add_exception("persons", "region C is published in the census")
    request_id = acro.finalise(title="Persons", purpose="Table 1").answer["id"]
    for reviewer in ("bob", "carol"):
        vote(world, request_id, reviewer, Decision.APPROVE, position=0, override_reason="published in the census")
        vote(world, request_id, reviewer, Decision.APPROVE, position=1, comment="bars of released counts")
    assert status_of(world, request_id) is ReleaseStatus.RELEASED

    folder = world.settings.egress_dir / str(request_id)
    document = _sacro_viewer_reads(folder)
    persons, figure = document["results"]["persons"], document["results"]["output_1"]
    assert (persons["status"], persons["type"], persons["exception"]) == ("fail", "table", "region C is published in "
                                                                         "the census")
    assert persons["comments"] == ["Table 1"] and persons["properties"] == {"method": "crosstab"}
    # the flagged cells point at the value column of the CSV's rows for region C, from the service's own report
    rows = list(csv.reader(io.StringIO((folder / "persons.csv").read_text())))[1:]
    flagged = {tuple(rows[r][:2]) for r, column in persons["files"][0]["sdc"]["cells"]["MinimumThresholdCheck"]}
    assert flagged == {("C", "F"), ("C", "M"), ("C", "Total")}
    assert persons["files"][0]["sdc"]["summary"] == {"MinimumThresholdCheck": 3}
    assert (figure["type"], figure["files"][0]["name"]) == ("custom", "output_1.png")
    # every file is in the signed manifest, so the package is verified at collection as before
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"results.json", "checksums/persons.csv.txt"} <= {f["name"] for f in manifest["files"]}
    with transaction(world.factory) as s:
        _, data = service.collect(s, request_id, "alice")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert f"release-{request_id}/results.json" in archive.namelist()
    # and offline, as `onsite release verify` checks it: every file listed and signed, nothing else
    ring = signing.read_keyring(signing.ReleaseSigning.of(world.settings).keyring_path(world.settings.home))
    assert signing.verify(signing.read_package(folder), ring).ok
    (folder / "checksums" / "extra.txt").write_text("not in the manifest")
    assert not signing.verify(signing.read_package(folder), ring).ok


def test_attack_text_with_hidden_characters_never_reaches_results_json(world, session) -> None:
    acro = ACRO(suppress=False, db=session)
    people = session.sql("SELECT * FROM survey WHERE region <> 'C'").df()
    acro.crosstab(people.region, people.sex)
    acro.add_comments("output_0", "Table 1\u202e hidden")  # a right-to-left override
    with pytest.raises(ReleaseError, match="invisible"):  # the comment is in the purpose: the service refuses
        acro.finalise(title="Persons", purpose="Table 1")
    # a kernel that puts it in the claimed record only: the request is taken, the text is withheld from the package
    forged = acro.results.get("output_0").onsite[0].to_request().to_json()
    forged["claimed"]["acro"] = {"uid": "output_0", "method": "crosstab", "command": "x\u202ey",
                                 "comments": ["Table 1\u202e hidden"], "exception": ""}
    request_id = service.submit(world.factory, payload(forged), "alice").id
    for reviewer in ("bob", "carol"):
        vote(world, request_id, reviewer, Decision.APPROVE, position=0)
    document = _sacro_viewer_reads(world.settings.egress_dir / str(request_id))
    assert document["results"]["output_0"]["comments"] == ["[withheld: the text holds an invisible or control "
                                                           "character]"]
    assert document["results"]["output_0"]["command"].startswith("[withheld")
    assert "\u202e" not in (world.settings.egress_dir / str(request_id) / "results.json").read_text()
