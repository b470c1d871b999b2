"""Each rule on worked examples, exact boundaries included.

Formulas: threshold, (n, k) dominance and p% rules as defined in Hundepool et al.,
"Statistical Disclosure Control" (Wiley 2012), §4.2 (sensitivity rules for
magnitude tables), with ACRO 1.0's boundary conventions (NK: share >= k fails;
p%: ratio < p fails, exactly p passes).
"""
from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc import (
    CHECKS, CheckReport, Rules, Statistic, TableKind, TableSpec, Verdict, check_table, load_preset, shadow_from_frame,
)
from disclosure_review.sdc.shadow import ShadowTable

ACRO = load_preset("acro-default")


def cells(data: dict[str, list[float | None]], *, unit: dict[str, list[int]] | None = None) -> pl.DataFrame:
    """Records of a one-way table: {level: contributions} (and, optionally, their unit ids)."""
    rows = [(level, v, (unit or {}).get(level, list(range(len(values))))[i])
            for level, values in data.items() for i, v in enumerate(values)]
    return pl.DataFrame(rows, schema={"g": pl.String, "v": pl.Float64, "u": pl.Int64}, orient="row")


def magnitude(frame: pl.DataFrame, statistic: Statistic = Statistic.SUM, unit: bool = False) -> ShadowTable:
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("g",), value="v", statistic=statistic,
                     unit="u" if unit else None)
    return shadow_from_frame(frame, spec)


def frequency(frame: pl.DataFrame, columns: tuple[str, ...] = ()) -> ShadowTable:
    return shadow_from_frame(frame, TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("g",), columns=columns))


def test_threshold_boundary_n_equal_threshold_passes() -> None:
    shadow = frequency(cells({"nine": [1.0] * 9, "ten": [1.0] * 10, "twenty": [1.0] * 20}))
    result = CHECKS["threshold"](shadow, ACRO)
    assert result.verdict is Verdict.FAIL
    assert result.cells == (("nine",),)
    assert result.parameters["threshold"] == 10 and "n < 10" in result.message


def test_threshold_counts_units_when_declared() -> None:
    # 12 people from 9 households: 12 records pass the record count, 9 units fail it.
    frame = cells({"h": [1.0] * 12}, unit={"h": [1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9]})
    assert CHECKS["threshold"](magnitude(frame), ACRO).verdict is Verdict.PASS
    result = CHECKS["threshold"](magnitude(frame, unit=True), ACRO)
    assert result.verdict is Verdict.FAIL and result.parameters["counted"] == "units"


def test_zeros_disclosive_or_not_by_preset() -> None:
    frame = pl.DataFrame({"g": ["a"] * 10 + ["b"] * 10, "c": ["x"] * 10 + ["y"] * 10})
    shadow = frequency(frame, columns=("c",))
    result = CHECKS["zeros"](shadow, ACRO)
    assert result.verdict is Verdict.FAIL and set(result.cells) == {("a", "y"), ("b", "x")}
    relaxed = ACRO.replace(zeros_disclosive=False)
    assert CHECKS["zeros"](shadow, relaxed).verdict is Verdict.PASS
    assert CHECKS["threshold"](shadow, relaxed).verdict is Verdict.PASS  # an empty cell is no small cell


def test_nk_share_exactly_k_fails_and_just_below_passes() -> None:
    # top two 45 + 45 = 90 of 100: exactly k = 0.90 -> fails; 44 + 45 = 89 of 100 -> passes
    shadow = magnitude(cells({"exact": [45, 45] + [1.0] * 10, "below": [44, 45] + [1.1] * 10}))
    result = CHECKS["nk_dominance"](shadow, ACRO)
    assert result.cells == (("exact",),)
    assert result.parameters == {"n": 2, "k": 0.9, "contributions": "per record"}


def test_nk_uses_unit_contributions() -> None:
    # ten records, 10 each, but households 1 and 2 hold nine of them: 90 of 100 -> fails per unit
    frame = cells({"g": [10.0] * 10}, unit={"g": [1, 1, 1, 1, 1, 2, 2, 2, 2, 3]})
    assert CHECKS["nk_dominance"](magnitude(frame), ACRO).verdict is Verdict.PASS
    assert CHECKS["nk_dominance"](magnitude(frame, unit=True), ACRO).verdict is Verdict.FAIL


def test_p_percent_exactly_p_passes_and_below_fails() -> None:
    # largest 100, second 50: the rest must be >= 10 (p = 10 % of the largest)
    shadow = magnitude(cells({"exact": [100, 50, 5, 5], "below": [100, 50, 4, 5], "safe": [100, 50, 30, 30]}))
    result = CHECKS["p_percent"](shadow, ACRO)
    assert result.verdict is Verdict.FAIL and result.cells == (("below",),)


