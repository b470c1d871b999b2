"""`outputs.extract_output` on the ingested demo dataset: declared key variables, the check, the payload."""
from __future__ import annotations

import numpy as np
import pytest

from dataplane.catalogue import guarded_connection
from analysis_kernel.connection import AnalysisConnection
from analysis_kernel.outputs import OutputInvalid, extract_output
from dataplane.manifest import SessionManifest
from disclosure_review.sdc import Verdict
from disclosure_review import wire


@pytest.fixture
def db(demo_dataset, tmp_path):
    manifest = SessionManifest.from_dict({
        "user": "r.tanaka", "outbox": str(tmp_path / "outbox"),
        "projects": {"p1": {"title": "Test", "preset": "acro-default", "datasets": {"demo_household": str(demo_dataset)}}},
    })
    connection = AnalysisConnection(guarded_connection(manifest.projects["p1"].datasets), "p1", manifest)
    yield connection
    connection.close()


def test_declared_key_variables_in_the_result_are_checked(db):
    query = "SELECT prefecture, sex, age, annual_income FROM demo_household"
    e = extract_output(db, query, name="persons")
    frame = db.sql(query).df()
    sizes = frame.groupby(["prefecture", "sex", "age"])["sex"].transform("size").to_numpy()
    assert e.roles.keys == ("prefecture", "sex", "age") and e.roles.sensitive == ("annual_income",)
    assert e.records == len(frame)
    assert e.risk["k_anonymity"]["3"] == int((sizes < 3).sum()) > 0
    assert e.risk["expected_reidentifications"] == pytest.approx(float(np.sum(1.0 / sizes)))  # no weight: 1/f_k
    assert e.verdict is Verdict.FAIL
    request = e.to_request().to_json()
    assert request["kind"] == "extract" and request["spec"]["keys"] == ["prefecture", "sex", "age"]
    assert request["claimed"]["risk"]["records"] == len(frame)
    [validated] = wire.ReleasePayload.from_json({"project": "p1", "title": "t", "purpose": "p", "outputs": [request]}).outputs
    assert validated.spec.query == query
    assert "record-level extract" in e._repr_html_() and "fail" in repr(e)


def test_extra_keys_add_and_never_remove(db):
    e = extract_output(db, "SELECT sex, annual_income FROM demo_household", keys=["annual_income"])
    assert e.roles.keys == ("sex", "annual_income")  # income becomes a key: every income is near unique
    assert e.verdict is Verdict.FAIL


def test_bad_input_is_refused(db):
    with pytest.raises(OutputInvalid, match="not columns of the result"):
        extract_output(db, "SELECT sex FROM demo_household", keys=["age"])
    with pytest.raises(OutputInvalid, match="exactly one SELECT"):
        extract_output(db, "SELECT 1; SELECT 2")
