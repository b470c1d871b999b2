"""`ACRO.finalise()` is a release request: the outputs of an ACRO session travel through the session outbox to the
real review service (service.submit, as the forwarder posts them), which recomputes the tables from their queries.
The released values equal the tables ACRO's methods returned; comments and exceptions reach the reviewers;
nothing is written to the folder ACRO would have written."""
from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest

from analysis_kernel.acro import ACRO
from analysis_kernel.connection import connect
from dataplane.manifest import ProjectGrant, SessionManifest
from disclosure_review import wire
from disclosure_review.sdc import MARGIN_LABEL, Verdict
from disclosure_review.workflow import service
from onsite_base.db import transaction
from onsite_base.fileio import write_json_atomic
from review_service.app import request_summary

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
            if not answer.exists():
                stored = service.submit(world.factory, json.loads(request.read_text()), "alice")
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
    acro.rename_output("output_0", "persons_by_region_sex")
    acro.add_comments("persons_by_region_sex", "Table 1 of the paper")
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
    acro = ACRO(suppress=True, db=session)
    people = session.sql("SELECT region, sex FROM survey").df()
    table = acro.crosstab(people.region, people.sex, margins=True)
    records = acro.finalise(title="Persons", purpose="Table 1")
    _, [(_, verdict, verified, recomputed)] = _stored(world, records.answer["id"])
    assert verified and verdict.value == records.get("output_0").status
    cells = {tuple(row[:-1]): row[-1] for row in recomputed["rows"]}
    for row in table.index:
        for column in table.columns:
            released = cells.get(tuple(MARGIN_LABEL if v == "All" else v for v in (row, column)))  # C: deleted
            shown = table.loc[row, column]
            assert (released is None and math.isnan(shown)) or released == shown
    assert math.isnan(table.loc["C", "F"])  # the small cell is not released


def test_finalise_with_nothing_to_send_sends_nothing(session, capsys) -> None:
    assert ACRO(db=session).finalise() is None
    assert "no outputs" in capsys.readouterr().out
    assert list(Path(session.manifest.outbox).iterdir()) == []
