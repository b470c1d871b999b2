"""Shadow statistics against an independent pure-Python computation on random data."""
from __future__ import annotations

import itertools
import math

import duckdb
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc import MARGIN_LABEL, ShadowError, Statistic, TableKind, TableSpec, compute_shadow, shadow_from_frame
from disclosure_review.sdc.shadow import (
    MAX, MIN, MISSING, MODE_UNITS, NEGATIVE, RECORDS, SUM, TOP, UNITS, VALUE, VALUES, WEIGHTED, ZERO, ShadowTable,
)

records = st.lists(
    st.fixed_dictionaries({
        "r": st.sampled_from(["a", "b", "c", None]),
        "c": st.sampled_from([1, 2, 3]),
        "v": st.one_of(st.none(), st.integers(-5, 100).map(float)),
        "w": st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.5])),
        "u": st.integers(0, 6),
    }),
    min_size=1, max_size=60,
)


def expected_cells(rows: list[dict], dims: list[str], with_unit: bool, top_n: int) -> dict[tuple, dict]:
    """Every cell and margin: label tuple -> statistics, computed record by record."""
    levels = {d: sorted({r[d] for r in rows}, key=lambda x: (x is None, x)) for d in dims}
    sets = [tuple(dims), (dims[0],), (dims[1],), ()] if len(dims) == 2 else [tuple(dims), ()]
    out: dict[tuple, dict] = {}
    for kept in sets:
        for combo in itertools.product(*(levels[d] for d in kept)):
            fixed = dict(zip(kept, combo))
            members = [r for r in rows if all(r[d] == fixed[d] for d in kept)]
            values = [r["v"] for r in members if r["v"] is not None]
            if with_unit:
                per_unit: dict[int, float | None] = {}
                for r in members:
                    if r["v"] is not None:
                        per_unit[r["u"]] = per_unit.get(r["u"], 0.0) + r["v"]
                contributions = list(per_unit.values())
            else:
                contributions = values
            label = tuple(MARGIN_LABEL if d not in kept else (None if fixed[d] is None else str(fixed[d]))
                          for d in dims)
            weights = [r["w"] for r in members if r["w"] is not None]
            out[label] = {
                RECORDS: len(members),
                VALUES: len(values),
                UNITS: len(contributions),
                SUM: sum(values) if values else None,
                TOP: sorted(contributions, reverse=True)[:top_n],
                MIN: min(values) if values else None,
                MAX: max(values) if values else None,
                MISSING: sum(1 for r in members if r["v"] is None or r["w"] is None),
                NEGATIVE: sum(1 for v in values if v < 0),
                ZERO: sum(1 for v in values if v == 0),
                WEIGHTED: sum(weights) if weights else None,
                "wsum": sum(r["w"] * r["v"] for r in members if r["v"] is not None and r["w"] is not None),
            }
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=records, with_unit=st.booleans(), top_n=st.integers(1, 3))
def test_magnitude_shadow_matches_record_by_record_computation(rows: list[dict], with_unit: bool, top_n: int) -> None:
    frame = pl.DataFrame(rows, schema={"r": pl.String, "c": pl.Int64, "v": pl.Float64, "w": pl.Float64, "u": pl.Int64})
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("r",), columns=("c",), value="v",
                     statistic=Statistic.SUM, weight="w", unit="u" if with_unit else None)
    shadow = shadow_from_frame(frame, spec, top_n=top_n)
    expected = expected_cells(rows, ["r", "c"], with_unit, top_n)
    got = dict(zip(shadow.labels(), shadow.frame.iter_rows(named=True)))
    assert set(got) == set(expected)
    for label, want in expected.items():
        cell = got[label]
        for column in (RECORDS, VALUES, UNITS, MISSING, NEGATIVE, ZERO):
            assert cell[column] == want[column], (label, column)
        for column in (SUM, MIN, MAX, WEIGHTED):
            assert close(cell[column], want[column]), (label, column, cell[column], want[column])
        assert len(cell[TOP]) == len(want[TOP]) and all(map(close, cell[TOP], want[TOP])), label
        # released statistic: weighted sum of the non-missing values (null for an empty cell)
        assert close(cell[VALUE], want["wsum"] if want[RECORDS] and any(
            r["v"] is not None and r["w"] is not None for r in rows
            if all(label[i] == MARGIN_LABEL or label[i] == (None if r[d] is None else str(r[d]))
                   for i, d in enumerate(["r", "c"]))) else None), label


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=records, with_unit=st.booleans())
def test_mode_units_count_the_holders_of_the_released_mode(rows: list[dict], with_unit: bool) -> None:
    frame = pl.DataFrame(rows, schema={"r": pl.String, "c": pl.Int64, "v": pl.Float64, "w": pl.Float64, "u": pl.Int64})
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("r",), columns=("c",), value="v",
                     statistic=Statistic.MODE, unit="u" if with_unit else None)
    shadow = shadow_from_frame(frame, spec)
    for label, cell in zip(shadow.labels(), shadow.frame.iter_rows(named=True)):
        members = [r for r in rows if r["v"] is not None and all(
            label[i] == MARGIN_LABEL or label[i] == (None if r[d] is None else str(r[d])) for i, d in enumerate("rc"))]
        if not members:
            assert cell[MODE_UNITS] == 0, label
            continue
        counts = {v: sum(1 for r in members if r["v"] == v) for v in {r["v"] for r in members}}
        assert counts[cell[VALUE]] == max(counts.values()), label  # the released value is a mode
        holders = [r for r in members if r["v"] == cell[VALUE]]
        assert cell[MODE_UNITS] == (len({r["u"] for r in holders}) if with_unit else len(holders)), label


