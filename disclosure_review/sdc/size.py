"""How big an output will be, counted before it is computed: output limits are checked on this count.

A table has one cell for every combination of the observed levels of its
dimensions, plus its margins (`shadow.grouping_sets`), whether records fall in
it or not; so its size follows from each dimension's number of levels, which
one scan of the query counts without building any cell. An extract has one
row per record of its query.
"""
from __future__ import annotations

import math

import duckdb

from .microdata import ExtractSpec
from .shadow import ShadowError, grouping_sets
from .spec import TableSpec, quote_identifier


def cells_of(levels: list[int], spec: TableSpec) -> int:
    """Cells of a table whose dimensions have `levels` observed levels each: cells and margins."""
    return sum(math.prod(levels[i] for i in s) for s in grouping_sets(spec))


def table_cells(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    """The number of cells (margins included) `spec` will have on `con`'s data; one scan, no cell built.

    A histogram's binned variable counts as its number of bins (an upper bound). A missing
    value is a level of its own, as in the table.
    """
    counts = []
    for i, name in enumerate(spec.dimensions):
        if spec.is_histogram and i == 0:
            continue
        column = quote_identifier(name)
        counts.append(f"count(DISTINCT {column}) + (count(*) > count({column}))::BIGINT")
    try:
        found = con.sql(f"SELECT {', '.join(counts)} FROM (\n{spec.query}\n) AS q").fetchall()[0] if counts else ()
    except duckdb.Error as exc:  # said as the table's own computation says it
        raise ShadowError(f"table {spec.name!r}: the query could not be computed: {exc}") from None
    levels = [*([len(spec.edges) - 1] if spec.is_histogram else []), *(int(n) for n in found or ())]
    return cells_of(levels, spec)


def extract_cells(con: duckdb.DuckDBPyConnection, spec: ExtractSpec) -> int:
    """Records times columns of an extract's query on `con`'s data."""
    relation = con.sql(spec.query)
    return int(relation.aggregate("count(*)").fetchall()[0][0]) * len(relation.columns)
