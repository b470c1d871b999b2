"""Every kind of output the kernel builds travels in the wire format (disclosure_review.wire): the forwarder's
schema takes it, and the review service's parser reads back exactly what was sent."""
from __future__ import annotations

import base64
import json

import pytest
import statsmodels.formula.api as smf

from analysis_kernel.connection import AnalysisConnection
from analysis_kernel.ingress import intake_dir
from analysis_kernel.outputs import extract_output, file_output, frequency_table, histogram, model_output
from dataplane.catalogue import guarded_connection
from dataplane.manifest import ProjectGrant, SessionManifest
from disclosure_review import wire
from disclosure_review.workflow import ingress, service

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
SOURCE = "SELECT * FROM demo_household"


@pytest.fixture
def db(demo_dataset, tmp_path):
    manifest = SessionManifest(user="r.tanaka", outbox=tmp_path / "outbox", projects={
        "p1": ProjectGrant(title="Test", preset="acro-default", datasets={"demo_household": demo_dataset})})
    con = AnalysisConnection(guarded_connection(manifest.projects["p1"].datasets), "p1", manifest)
    yield con
    con.close()


@pytest.fixture(scope="module")
def validator():
    """jsonschema's Draft 2020-12 validator class."""
    # heavy: jsonschema loads its format checkers (rfc3987_syntax builds a grammar, 1-2 CPU-s); imported for the
    # tests that use it, which run on one worker (tests/conftest.py ONE_GROUP_FILES), not by every process
    from jsonschema import Draft202012Validator

    return Draft202012Validator


def _sent(payload) -> dict:
    """What the outbox file holds, read back as the forwarder and the service read it."""
    return json.loads(json.dumps(payload.to_json(), ensure_ascii=False))


def test_every_kind_of_output_follows_the_wire_format(db, tmp_path, validator):
    figure = tmp_path / "figure.png"
    figure.write_bytes(PNG)
    frame = db.sql(SOURCE).df()
    outputs = [
        frequency_table(db, SOURCE, "prefecture", "sex", name="by_prefecture_sex"),
        frequency_table(db, SOURCE, "prefecture", name="protected").protect("suppress"),
        histogram(db, SOURCE, "annual_income", bins=3, name="hist"),
        extract_output(db, "SELECT prefecture, sex FROM demo_household", name="records"),
        file_output(figure, explanation="都道府県別の図 (a figure)", code="plt.savefig('figure.png')"),
        model_output(db, smf.ols("annual_income ~ C(sex)", frame).fit(), explanation="a model", code="smf.ols(...)"),
    ]
    payload = wire.ReleasePayload(project="p1", title="All kinds", purpose="test",
                                  outputs=tuple(o.to_request() for o in outputs))
    sent = _sent(payload)
    assert validator(wire.json_schema(wire.ReleasePayload)).is_valid(sent)
    assert wire.ReleasePayload.from_json(sent) == payload
    kinds = [o.kind.value for o in service.validate_payload(sent).outputs]
    assert kinds == ["TABLE", "TABLE", "TABLE", "EXTRACT", "FILE", "FILE"]


def test_ingress_and_reference_reads_follow_the_wire_format(monkeypatch, tmp_path, validator):
    monkeypatch.setenv("HOME", str(tmp_path))
    intake_dir().mkdir()
    (intake_dir() / "codes.csv").write_text("code,label\n01,北海道\n")
    sent = [_sent(wire.IngressPayload(project="p1", name="codes", description="prefecture codes",
                                      filename="codes.csv", content=(intake_dir() / "codes.csv").read_bytes())),
            _sent(wire.ReferencePayload("p1")), _sent(wire.ReferencePayload("p1", "codes"))]
    for data, cls in zip(sent, (wire.IngressPayload, wire.ReferencePayload, wire.ReferencePayload)):
        assert validator(wire.json_schema(cls)).is_valid(data)
        assert cls.from_json(data).to_json() == data
    assert ingress.validate_payload(sent[0]).content == "code,label\n01,北海道\n".encode()
    assert sent[1] == {"project": "p1"}  # no name: the list
