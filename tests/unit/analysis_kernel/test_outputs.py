"""Output builders on a small dataset file opened the guarded way (real DuckDB, real checks)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dataplane.catalogue import guarded_connection
from small_survey import write_small_survey
from analysis_kernel.connection import AnalysisConnection
from analysis_kernel.outputs import (
    OutputInvalid, file_output, frequency_table, histogram, magnitude_table, model_output,
)
from dataplane.manifest import SessionManifest
from disclosure_review.sdc import MARGIN_LABEL, CheckReport, ShadowTable, TableSpec, Verdict, check_table, load_preset


@pytest.fixture
def db(tmp_path: Path):
    path = write_small_survey(tmp_path / "survey.duckdb")  # 40 people in 20 households
    manifest = SessionManifest.from_dict({
        "user": "r.tanaka", "outbox": str(tmp_path / "outbox"),
        "projects": {"p1": {"title": "Test", "preset": "acro-default", "datasets": {"survey": str(path)}}},
    })
    connection = AnalysisConnection(guarded_connection(manifest.projects["p1"].datasets), "p1", manifest)
    yield connection
    connection.close()


def test_frequency_table_from_sql_fails_on_small_cells(db: AnalysisConnection) -> None:
    out = frequency_table(db, "SELECT * FROM survey", rows="area", columns="grp")
    counts = {tuple(r[:2]): r[2] for r in out.table.iter_rows()}
    assert counts[("big", "f")] == 15 and counts[("tiny", "rare")] == 3 and counts[("big", "rare")] == 0
    assert counts[(MARGIN_LABEL, MARGIN_LABEL)] == 40
    assert out.verdict is Verdict.FAIL
    assert ("tiny", "rare") in out.report.result("threshold").cells
    html = out._repr_html_()
    assert "fail" in html and "#ffebe9" in html and "threshold" in html


def test_request_carries_spec_and_claims_and_service_side_recomputes_the_same(db: AnalysisConnection) -> None:
    out = frequency_table(db, db.sql("SELECT area, grp FROM survey WHERE area = 'big'"), rows="area",
                          columns="grp", name="big_area")
    request = json.loads(json.dumps(out.to_request().to_json()))
    assert request["name"] == "big_area" and request["kind"] == "table"
    spec = TableSpec.from_dict(request["spec"])
    # what the review service does: a fresh guarded connection with the same views, the recorded query
    from disclosure_review.sdc import compute_shadow

    fresh = guarded_connection(db.manifest.projects["p1"].datasets)
    try:
        recomputed = compute_shadow(fresh, spec)
    finally:
        fresh.close()
    assert recomputed.frame.equals(out.shadow.frame)
    assert check_table(recomputed, load_preset("acro-default")).verdict.value == request["claimed"]["verdict"]
    assert ShadowTable.from_dict(request["claimed"]["shadow"]).labels() == out.shadow.labels()
    assert request["claimed"]["cells"]["columns"] == ["area", "grp", "count"]


def test_magnitude_table_with_units_finds_the_dominant_household(db: AnalysisConnection) -> None:
    out = magnitude_table(db, "SELECT * FROM survey", rows="area", value="income", statistic="sum",
                          unit="household_id")
    nk = out.report.result("nk_dominance")
    assert ("big",) in nk.cells and nk.parameters["contributions"] == "per unit"
    assert out.verdict is Verdict.FAIL
    assert CheckReport.from_dict(out.report.to_dict()) == out.report


def test_sources_the_service_cannot_rerun_are_refused(db: AnalysisConnection) -> None:
    # a table made in this session (it could hold anything) is not a granted dataset
    db.duckdb.execute("CREATE TEMP TABLE mine AS SELECT 'x' AS area FROM range(20)")
    with pytest.raises(OutputInvalid, match="reads mine.*Python frame or a table made in this session"):
        frequency_table(db, db.sql("SELECT * FROM mine"), rows="area")
    with pytest.raises(OutputInvalid, match="reads mine, which the review service cannot re-run"):
        frequency_table(db, "SELECT * FROM mine", rows="area")


def test_bad_builder_input_is_refused_with_the_reason(db: AnalysisConnection) -> None:
    with pytest.raises(OutputInvalid, match="not one of"):
        magnitude_table(db, "SELECT * FROM survey", rows="area", value="income", statistic="geomean")
    with pytest.raises(OutputInvalid, match="exactly one SELECT"):
        frequency_table(db, "SELECT * FROM survey; DROP VIEW survey", rows="area")
    with pytest.raises(OutputInvalid, match="nonexistent"):
        frequency_table(db, "SELECT * FROM survey", rows="nonexistent")


def test_file_output_is_review_and_unverified(tmp_path: Path) -> None:
    figure = tmp_path / "plot.png"
    figure.write_bytes(b"\x89PNG fake")
    out = file_output(figure, explanation="bars of counts >= 10", code="plt.bar(...)")
    request = out.to_request().to_json()
    assert out.verdict is Verdict.REVIEW and out.verified is False
    assert request == {"kind": "file", "name": "plot", "filename": "plot.png",
                       "content_b64": base64.b64encode(b"\x89PNG fake").decode(), "code": "plt.bar(...)",
                       "explanation": "bars of counts >= 10"}
    with pytest.raises(OutputInvalid, match="explain"):
        file_output(figure, explanation=" ", code="x")
    with pytest.raises(OutputInvalid, match="code"):
        file_output(figure, explanation="why", code="")


def test_histogram_with_round_edges(db: AnalysisConnection) -> None:
    out = histogram(db, "SELECT * FROM survey WHERE income < 1000", "income", edges=[95, 110, 125, 140, 155])
    bins = {k: v for k, v in out.table.iter_rows() if k != MARGIN_LABEL}
    # incomes 100 + i for the 39 people other than i = 5 (who earns 1,000,000): 100..139 without 105
    assert bins == {"95.0": 9, "110.0": 15, "125.0": 15}
    assert out.report.result("empty_bins").verdict is Verdict.PASS  # 140-155 is an empty tail bin
    assert out.report.result("extreme_edges").verdict is Verdict.PASS  # 95 and 155 are not data values
    assert out.report.result("threshold").cells == (("95.0",),)
    default = histogram(db, "SELECT * FROM survey WHERE income < 1000", "income", bins=4)
    assert default.report.result("extreme_edges").verdict is Verdict.REVIEW
    spec = TableSpec.from_dict(default.to_request().to_json()["spec"])  # what the review service recomputes
    assert spec.rows == ("income",) and len(spec.edges) == 5


def test_model_output_checks_and_is_never_pass(db: AnalysisConnection) -> None:
    import statsmodels.formula.api as smf

    frame = db.sql("SELECT * FROM survey WHERE income < 1000").df()
    result = smf.ols("income ~ C(grp)", frame).fit()
    out = model_output(db, result, explanation="income by group", code="smf.ols('income ~ C(grp)', frame)")
    assert out.report.result("categorical_levels").cells == (("C(grp)[T.rare]",),)  # 3 people
    assert out.verdict is Verdict.FAIL
    request = out.to_request().to_json()
    assert request["kind"] == "file" and request["filename"] == "model.txt"
    assert "OLS Regression Results" in base64.b64decode(request["content_b64"]).decode()
    big = smf.ols("income ~ C(area)", frame).fit()
    assert model_output(db, big, explanation="x", code="y").verdict is Verdict.REVIEW


def test_html_marks_exactly_the_flagged_cells(db: AnalysisConnection) -> None:
    import re

    out = frequency_table(db, "SELECT * FROM survey", rows="area", columns="grp")
    page = out._repr_html_()
    marked = re.findall(r"<td style='background:#ffebe9;text-align:right' title='([^']*)'>([^<]*)</td>", page)
    failing = [cell for cell, verdict in out.report.cell_verdicts().items() if verdict is Verdict.FAIL]
    assert len(marked) == len(failing) and ("threshold", "3") in marked  # tiny x rare: 3 people
    long = magnitude_table(db, "SELECT * FROM survey", rows=("area", "grp"), value="income")
    assert long._repr_html_().count("<tr>") == long.table.height + 1


def test_protect_suppresses_records_the_spec_and_shows_intervals(db: AnalysisConnection) -> None:
    out = magnitude_table(db, "SELECT * FROM survey", rows="area", columns="grp", value="income", unit="household_id")
    assert out.verdict is Verdict.FAIL  # household 2 dominates (big, f); tiny cells are small
    safe = out.protect("suppress")
    assert safe.spec.protection is not None and out.spec.protection is None  # a new output
    shown = {tuple(r[:2]): r[2] for r in safe.table.iter_rows()}
    failing = {c for c, v in out.report.cell_verdicts().items() if v is Verdict.FAIL}
    assert failing and all(shown[c] is None for c in failing)
    original = {tuple(r[:2]): r[2] for r in out.table.iter_rows()}
    published = {c: v for c, v in shown.items() if v is not None}
    assert published and all(v == original[c] for c, v in published.items())  # published cells are true values
    assert set(map(tuple, safe.intervals.select("area", "grp").rows())) >= failing
    assert "秘匿インターバル" in safe._repr_html_()
    assert safe.to_request().spec.protection.method.value == "suppress"


def test_bad_protection_is_refused_with_the_choices(db: AnalysisConnection) -> None:
    out = frequency_table(db, "SELECT * FROM survey", rows="area")
    with pytest.raises(OutputInvalid, match="suppress, round, redact_round or delete_records"):
        out.protect("blur")
    with pytest.raises(OutputInvalid, match="only with method 'round'"):
        out.protect("suppress", base=5)
    mean = magnitude_table(db, "SELECT * FROM survey", rows="area", value="income", statistic="mean")
    with pytest.raises(OutputInvalid, match="only counts and sums"):
        mean.protect("round")
