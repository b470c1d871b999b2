"""The deliberate differences of docs/acro-differences.md, each shown on the real `acro` package."""
from __future__ import annotations

import logging

import pandas as pd
import pytest

from disclosure_review.sdc import (
    MARGIN_LABEL, Statistic, TableKind, TableSpec, Verdict, check_table, load_preset, shadow_from_frame,
)

acro_module = pytest.importorskip("acro")
RULES = load_preset("acro-default")


@pytest.fixture(scope="module")
def acro():
    checker = acro_module.ACRO(suppress=False)
    logging.disable(logging.INFO)
    yield checker
    logging.disable(logging.NOTSET)


def acro_outcome(acro, frame: pd.DataFrame, aggfunc: str | None) -> tuple[str, dict]:
    if aggfunc is None:
        acro.crosstab(frame.r, frame.c)
    else:
        acro.crosstab(frame.r, frame.c, values=frame.v, aggfunc=aggfunc)
    record = acro.results.get_index(len(acro.results.results) - 1)
    cells = {(str(r), str(c)): str(o) for r, row in record.outcome.iterrows() for c, o in row.items()}
    return record.status, cells


def ours(frame: pd.DataFrame, statistic: Statistic | None):
    if statistic is None:
        spec = TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("r",), columns=("c",))
    else:
        spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("r",), columns=("c",), value="v",
                         statistic=statistic)
    return check_table(shadow_from_frame(frame, spec), RULES)


TWO_CELLS = pd.DataFrame({"r": ["a"] * 12 + ["b"] * 12, "c": ["x"] * 24, "v": [float(i) for i in range(24)]})


def test_d6_max_of_twelve_records(acro) -> None:
    status, cells = acro_outcome(acro, TWO_CELLS, "max")
    assert status == "pass" and cells[("a", "x")] == "ok"
    report = ours(TWO_CELLS, Statistic.MAX)
    assert report.verdict is Verdict.FAIL and ("a", "x") in report.result("single_unit").cells


def test_d7_mode_has_no_threshold_in_acro(acro) -> None:
    few = pd.DataFrame({"r": ["a"] * 3, "c": ["x"] * 3, "v": [1.0, 1.0, 2.0]})
    status, _ = acro_outcome(acro, few, "mode")
    assert status == "pass"
    assert ours(few, Statistic.MODE).verdict is Verdict.FAIL


def test_d7_mode_of_distinct_values_passes_in_acro(acro) -> None:
    # 12 records a cell, every value distinct: the "mode" is one record's value (a person's income of 23).
    status, cells = acro_outcome(acro, TWO_CELLS, "mode")
    assert status == "pass" and cells[("b", "x")] == "ok"
    result = ours(TWO_CELLS, Statistic.MODE).result("single_unit")
    assert result.verdict is Verdict.FAIL and ("b", "x") in result.cells
    assert ours(TWO_CELLS.assign(v=[5.0] * 24), Statistic.MODE).verdict is Verdict.PASS


def test_d8_std_cells_tagged_although_dof_suffice(acro) -> None:
    status, cells = acro_outcome(acro, TWO_CELLS, "std")
    assert "MinimumDoFCheck" in cells[("a", "x")]  # 12 records: 11 degrees of freedom
    report = ours(TWO_CELLS, Statistic.STD)
    assert report.result("degrees_of_freedom").verdict is Verdict.PASS


def test_d5_all_zero_cell_fails_p_ratio_in_acro(acro) -> None:
    frame = TWO_CELLS.assign(v=[0.0] * 12 + [5.0 + i for i in range(12)])
    _, cells = acro_outcome(acro, frame, "sum")
    assert "PPercentCheck" in cells[("a", "x")]
    lenient = RULES.replace(zeros_disclosive=False)
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("r",), columns=("c",), value="v",
                     statistic=Statistic.SUM)
    report = check_table(shadow_from_frame(frame, spec), lenient)
    assert report.verdict is Verdict.PASS
    assert ("a", "x") in ours(frame, Statistic.SUM).result("zeros").cells  # zeros disclosive: fails there


def test_d10_empty_cell_fails_acro_threshold(acro) -> None:
    frame = pd.DataFrame({"r": ["a"] * 12 + ["b"] * 12, "c": ["x"] * 12 + ["y"] * 12})
    _, cells = acro_outcome(acro, frame, None)
    assert "MinimumThresholdCheck" in cells[("a", "y")]
    spec = TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("r",), columns=("c",))
    report = check_table(shadow_from_frame(frame, spec), RULES.replace(zeros_disclosive=False))
    assert ("a", "y") not in report.result("threshold").cells


def test_null_levels_are_cells_in_both(acro) -> None:
    """Both keep a missing row level as a cell of its own and check it (no difference)."""
    frame = pd.DataFrame({"r": ["a"] * 12 + [None] * 3, "c": ["x"] * 15})
    _, cells = acro_outcome(acro, frame, None)
    assert set(cells) == {("a", "x"), ("nan", "x")} and "MinimumThresholdCheck" in cells[("nan", "x")]
    report = ours(frame, None)
    assert report.result("threshold").cells == ((None, "x"), (None, MARGIN_LABEL))


ALL_ZERO_CELL = TWO_CELLS.assign(v=[0.0] * 12 + [5.0 + i for i in range(12)])  # (a, x): 12 records, all 0


@pytest.mark.parametrize("aggfunc", ["median", "min", "max", "mode", "std"])
def test_d5_acro_passes_an_all_zero_cell_of_order_statistics(acro, aggfunc) -> None:
    """docs/acro-differences.md D5: ACRO's zero check for these looks only for empty cells."""
    status, cells = acro_outcome(acro, ALL_ZERO_CELL, aggfunc)
    assert status == "pass"
    if aggfunc != "std":  # ACRO tags every std cell (D8)
        assert cells[("a", "x")] == "ok"
    report = ours(ALL_ZERO_CELL, Statistic(aggfunc))
    if aggfunc == "std":  # 11 degrees of freedom: the zeros question is not asked of a spread
        assert report.verdict is Verdict.PASS
    else:
        assert ("a", "x") in report.result("zeros").cells and report.verdict is Verdict.FAIL


@pytest.mark.parametrize("aggfunc", ["sum", "mean"])
def test_d5_acro_fails_an_all_zero_cell_of_sums_and_means(acro, aggfunc) -> None:
    _, cells = acro_outcome(acro, ALL_ZERO_CELL, aggfunc)
    assert "PPercentCheck" in cells[("a", "x")]
    assert ("a", "x") in ours(ALL_ZERO_CELL, Statistic(aggfunc)).result("zeros").cells


def test_d8_an_empty_std_cell_fails_in_both(acro) -> None:
    """(a, y) has no record: ACRO fails the table on its degrees of freedom, and so does Onsite (issue 12)."""
    frame = pd.DataFrame({"r": ["a"] * 12 + ["b"] * 24, "c": ["x"] * 24 + ["y"] * 12,
                          "v": [float(i) for i in range(36)]})
    status, cells = acro_outcome(acro, frame, "std")
    assert status == "fail" and "MinimumDoFCheck" in cells[("a", "y")]
    full = TWO_CELLS
    assert acro_outcome(acro, full, "std")[0] == "pass"  # so the empty cell is what fails ACRO's table
    report = ours(frame, Statistic.STD)
    assert report.verdict is Verdict.FAIL and report.result("degrees_of_freedom").cells == (("a", "y"),)
