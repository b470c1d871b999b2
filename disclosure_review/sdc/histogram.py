"""Histograms, checked through their bin table.

A histogram is a frequency table whose one row variable is binned by `edges`
(`TableSpec.edges`; bins [e_i, e_i+1), the last one closed, like numpy). It is
declarative like any table: the review service recomputes the bins and the
shadow statistics (which keep the variable's min and max per bin) and runs:

- threshold on every non-empty bin;
- empty_bins: empty bins in the tails pass (ACRO issue #308: they made every
  default histogram fail); an empty bin between non-empty ones follows the zeros rule;
- extreme_edges: an outer edge equal to the smallest or largest value reveals it
  (ACRO issue #192: numpy's default edges are the data's min and max) -> review.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import duckdb
import polars as pl

from .checks import CheckResult, register_check
from .enums import TableKind, Verdict
from .messages import msg
from .rules import Rules
from .shadow import GROUPING, MAX, MIN, RECORDS, ShadowTable
from .spec import MAX_BINS, InvalidSpec, TableSpec, check_identifier, quote_identifier


def equal_width_edges(low: float, high: float, bins: int) -> tuple[float, ...]:
    """`bins` equal bins from `low` to `high` (numpy's default when low and high are the data's range)."""
    if isinstance(bins, bool) or not (isinstance(bins, int) and 1 <= bins <= MAX_BINS):
        raise InvalidSpec(f"bins must be a whole number from 1 to {MAX_BINS}")
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise InvalidSpec(f"cannot make bins from {low} to {high}")
    if high == low:
        low, high = low - 0.5, high + 0.5  # numpy's convention for a single value
    width = (high - low) / bins
    return tuple([low + i * width for i in range(bins)] + [high])


def histogram_table_spec(query: str, value: str, edges: Sequence[float], *, name: str = "histogram") -> TableSpec:
    """The histogram of `value` over the query's rows, as a declarative table (`TableSpec.edges`)."""
    return TableSpec(TableKind.FREQUENCY, query, rows=(value,), edges=tuple(edges), name=name)


def data_range(con: duckdb.DuckDBPyConnection, query: str, value: str) -> tuple[float | None, float | None]:
    """Smallest and largest non-missing value of `value` in the query's result (for default edges)."""
    v = quote_identifier(check_identifier(value, "value"))
    sql = f"SELECT min({v})::DOUBLE, max({v})::DOUBLE FROM (\n{query.strip().rstrip(';')}\n) AS q"
    low, high = con.sql(sql).fetchall()[0]
    return low, high


def _bins(shadow: ShadowTable, edges: tuple[float, ...]) -> list[int]:
    """Records per bin, empty bins included (the table's cells are its non-empty bins)."""
    cells = shadow.frame.filter(pl.col(GROUPING) == 0)
    counts = dict(zip(cells.get_column(shadow.dimensions[0]).to_list(), cells.get_column(RECORDS).to_list()))
    return [counts.get(e, 0) for e in edges[:-1]]


def _label(edges: tuple[float, ...], i: int) -> str:
    return f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}"


def _empty_bins(edges: tuple[float, ...], counts: list[int], rules: Rules) -> CheckResult:
    non_empty = [i for i, c in enumerate(counts) if c > 0]
    if not non_empty:
        return CheckResult("empty_bins", Verdict.REVIEW, "empty_bins_no_values")
    interior = [i for i in range(non_empty[0], non_empty[-1]) if counts[i] == 0]
    tails = len(counts) - (non_empty[-1] - non_empty[0] + 1)
    parameters = {"zeros_disclosive": rules.zeros_disclosive, "empty_tail_bins": tails,
                  "empty_interior_bins": len(interior)}
    if not interior or not rules.zeros_disclosive:
        return CheckResult("empty_bins", Verdict.PASS, "empty_bins_pass", {"tails": tails, "interior": len(interior)},
                           parameters)
    return CheckResult("empty_bins", Verdict.FAIL, "empty_bins_fail",
                       {"interior": len(interior), "bins": [_label(edges, i) for i in interior]}, parameters,
                       tuple((str(edges[i]),) for i in interior))


def _extremes(edges: tuple[float, ...], low: float | None, high: float | None) -> CheckResult:
    parameters = {"lowest_edge": edges[0], "highest_edge": edges[-1]}
    if low is None or high is None:
        return CheckResult("extreme_edges", Verdict.REVIEW, "extreme_edges_unknown", {}, parameters)
    revealed = ([msg("lowest_edge", edge=edges[0])] if low == edges[0] else []) + (
        [msg("highest_edge", edge=edges[-1])] if high == edges[-1] else [])
    if revealed:
        return CheckResult("extreme_edges", Verdict.REVIEW, "extreme_edges_review", {"revealed": revealed}, parameters)
    return CheckResult("extreme_edges", Verdict.PASS, "extreme_edges_pass", {}, parameters)


@register_check("empty_bins")
def check_empty_bins(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Empty tail bins pass; empty bins between non-empty ones fail when zeros are disclosive."""
    edges = shadow.spec.edges or ()
    return _empty_bins(edges, _bins(shadow, edges), rules)


@register_check("extreme_edges")
def check_extreme_edges(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """An outer edge equal to the smallest or largest binned value reveals it: review."""
    total = shadow.frame.filter(pl.col(GROUPING) == pl.col(GROUPING).max())
    return _extremes(shadow.spec.edges or (), total.get_column(MIN).item(), total.get_column(MAX).item())
