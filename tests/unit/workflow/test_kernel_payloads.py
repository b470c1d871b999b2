"""Payloads built by the real kernel builders (analysis_kernel.outputs) are accepted and re-checked."""
from __future__ import annotations

import copy

import pytest
from workflow_factories import payload

from access_control.db import transaction
from analysis_kernel.connection import connect
from analysis_kernel.outputs import frequency_table, histogram, magnitude_table
from analysis_kernel.session import ProjectGrant, SessionManifest
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import service

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def kernel(world, tmp_path):
    manifest = SessionManifest(
        user="alice",
        projects={"p1": ProjectGrant(title="Income", preset="acro-default",
                                     datasets={"survey": world.settings.datasets_dir / "survey.duckdb"})},
        outbox=tmp_path,
    )
    db = connect("p1", manifest=manifest, memory_limit="1GB")
    yield db
    db.duckdb.close()


def _submit(world, *outputs):
    with transaction(world.factory) as s:
        request = service.submit(s, payload(*outputs), "alice")
        return [(o.verdict, o.mismatch) for o in request.outputs]


def test_honest_kernel_outputs_get_the_same_verdict(world, kernel):
    tables = [
        frequency_table(kernel, "SELECT * FROM survey", "region", name="count_by_region"),
        frequency_table(kernel, "SELECT * FROM survey WHERE region <> 'C'", "region", "sex"),
        magnitude_table(kernel, "SELECT * FROM survey", "region", value="income", statistic="mean"),
    ]
    results = _submit(world, *(t.to_request() for t in tables))
    assert [v for v, _ in results] == [t.verdict for t in tables]
    assert [m for _, m in results] == [[], [], []]  # nothing claimed differs


def test_forged_kernel_claim_is_caught(world, kernel):
    table = frequency_table(kernel, "SELECT * FROM survey", "region", name="by_region")
    assert table.verdict is Verdict.FAIL
    forged = copy.deepcopy(table.to_request())
    forged["claimed"]["verdict"] = "pass"
    records = forged["claimed"]["shadow"]["columns"].index("sdc_records")
    for row in forged["claimed"]["shadow"]["rows"]:
        row[records] = 1000
    [(verdict, mismatch)] = _submit(world, forged)
    assert verdict is Verdict.FAIL
    assert {"what": "verdict", "claimed": "pass", "recomputed": "fail"} in mismatch
    assert any(m["what"] == "C: sdc_records" and m["claimed"] == 1000 and m["recomputed"] == 2 for m in mismatch)


def test_histograms_get_the_kernels_histogram_checks(world, kernel):
    # incomes are 100, 200, ..., 5700 (see write_dataset)
    gap = histogram(kernel, "SELECT * FROM survey", "income", edges=[0, 3000, 3001, 10000], name="gap")
    data_edges = histogram(kernel, "SELECT * FROM survey", "income", bins=2, name="data_edges")
    round_edges = histogram(kernel, "SELECT * FROM survey", "income", edges=[0, 3000, 6000, 9000], name="round")
    kernel_verdicts = [h.verdict for h in (gap, data_edges, round_edges)]
    assert kernel_verdicts == [Verdict.FAIL, Verdict.REVIEW, Verdict.PASS]  # an empty interior bin; edges = min, max
    results = _submit(world, gap.to_request(), data_edges.to_request(), round_edges.to_request())
    assert [v for v, _ in results] == kernel_verdicts


def test_a_forged_histogram_claim_does_not_change_the_services_verdict(world, kernel):
    """The kernel's bins are ignored: the service bins the spec's edges itself and finds the empty interior bin."""
    gap = histogram(kernel, "SELECT * FROM survey", "income", edges=[0, 3000, 3001, 10000], name="gap")
    request = gap.to_request()
    claimed = request["claimed"]["shadow"]
    records = claimed["columns"].index("sdc_records")
    for row in claimed["rows"]:
        row[records] = max(row[records], 50)  # every bin "full"
    request["claimed"]["verdict"] = "pass"
    [(verdict, mismatch)] = _submit(world, request)
    assert verdict is Verdict.FAIL  # [3000, 3001) is empty between non-empty bins
    assert any(m["what"] == "verdict" and m["claimed"] == "pass" for m in mismatch)