def test_p_percent_single_contributor_fails() -> None:
    result = CHECKS["p_percent"](magnitude(cells({"alone": [7.0]})), ACRO)
    assert result.cells == (("alone",), (MARGIN,))  # the total of a one-cell table is that cell


def test_negatives_review_only_their_cells_and_others_are_still_checked() -> None:
    # ACRO 1.0.2 stops checking dominance anywhere once one negative value exists.
    shadow = magnitude(cells({"neg": [5.0] * 11 + [-1.0], "dominated": [995.0] + [0.5] * 10}))
    report = check_table(shadow, ACRO)
    assert report.result("negatives").verdict is Verdict.REVIEW
    assert report.result("negatives").cells == (("neg",), (MARGIN,))
    assert ("dominated",) in report.result("nk_dominance").cells
    assert report.verdict is Verdict.FAIL
    assert report.cell_verdicts()[("neg",)] is Verdict.REVIEW


MARGIN = "Total"


def test_missing_values_go_to_review() -> None:
    shadow = magnitude(cells({"a": [1.0] * 10 + [None], "b": [1.0] * 10}))
    result = CHECKS["missing"](shadow, ACRO)
    assert result.verdict is Verdict.REVIEW and result.cells == (("a",), (MARGIN,))
    assert CHECKS["missing"](shadow, ACRO.replace(check_missing=False)).verdict is Verdict.PASS


def test_all_zero_cells() -> None:
    # Twelve zero incomes: nobody dominates; releasing 0 tells that all have 0, a zeros matter.
    shadow = magnitude(cells({"zeros": [0.0] * 12, "fine": [10.0] * 12}))
    lenient = ACRO.replace(zeros_disclosive=False)
    for rule in ("nk_dominance", "p_percent"):
        assert CHECKS[rule](shadow, lenient).verdict is Verdict.PASS
    assert check_table(shadow, lenient).verdict is Verdict.PASS
    result = CHECKS["zeros"](shadow, ACRO)
    assert result.verdict is Verdict.FAIL and result.cells == (("zeros",),)


def test_max_from_a_single_record_fails() -> None:
    shadow = magnitude(cells({"a": [float(i) for i in range(50)]}), Statistic.MAX)
    report = check_table(shadow, ACRO)
    assert report.verdict is Verdict.FAIL
    assert report.result("single_unit").cells == (("a",), (MARGIN,))
    lenient = ACRO.replace(single_unit_stats_verdict=Verdict.REVIEW)
    assert check_table(shadow, lenient).verdict is Verdict.REVIEW


def test_median_needs_threshold_contributors() -> None:
    shadow = magnitude(cells({"few": [1.0, 2.0, 3.0], "many": [float(i) for i in range(10)]}), Statistic.MEDIAN)
    assert CHECKS["single_unit"](shadow, ACRO).cells == (("few",),)


def test_mode_of_distinct_values_is_one_units_value_and_fails() -> None:
    # Twelve contributors, every value distinct: enough contributors, but the "mode" is one person's income.
    shadow = magnitude(cells({"a": [float(i) for i in range(11)] + [1_000_000.0]}), Statistic.MODE)
    assert CHECKS["threshold"](shadow, ACRO).verdict is Verdict.PASS
    result = CHECKS["single_unit"](shadow, ACRO)
    assert result.verdict is Verdict.FAIL and result.cells == (("a",), (MARGIN,))
    assert "held by fewer than 10" in result.message
    lenient = ACRO.replace(single_unit_stats_verdict=Verdict.REVIEW)
    assert CHECKS["single_unit"](shadow, lenient).verdict is Verdict.REVIEW


def test_mode_held_by_threshold_units_passes_and_one_fewer_fails() -> None:
    shadow = magnitude(cells({"held": [5.0] * 10 + [1.0, 2.0], "short": [5.0] * 9 + [1.0, 2.0, 3.0]}),
                       Statistic.MODE)
    result = CHECKS["single_unit"](shadow, ACRO)
    assert result.verdict is Verdict.FAIL and result.cells == (("short",),)  # the margin: 19 hold 5
    assert CHECKS["single_unit"](magnitude(cells({"held": [5.0] * 10 + [1.0, 2.0]}), Statistic.MODE),
                                 ACRO).verdict is Verdict.PASS


def test_mode_counts_units_holding_it_not_their_records() -> None:
    # Ten records of 5.0 from three households, two records of 1.0: the mode is held by 3 units.
    frame = cells({"h": [5.0] * 10 + [1.0, 2.0]}, unit={"h": [1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5]})
    assert CHECKS["single_unit"](magnitude(frame, Statistic.MODE), ACRO).verdict is Verdict.PASS
    result = CHECKS["single_unit"](magnitude(frame, Statistic.MODE, unit=True), ACRO)
    assert result.verdict is Verdict.FAIL and result.cells == (("h",), (MARGIN,))


