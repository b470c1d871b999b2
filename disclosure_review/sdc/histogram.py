"""Histograms, checked through their bin table.

A histogram is a frequency table over bins: `histogram_spec` writes it as a
declarative `TableSpec` (dimension `bin_start`, the bin's lower edge), so the
review service can recompute the counts like any table. `check_histogram` adds
what is particular to histograms:

- threshold on every non-empty bin;
- empty bins in the tails pass (ACRO issue #308: they made every default histogram
  fail); an empty bin between non-empty ones follows the zeros rule;
- an outer edge equal to the smallest or largest value reveals it (ACRO issue
  #192: numpy's default edges are the data's min and max) -> review.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import duckdb
import polars as pl

from .checks import CHECKS, CheckReport, CheckResult
from .enums import TableKind, Verdict
from .rules import Rules
from .shadow import GROUPING, RECORDS, ShadowTable
from .spec import InvalidSpec, TableSpec, check_identifier, quote_identifier

BIN = "bin_start"
MAX_BINS = 1000


def equal_width_edges(low: float, high: float, bins: int) -> tuple[float, ...]:
    if not (isinstance(bins, int) and 1 <= bins <= MAX_BINS):
        raise InvalidSpec(f"bins must be a whole number from 1 to {MAX_BINS}")
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise InvalidSpec(f"cannot make bins from {low} to {high}")
    if high == low:
        low, high = low - 0.5, high + 0.5  # numpy's convention for a single value
    width = (high - low) / bins
    return tuple([low + i * width for i in range(bins)] + [high])


def check_edges(edges: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(e) for e in edges)
    if len(values) < 2 or len(values) > MAX_BINS + 1:
        raise InvalidSpec(f"give 2 to {MAX_BINS + 1} bin edges")
    if not all(math.isfinite(e) for e in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise InvalidSpec("bin edges must be finite and strictly increasing")
    return values


def histogram_spec(query: str, value: str, edges: Sequence[float], *, name: str = "histogram") -> TableSpec:
    """The bin table as a frequency table: bins [e_i, e_i+1), the last one closed, like numpy."""
    edges = check_edges(edges)
    v = quote_identifier(check_identifier(value, "value"))
    last = len(edges) - 2
    branches = " ".join(
        f"WHEN {v} >= {edges[i]!r} AND {v} {'<=' if i == last else '<'} {edges[i + 1]!r} THEN {edges[i]!r}"
        for i in range(len(edges) - 1)
    )
    bin_query = (f"SELECT CAST(CASE {branches} END AS DOUBLE) AS {BIN} FROM (\n{query.strip().rstrip(';')}\n) AS q "
                 f"WHERE {v} BETWEEN {edges[0]!r} AND {edges[-1]!r}")
    return TableSpec(TableKind.FREQUENCY, bin_query, rows=(BIN,), name=name)


def data_range(con: duckdb.DuckDBPyConnection, query: str, value: str) -> tuple[float | None, float | None]:
    """Smallest and largest non-missing value of `value` in the query's result."""
    v = quote_identifier(check_identifier(value, "value"))
    sql = f"SELECT min({v})::DOUBLE, max({v})::DOUBLE FROM (\n{query.strip().rstrip(';')}\n) AS q"
    low, high = con.sql(sql).fetchall()[0]
    return low, high


def check_histogram(shadow: ShadowTable, edges: Sequence[float], rules: Rules, *,
                    data_min: float | None = None, data_max: float | None = None) -> CheckReport:
    """Threshold per bin, empty bins (tails pass), and edges that reveal extreme values."""
    edges = check_edges(edges)
    bins = shadow.frame.filter(pl.col(GROUPING) == 0)
    counts = dict(zip(bins.get_column(BIN).to_list(), bins.get_column(RECORDS).to_list()))
    all_counts = [counts.get(e, 0) for e in edges[:-1]]
    non_empty = [i for i, c in enumerate(all_counts) if c > 0]
    results = [CHECKS["threshold"](shadow, rules), _empty_bins(all_counts, non_empty, edges, rules),
               _extremes(edges, non_empty, data_min, data_max)]
    return CheckReport.from_results(shadow.spec.name, rules.name, results)


def _label(edges: tuple[float, ...], i: int) -> str:
    return f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}"


def _empty_bins(counts: list[int], non_empty: list[int], edges: tuple[float, ...], rules: Rules) -> CheckResult:
    if not non_empty:
        return CheckResult("empty_bins", Verdict.REVIEW, "no value falls in any bin", {})
    interior = [i for i in range(non_empty[0], non_empty[-1]) if counts[i] == 0]
    tails = len(counts) - (non_empty[-1] - non_empty[0] + 1)
    parameters = {"zeros_disclosive": rules.zeros_disclosive, "empty_tail_bins": tails,
                  "empty_interior_bins": len(interior)}
    if not interior or not rules.zeros_disclosive:
        return CheckResult("empty_bins", Verdict.PASS, f"{tails} empty tail bins (allowed); "
                           f"{len(interior)} empty bins between non-empty ones", parameters)
    return CheckResult("empty_bins", Verdict.FAIL,
                       f"{len(interior)} empty bins between non-empty ones (zeros are disclosive): "
                       + ", ".join(_label(edges, i) for i in interior), parameters,
                       tuple((repr(edges[i]),) for i in interior))


def _extremes(edges: tuple[float, ...], non_empty: list[int], low: float | None, high: float | None) -> CheckResult:
    parameters = {"lowest_edge": edges[0], "highest_edge": edges[-1]}
    if low is None or high is None:
        return CheckResult("extreme_edges", Verdict.REVIEW,
                           "the data's range is unknown: a reviewer must check the outer bin edges", parameters)
    revealed = [f"lowest edge {edges[0]:g} is the smallest value" for _ in [0] if edges[0] == low]
    revealed += [f"highest edge {edges[-1]:g} is the largest value" for _ in [0] if edges[-1] == high]
    if revealed:
        return CheckResult("extreme_edges", Verdict.REVIEW, "; ".join(revealed) +
                           " (set edges that do not come from the data, e.g. round numbers)", parameters)
    return CheckResult("extreme_edges", Verdict.PASS, "outer edges do not coincide with the smallest or largest value",
                       parameters)