@settings(max_examples=examples(40), deadline=None)
@given(rows=records)
def test_frequency_shadow_counts_every_level_combination(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    spec = TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("r",), columns=("c",))
    shadow = shadow_from_frame(frame, spec)
    expected = expected_cells(rows, ["r", "c"], False, 2)
    view = shadow.released_view()
    got = {tuple(row[:2]): row[2] for row in view.iter_rows()}
    assert got == {label: float(want[RECORDS]) for label, want in expected.items()}
    # empty combinations are cells too
    levels_r = {r["r"] for r in rows}
    levels_c = {r["c"] for r in rows}
    assert shadow.frame.filter(pl.col("sdc_grouping") == 0).height == len(levels_r) * len(levels_c)


def test_statistics_per_cell_and_margins() -> None:
    frame = pl.DataFrame({"g": ["x"] * 5 + ["y"] * 4, "v": [1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 5.0, 7.0, 9.0]})
    results = {}
    for statistic in Statistic:
        if statistic is Statistic.COUNT:
            continue
        spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("g",), value="v", statistic=statistic)
        view = shadow_from_frame(frame, spec).released_view()
        results[statistic] = dict(view.iter_rows())
    assert results[Statistic.SUM] == {"x": 110.0, "y": 26.0, MARGIN_LABEL: 136.0}
    assert results[Statistic.MEAN]["x"] == 22.0
    assert results[Statistic.MEDIAN] == {"x": 3.0, "y": 6.0, MARGIN_LABEL: 5.0}
    assert results[Statistic.MIN]["y"] == 5.0 and results[Statistic.MAX][MARGIN_LABEL] == 100.0
    assert results[Statistic.MODE]["y"] == 5.0
    pandas_std = pd.Series([1.0, 2.0, 3.0, 4.0, 100.0]).std()
    assert math.isclose(results[Statistic.STD]["x"], pandas_std)
    assert math.isclose(results[Statistic.VAR]["x"], pandas_std**2)


def test_four_way_table_has_cells_row_and_column_margins_and_total() -> None:
    frame = pl.DataFrame({"a": [1, 1, 2], "b": ["p", "q", "p"], "c": [True, False, True], "d": [0, 0, 1]})
    spec = TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("a", "b"), columns=("c", "d"))
    shadow = shadow_from_frame(frame, spec)
    groups = shadow.frame.get_column("sdc_grouping").value_counts().sort("sdc_grouping")
    # 2*2*2*2 cells, 4 row-variable combinations (columns summed), 4 column combinations, 1 total
    assert dict(groups.iter_rows()) == {0: 16, 3: 4, 12: 4, 15: 1}
    total = shadow.released_view().filter(pl.col("a") == MARGIN_LABEL)
    assert total.filter(pl.col("c") == MARGIN_LABEL).get_column("count").to_list() == [3.0]


def test_shadow_to_dict_round_trip() -> None:
    frame = pl.DataFrame({"g": ["x", "y", None], "d": ["2024-01-01"] * 3, "v": [1.0, None, -2.0]})
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT g, CAST(d AS DATE) AS d, v FROM data", rows=("g",),
                     columns=("d",), value="v", statistic=Statistic.MEAN)
    shadow = shadow_from_frame(frame, spec)
    again = ShadowTable.from_dict(shadow.to_dict())
    assert again.labels() == shadow.labels()
    assert again.frame.drop("d").equals(shadow.frame.drop("d"))


def test_query_errors_name_the_table() -> None:
    spec = TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("nope",), name="t1")
    with pytest.raises(ShadowError, match="t1.*nope"):
        shadow_from_frame(pl.DataFrame({"a": [1]}), spec)


def test_identifiers_are_quoted() -> None:
    con = duckdb.connect()
    con.execute('CREATE TABLE data AS SELECT 1 AS "select", 2 AS "from"')
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("select",), value="from", statistic=Statistic.SUM)
    assert compute_shadow(con, spec).released_view().row(0) == ("1", 2.0)


def test_trailing_line_comment_in_a_query_is_harmless() -> None:
    spec = TableSpec(TableKind.FREQUENCY, "SELECT * FROM data -- my note", rows=("a",))
    assert shadow_from_frame(pl.DataFrame({"a": [1, 1, 2]}), spec).released_view().rows() == [
        ("1", 2), ("2", 1), (MARGIN_LABEL, 3)]


def test_top_n_follows_the_rules() -> None:
    from disclosure_review.sdc import check_table, load_preset

    rules = load_preset("acro-default", nk_n=3)
    frame = pl.DataFrame({"a": ["x"] * 12, "v": [30.0, 30.0, 30.0] + [1.0] * 9})
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("a",), value="v", statistic=Statistic.SUM)
    assert rules.top_n == 3
    assert check_table(shadow_from_frame(frame, spec), rules).result("nk_dominance").verdict.value == "review"
    report = check_table(shadow_from_frame(frame, spec, top_n=rules.top_n), rules)
    assert report.result("nk_dominance").cells == (("x",), (MARGIN_LABEL,))  # 90 of 99 >= 0.9


@pytest.mark.parametrize("statistic", [Statistic.P10, Statistic.P25, Statistic.MEDIAN, Statistic.P75, Statistic.P90])
def test_percentiles_match_pandas(statistic: Statistic) -> None:
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("g",), value="v", statistic=statistic)
    view = shadow_from_frame(pl.DataFrame({"g": ["x"] * len(values), "v": values}), spec).released_view()
    assert math.isclose(view.row(0)[1], pd.Series(values).quantile(statistic.quantile))
