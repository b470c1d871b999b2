"""Payloads built by the real kernel builders (analysis_kernel.outputs) are accepted and re-checked."""
from __future__ import annotations

import copy

import pytest
from workflow_factories import payload

from analysis_kernel.connection import connect
from analysis_kernel.outputs import frequency_table, histogram, magnitude_table
from dataplane.manifest import ProjectGrant, SessionManifest
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
    """Per output, the service's verdict of its own checks (what the kernel can know: the service also compares it
    with the project's other outputs, `differencing`) and what the claim got wrong."""
    request = service.submit(world.factory, payload(*outputs), "alice")
    return [(Verdict.combine(Verdict(r["verdict"]) for r in o.report["results"] if r["rule"] != "differencing")
             if o.report else o.verdict, o.mismatch) for o in request.outputs]


def test_honest_kernel_outputs_get_the_same_verdict(world, kernel):
    tables = [
        frequency_table(kernel, "SELECT * FROM survey", "region", name="count_by_region"),
        frequency_table(kernel, "SELECT * FROM survey WHERE region <> 'C'", "region", "sex"),
        magnitude_table(kernel, "SELECT * FROM survey", "region", value="income", statistic="mean"),
    ]
    results = _submit(world, *(t.to_request().to_json() for t in tables))
    assert [v for v, _ in results] == [t.verdict for t in tables]
    assert [m for _, m in results] == [[], [], []]  # nothing claimed differs


def test_forged_kernel_claim_is_caught(world, kernel):
    table = frequency_table(kernel, "SELECT * FROM survey", "region", name="by_region")
    assert table.verdict is Verdict.FAIL
    forged = copy.deepcopy(table.to_request().to_json())
    forged["claimed"]["verdict"] = "pass"
    records = forged["claimed"]["shadow"]["columns"].index("sdc_records")
    for row in forged["claimed"]["shadow"]["rows"]:
        row[records] = 1000
    [(verdict, mismatch)] = _submit(world, forged)
    assert verdict is Verdict.FAIL
    assert {"what": "verdict", "code": "claimed_verdict", "args": {}, "claimed": "pass", "recomputed": "fail"} in mismatch
    assert any(m["what"] == "C: sdc_records" and m["claimed"] == 1000 and m["recomputed"] == 2 for m in mismatch)


def test_histograms_get_the_kernels_histogram_checks(world, kernel):
    # incomes are 100, 200, ..., 5700 (see write_dataset)
    gap = histogram(kernel, "SELECT * FROM survey", "income", edges=[0, 3000, 3001, 10000], name="gap")
    data_edges = histogram(kernel, "SELECT * FROM survey", "income", bins=2, name="data_edges")
    round_edges = histogram(kernel, "SELECT * FROM survey", "income", edges=[0, 3000, 6000, 9000], name="round")
    kernel_verdicts = [h.verdict for h in (gap, data_edges, round_edges)]
    assert kernel_verdicts == [Verdict.FAIL, Verdict.REVIEW, Verdict.PASS]  # an empty interior bin; edges = min, max
    results = _submit(world, gap.to_request().to_json(), data_edges.to_request().to_json(), round_edges.to_request().to_json())
    assert [v for v, _ in results] == kernel_verdicts


def test_a_forged_histogram_claim_does_not_change_the_services_verdict(world, kernel):
    """The kernel's bins are ignored: the service bins the spec's edges itself and finds the empty interior bin."""
    gap = histogram(kernel, "SELECT * FROM survey", "income", edges=[0, 3000, 3001, 10000], name="gap")
    request = gap.to_request().to_json()
    claimed = request["claimed"]["shadow"]
    records = claimed["columns"].index("sdc_records")
    for row in claimed["rows"]:
        row[records] = max(row[records], 50)  # every bin "full"
    request["claimed"]["verdict"] = "pass"
    [(verdict, mismatch)] = _submit(world, request)
    assert verdict is Verdict.FAIL  # [3000, 3001) is empty between non-empty bins
    assert any(m["what"] == "verdict" and m["claimed"] == "pass" for m in mismatch)


def _release(world, request_id: int) -> None:
    from workflow_factories import vote

    from disclosure_review.workflow.enums import Decision

    for reviewer in world.reviewers:
        vote(world, request_id, reviewer, Decision.APPROVE)


