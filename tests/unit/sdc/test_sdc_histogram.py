"""Histogram checks on the bin table; numpy's bin counts as the independent reference."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest

from disclosure_review.sdc import InvalidSpec, Verdict, compute_shadow, load_preset
from disclosure_review.sdc.histogram import check_histogram, data_range, equal_width_edges, histogram_spec

ACRO = load_preset("acro-default")


@pytest.fixture
def con():
    rng = np.random.default_rng(3)
    connection = duckdb.connect()
    values = np.concatenate([rng.normal(50, 5, 500), [120.0]])  # one outlier far in the right tail
    connection.execute("CREATE TABLE data AS SELECT unnest(?::DOUBLE[]) AS income", [values.tolist()])
    yield connection, values
    connection.close()


def test_bin_counts_match_numpy(con) -> None:
    connection, values = con
    edges = equal_width_edges(0.0, 150.0, 15)
    shadow = compute_shadow(connection, histogram_spec("SELECT * FROM data", "income", edges))
    ours = dict(shadow.released_view().filter(shadow.frame["sdc_grouping"] == 0).iter_rows())
    counts, numpy_edges = np.histogram(values, bins=15, range=(0.0, 150.0))
    assert np.allclose(numpy_edges, edges)
    observed = {float(k): v for k, v in ours.items()}
    assert observed == {e: float(c) for e, c in zip(edges[:-1], counts) if c}


def test_empty_tail_bins_pass_and_edges_from_data_review(con) -> None:
    connection, values = con
    query = "SELECT * FROM data WHERE income < 100"
    low, high = data_range(connection, query, "income")
    round_edges = equal_width_edges(0.0, 100.0, 10)  # 0-30 and 70-100 are empty tails
    shadow = compute_shadow(connection, histogram_spec(query, "income", round_edges))
    report = check_histogram(shadow, round_edges, ACRO, data_min=low, data_max=high)
    assert report.result("empty_bins").verdict is Verdict.PASS
    assert report.result("extreme_edges").verdict is Verdict.PASS
    # numpy-style default edges: min and max of the data are the outer edges
    data_edges = equal_width_edges(low, high, 10)
    shadow = compute_shadow(connection, histogram_spec(query, "income", data_edges))
    report = check_histogram(shadow, data_edges, ACRO, data_min=low, data_max=high)
    assert report.result("extreme_edges").verdict is Verdict.REVIEW
    assert "smallest value" in report.result("extreme_edges").message


def test_small_bins_fail_and_interior_gaps_follow_zeros_rule(con) -> None:
    connection, _ = con
    edges = equal_width_edges(0.0, 150.0, 15)
    shadow = compute_shadow(connection, histogram_spec("SELECT * FROM data", "income", edges))
    report = check_histogram(shadow, edges, ACRO, data_min=0.0, data_max=999.0)
    assert ("120.0",) in report.result("threshold").cells  # the outlier's bin holds 1 value
    assert report.result("empty_bins").verdict is Verdict.FAIL  # 80-120 is empty between non-empty bins
    lenient = ACRO.replace(zeros_disclosive=False)
    assert check_histogram(shadow, edges, lenient, data_min=0.0, data_max=999.0).result("empty_bins").verdict \
        is Verdict.PASS
    assert report.verdict is Verdict.FAIL


def test_unknown_range_reviews() -> None:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE data AS SELECT range::DOUBLE AS x FROM range(100)")
    edges = equal_width_edges(0.0, 100.0, 4)
    shadow = compute_shadow(connection, histogram_spec("SELECT * FROM data", "x", edges))
    assert check_histogram(shadow, edges, ACRO).verdict is Verdict.REVIEW


@pytest.mark.parametrize("edges", [[1.0], [2.0, 1.0], [0.0, float("inf")]])
def test_bad_edges_are_refused(edges: list[float]) -> None:
    with pytest.raises(InvalidSpec):
        histogram_spec("SELECT 1 AS x", "x", edges)