def test_mode_margins_count_the_holders_of_the_margins_mode() -> None:
    # Inner cells: 5.0 held by 3; row and column margins: by 6; the total: by 12.
    frame = pl.DataFrame({"g": ["a"] * 8 + ["b"] * 8, "c": ["x", "y"] * 8,
                          "v": [5.0] * 6 + [1.0, 2.0] + [5.0] * 6 + [3.0, 4.0]})
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("g",), columns=("c",), value="v",
                     statistic=Statistic.MODE)
    shadow = shadow_from_frame(frame, spec)
    inner = (("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"))
    assert CHECKS["single_unit"](shadow, ACRO.replace(threshold=6)).cells == inner
    assert CHECKS["single_unit"](shadow, ACRO.replace(threshold=7)).cells == (
        *inner, ("a", MARGIN), ("b", MARGIN), (MARGIN, "x"), (MARGIN, "y"))
    assert CHECKS["single_unit"](shadow, ACRO.replace(threshold=3)).verdict is Verdict.PASS


def test_standard_deviation_degrees_of_freedom_boundary() -> None:
    # n = 11 -> 10 degrees of freedom: passes at dof threshold 10; n = 10 -> 9: fails
    shadow = magnitude(cells({"eleven": [float(i) for i in range(11)], "ten": [float(i) for i in range(10)]}),
                       Statistic.STD)
    result = CHECKS["degrees_of_freedom"](shadow, ACRO)
    assert result.cells == (("ten",),)
    assert check_table(shadow, ACRO).verdict is Verdict.FAIL


def test_class_disclosure() -> None:
    # everybody in area "a" is unemployed; area "b" is mixed
    frame = pl.DataFrame({"g": ["a"] * 12 + ["b"] * 24, "c": ["unemployed"] * 12 + ["employed", "unemployed"] * 12})
    shadow = frequency(frame, columns=("c",))
    result = CHECKS["class_disclosure"](shadow, ACRO.replace(zeros_disclosive=False))
    # row "a" lies in one column; column "employed" lies in one row (every employed person is in "b")
    assert set(result.cells) == {("a", "unemployed"), ("b", "employed")} and result.verdict is Verdict.REVIEW
    assert CHECKS["class_disclosure"](shadow, load_preset("jp-onsite")).verdict is Verdict.FAIL


def test_unset_numbers_make_checks_review_never_pass() -> None:
    shadow = magnitude(cells({"a": [10.0] * 30}))
    report = check_table(shadow, load_preset("sdc-handbook"))
    assert report.verdict is Verdict.REVIEW
    assert report.result("threshold").verdict is Verdict.REVIEW
    assert "sets no threshold" in report.result("threshold").message


def test_safe_table_passes_and_report_round_trips() -> None:
    shadow = magnitude(cells({"a": [10.0 + i for i in range(20)], "b": [5.0 + i for i in range(15)]}))
    report = check_table(shadow, ACRO)
    assert report.verdict is Verdict.PASS
    assert [r.rule for r in report.results] == ["threshold", "zeros", "nk_dominance", "p_percent", "negatives",
                                                "missing"]
    assert CheckReport.from_dict(report.to_dict()) == report
    assert report.reasons() == [] and report.cell_verdicts() == {}


@pytest.mark.parametrize("statistic", [s for s in Statistic if s is not Statistic.COUNT])
def test_every_statistic_has_checks(statistic: Statistic) -> None:
    report = check_table(magnitude(cells({"a": [1.0] * 3}), statistic), ACRO)
    assert report.verdict is Verdict.FAIL  # 3 records: too few for any statistic


def test_rules_type() -> None:
    assert Rules().threshold is None  # nothing is assumed


contributions = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.lists(st.one_of(st.integers(-3, 50).map(float), st.sampled_from([0.0, 1000.0])), min_size=1, max_size=25),
    min_size=1,
)


@settings(max_examples=examples(80), deadline=None)
@given(data=contributions)
def test_dominance_and_threshold_match_a_direct_computation(data: dict[str, list[float]]) -> None:
    """Cell by cell against the formulas applied by hand, margins included."""
    shadow = magnitude(cells(data))
    groups = dict(data) | {MARGIN: [v for values in data.values() for v in values]}
    expected: dict[str, set] = {"threshold": set(), "nk_dominance": set(), "p_percent": set(), "negatives": set()}
    for label, values in groups.items():
        top = sorted(values, reverse=True)
        total = sum(values)
        if len(values) < ACRO.threshold:
            expected["threshold"].add((label,))
        if any(v < 0 for v in values):
            expected["negatives"].add((label,))
        elif total > 0:
            if sum(top[:2]) / total >= ACRO.nk_k:
                expected["nk_dominance"].add((label,))
            second = top[1] if len(top) > 1 else 0.0
            if (total - top[0] - second) / top[0] < ACRO.p_ratio:
                expected["p_percent"].add((label,))
    for rule, cells_expected in expected.items():
        assert set(CHECKS[rule](shadow, ACRO).cells) == cells_expected, rule