def test_protected_table_uses_the_services_own_pattern_not_the_kernels(world, kernel):
    import csv
    import io

    table = frequency_table(kernel, "SELECT * FROM survey", "region", "sex", name="by_region_sex")
    assert table.verdict is Verdict.FAIL  # region C has 1 + 1 records
    protected = table.protect("suppress")
    assert protected.verdict is Verdict.PASS and protected.spec.protection is not None
    shown = {r[:2]: r[2] for r in protected.table.iter_rows()}
    assert shown[("C", "F")] is None and shown[("C", "Total")] is None
    assert {("C", "F"), ("C", "M")} <= {(r["region"], r["sex"]) for r in protected.intervals.iter_rows(named=True)}

    forged = copy.deepcopy(protected.to_request().to_json())
    cells = forged["claimed"]["cells"]["rows"]
    for row in cells:
        if row[:2] == ["C", "F"]:
            row[2] = 1  # the kernel side "forgot" to suppress the small cell
    request = service.submit(world.factory, payload(forged), "alice")
    request_id, output = request.id, request.outputs[0]
    assert output.verdict is Verdict.PASS
    assert any(m["what"] == "released C / F" and m["claimed"] == 1 and m["recomputed"] is None
               for m in output.mismatch)
    audit = output.report["protection"]["audit"]
    intervals = {(c["key"]["region"], c["key"]["sex"]): (c["low"], c["high"]) for c in audit["cells"]}
    assert intervals[("C", "F")][1] > 1  # the interval reaches beyond the true value
    assert "interval_audit" in [r.get("rule") for r in output.report["results"]]
    _release(world, request_id)
    released = world.settings.egress_dir / str(request_id) / "by_region_sex.csv"
    rows = {(r[0], r[1]): r[2] for r in csv.reader(io.StringIO(released.read_text()))}
    assert rows[("C", "F")] == "" and rows[("C", "M")] == "" and rows[("C", "Total")] == ""
    assert rows[("A", "F")] == "15" and rows[("Total", "Total")] == "57"  # A: 30 records, every other one F


def test_a_protected_table_whose_spec_loses_its_protection_is_checked_unprotected(world, kernel):
    protected = frequency_table(kernel, "SELECT * FROM survey", "region", name="r").protect("suppress")
    forged = copy.deepcopy(protected.to_request().to_json())
    forged["spec"]["protection"] = None
    [(verdict, _)] = _submit(world, forged)
    assert verdict is Verdict.FAIL


def test_record_deletion_totals_exclude_the_failing_cells_records(world, kernel):
    import duckdb

    table = frequency_table(kernel, "SELECT * FROM survey", "region", name="deleted").protect("delete_records")
    assert table.verdict is Verdict.PASS
    con = duckdb.connect(str(world.settings.datasets_dir / "survey.duckdb"), read_only=True)
    expected = con.execute("SELECT count(*) FROM microdata WHERE region <> 'C'").fetchall()[0][0]  # independent count
    con.close()
    output = service.submit(world.factory, payload(table.to_request().to_json()), "alice").outputs[0]
    rows = {r[0]: r[1] for r in output.recomputed["rows"]}
    assert output.verdict is Verdict.PASS and output.report["protection"]["deleted_cells"] == [["C"]]
    assert rows["Total"] == expected == 55 and "C" not in rows  # region C had no other records


def test_reviewer_page_shows_the_services_protected_table_and_intervals(world, kernel):
    from review_service.app import make_jinja, marked_rows
    from review_service.i18n import translator

    protected = frequency_table(kernel, "SELECT * FROM survey", "region", "sex", name="shown").protect("suppress")
    output = service.submit(world.factory, payload(protected.to_request().to_json()), "alice").outputs[0]
    html = make_jinja().get_template("_protection.html").render(o=output, t=translator("en"))
    rows = marked_rows(output)
    intervals = [c for c in output.report["protection"]["audit"]["cells"]]
    assert "Feasible intervals of the suppressed cells" in html
    assert html.count('class="interval interval-') == len(intervals) >= 3
    c_f = next(c for c in intervals if c["key"] == {"region": "C", "sex": "F"})
    assert f"[{c_f['low']:g}, {c_f['high']:g}]" in html
    assert [row for row, _ in rows if row[:2] == ["C", "F"]] == [["C", "F", None]]  # shown blank
