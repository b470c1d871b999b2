"""Histogram checks on the bin table; numpy's bin counts as the independent reference."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest

from disclosure_review.sdc import (
    InvalidSpec, TableKind, TableSpec, Verdict, check_table, compute_shadow, data_range, equal_width_edges,
    histogram_table_spec, load_preset,
)

ACRO = load_preset("acro-default")


@pytest.fixture
def con():
    rng = np.random.default_rng(3)
    connection = duckdb.connect()
    values = np.concatenate([rng.normal(50, 5, 500), [120.0]])  # one outlier far in the right tail
    connection.execute("CREATE TABLE data AS SELECT unnest(?::DOUBLE[]) AS income", [values.tolist()])
    yield connection, values
    connection.close()


@pytest.mark.parametrize("bins", [3, 15, 40])
def test_bin_counts_match_numpy(con, bins: int) -> None:
    connection, values = con
    edges = equal_width_edges(0.0, 150.0, bins)
    shadow = compute_shadow(connection, histogram_table_spec("SELECT * FROM data", "income", edges))
    cells = shadow.frame.filter(shadow.frame["sdc_grouping"] == 0)
    observed = dict(zip(cells["income"].to_list(), cells["sdc_records"].to_list()))
    counts, numpy_edges = np.histogram(values, bins=bins, range=(0.0, 150.0))
    assert np.allclose(numpy_edges, edges)
    assert observed == {e: int(c) for e, c in zip(edges[:-1], counts) if c}


def test_last_bin_is_closed_and_outside_values_are_left_out() -> None:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE data AS SELECT unnest([0.0, 5.0, 10.0, 10.5, -1.0]) AS x")
    shadow = compute_shadow(connection, histogram_table_spec("SELECT * FROM data", "x", [0, 5, 10]))
    assert shadow.released_view().rows() == [("0.0", 1), ("5.0", 2), ("Total", 3)]


def test_empty_tail_bins_pass_and_edges_from_data_review(con) -> None:
    connection, _ = con
    query = "SELECT * FROM data WHERE income < 100"
    round_edges = equal_width_edges(0.0, 100.0, 10)  # 0-30 and 70-100 are empty tails
    report = check_table(compute_shadow(connection, histogram_table_spec(query, "income", round_edges)), ACRO)
    assert [r.rule for r in report.results] == ["threshold", "empty_bins", "extreme_edges"]
    assert report.result("empty_bins").verdict is Verdict.PASS
    assert report.result("empty_bins").parameters["empty_tail_bins"] >= 6
    assert report.result("extreme_edges").verdict is Verdict.PASS
    # numpy-style default edges: min and max of the data are the outer edges
    low, high = data_range(connection, query, "income")
    data_edges = equal_width_edges(low, high, 10)
    report = check_table(compute_shadow(connection, histogram_table_spec(query, "income", data_edges)), ACRO)
    assert report.result("extreme_edges").verdict is Verdict.REVIEW
    assert "smallest value" in report.result("extreme_edges").message


def test_small_bins_fail_and_interior_gaps_follow_zeros_rule(con) -> None:
    connection, _ = con
    shadow = compute_shadow(connection, histogram_table_spec("SELECT * FROM data", "income", equal_width_edges(0, 150, 15)))
    report = check_table(shadow, ACRO)
    assert ("120.0",) in report.result("threshold").cells  # the outlier's bin holds 1 value
    assert report.result("empty_bins").verdict is Verdict.FAIL  # 80-120 is empty between non-empty bins
    assert check_table(shadow, ACRO.replace(zeros_disclosive=False)).result("empty_bins").verdict is Verdict.PASS
    assert report.verdict is Verdict.FAIL


def test_spec_round_trip_keeps_the_edges() -> None:
    spec = histogram_table_spec("SELECT 1.0 AS x", "x", [0, 1, 2])
    assert TableSpec.from_dict(spec.to_dict()) == spec and spec.edges == (0.0, 1.0, 2.0)


@pytest.mark.parametrize(("edges", "message"), [
    ([1.0], "2 to"), ([2.0, 1.0], "increasing"), ([0.0, float("inf")], "finite"), ("01", "numbers"),
    ([0, True], "numbers"),
])
def test_bad_edges_are_refused(edges: list, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        histogram_table_spec("SELECT 1 AS x", "x", edges)


def test_histogram_spec_shape_is_enforced() -> None:
    with pytest.raises(InvalidSpec, match="one row variable"):
        TableSpec(TableKind.FREQUENCY, "SELECT 1 AS x, 2 AS y", rows=("x",), columns=("y",), edges=(0.0, 1.0))
