"""Shadow statistics: per cell, what the checks need and the release never shows.

One DuckDB statement computes, for every cell and every margin (GROUPING SETS),
the number of records, of distinct units, the weighted count, the sum, the top-n
contributions (summed per unit first when the table declares a unit), min, max,
and the counts of missing, negative and zero values, plus the released statistic
(and, for a mode, how many contributors hold the released value).

Cells: every combination of the levels observed for each variable is a cell, the
empty ones included (count 0), like ACRO (pandas crosstab with dropna=False).
A missing level (NULL) of a row or column variable is a level of its own, shown
empty. A margin is known by how it was computed (`GROUPING`: the bits of the
dimensions it sums over), never by its label: the label only shows it to a
reader. It is `MARGIN_LABEL`, or, when the data hold a level of that name,
the first of "[Total]", "[[Total]]", … that no level of the table holds, so
that no two cells of a table have the same key.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import polars as pl

from .enums import Statistic, TableKind
from .spec import TableSpec, quote_identifier

log = logging.getLogger(__name__)

SHADOW_VERSION = 2  # 2: sdc_mode_units
MARGIN_LABEL = "Total"
# Shadow columns, after the row and column variables.
GROUPING = "sdc_grouping"  # bit i set: dimension i is summed over (a margin)
RECORDS = "sdc_records"  # records in the cell
VALUES = "sdc_values"  # records with a non-missing value (frequency: = records)
UNITS = "sdc_units"  # contributors: distinct units, or records when no unit is declared;
# in magnitude tables only those with a non-missing value
WEIGHTED = "sdc_weighted"  # sum of weights (no weight: null)
SUM = "sdc_sum"  # unweighted sum of the value
TOP = "sdc_top"  # largest contributions, descending (per unit when declared)
MIN = "sdc_min"
MAX = "sdc_max"
MISSING = "sdc_missing"  # records whose value or weight is missing
NEGATIVE = "sdc_negative"
ZERO = "sdc_zero"
VALUE = "sdc_value"  # the released statistic
MODE_UNITS = "sdc_mode_units"  # mode tables: contributors (units, else records) holding the released mode; else null
SHADOW_COLUMNS = (GROUPING, RECORDS, VALUES, UNITS, WEIGHTED, SUM, TOP, MIN, MAX, MISSING, NEGATIVE, ZERO, VALUE,
                  MODE_UNITS)


class ShadowError(RuntimeError):
    """The table's query could not be computed (bad SQL, unknown variable, …)."""


@dataclasses.dataclass(frozen=True)
class ShadowTable:
    """A table's cells with their shadow statistics (polars frame) and the spec that made it."""

    spec: TableSpec
    frame: pl.DataFrame
    top_n: int = 2

    @property
    def dimensions(self) -> tuple[str, ...]:
        return self.spec.dimensions

    @property
    def value_column(self) -> str:
        """Name of the statistic column in the released view."""
        name = self.spec.statistic.value
        return name if name not in self.dimensions else f"{name}_of_{self.spec.value or 'records'}"

    def is_margin(self) -> pl.Expr:
        return pl.col(GROUPING) != 0

    @functools.cached_property
    def margin_label(self) -> str:
        """The label the margins show: MARGIN_LABEL unless a level of the table is that text (see the module)."""
        levels = self.frame.filter(pl.col(GROUPING) == 0).select(pl.col(self.dimensions).cast(pl.String))
        return margin_label_for(v for column in levels.iter_columns() for v in column.unique())

    def label_exprs(self) -> list[pl.Expr]:
        """Each dimension as text: its level, `margin_label` in margins, null for a missing level."""
        k = len(self.dimensions)
        return [
            pl.when((pl.col(GROUPING) & (1 << (k - 1 - i))) != 0)
            .then(pl.lit(self.margin_label))
            .otherwise(pl.col(dim).cast(pl.String))
            .alias(dim)
            for i, dim in enumerate(self.dimensions)
        ]

    def released_view(self) -> pl.DataFrame:
        """The table as it would be released: dimension labels and the statistic, nothing else."""
        value = pl.col(VALUE)
        if self.spec.statistic is Statistic.COUNT and self.spec.weight is None:
            value = value.cast(pl.Int64)  # unweighted counts are whole numbers
        return self.frame.select(*self.label_exprs(), value.alias(self.value_column))

    def labels(self) -> list[tuple[str | None, ...]]:
        """Cell keys (released labels) in frame order; checks list failing cells by these."""
        return [tuple(row) for row in self.frame.select(self.label_exprs()).iter_rows()]

    def with_frame(self, frame: pl.DataFrame) -> ShadowTable:
        return dataclasses.replace(self, frame=frame)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the kernel's claimed shadow; the service stores it for comparison only)."""
        return {
            "version": SHADOW_VERSION,
            "spec": self.spec.to_dict(),
            "top_n": self.top_n,
            "columns": self.frame.columns,
            "rows": [[_jsonable(v) for v in row] for row in self.frame.iter_rows()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShadowTable:
        if data.get("version") != SHADOW_VERSION:
            raise ValueError(f"shadow table version {data.get('version')!r} is not supported")
        spec = TableSpec.from_dict(data["spec"])
        expected = [*spec.dimensions, *SHADOW_COLUMNS]
        if list(data["columns"]) != expected:
            raise ValueError(f"shadow table columns {data['columns']!r} differ from {expected!r}")
        schema = {dim: None for dim in spec.dimensions} | _SHADOW_SCHEMA
        frame = pl.DataFrame(data["rows"], schema=list(schema.items()), orient="row", strict=False)
        return cls(spec=spec, frame=frame, top_n=int(data["top_n"]))


_SHADOW_SCHEMA: dict[str, pl.DataType | None] = {
    GROUPING: pl.Int64, RECORDS: pl.Int64, VALUES: pl.Int64, UNITS: pl.Int64, WEIGHTED: pl.Float64,
    SUM: pl.Float64, TOP: pl.List(pl.Float64), MIN: pl.Float64, MAX: pl.Float64, MISSING: pl.Int64,
    NEGATIVE: pl.Int64, ZERO: pl.Int64, VALUE: pl.Float64, MODE_UNITS: pl.Int64,
}


def margin_label_for(levels: Iterable[str | None]) -> str:
    """MARGIN_LABEL, bracketed as often as needed to differ from every one of `levels`."""
    taken = set(levels)
    label = MARGIN_LABEL
    while label in taken:
        label = f"[{label}]"
    return label


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def grouping_sets(spec: TableSpec) -> list[tuple[int, ...]]:
    """Cells, row margins, column margins, grand total — as dimension positions, without repeats."""
    k = len(spec.dimensions)
    rows = tuple(range(len(spec.rows)))
    columns = tuple(range(len(spec.rows), k))
    sets: list[tuple[int, ...]] = []
    for positions in (tuple(range(k)), rows, columns, ()):
        if positions not in sets:
            sets.append(positions)
    return sets


def _bin_sql(column: str, edges: tuple[float, ...]) -> str:
    """The lower edge of the bin [e_i, e_i+1) holding `column` (the last bin closed, like numpy)."""
    last = len(edges) - 2
    branches = " ".join(
        f"WHEN {column} {'<=' if i == last else '<'} {edges[i + 1]!r} THEN {edges[i]!r}" for i in range(last + 1)
    )
    return f"CAST(CASE {branches} END AS DOUBLE)"


def _statistic_sql(spec: TableSpec) -> str:
    weighted = spec.weight is not None
    match spec.statistic:
        case Statistic.COUNT:
            return "sum(w)" if weighted else "count(*)"
        case Statistic.SUM:
            return "sum(w * v)" if weighted else "sum(v)"
        case Statistic.MEAN:
            return "sum(w * v) / nullif(sum(w) FILTER (WHERE v IS NOT NULL), 0)" if weighted else "avg(v)"
        case Statistic.MEDIAN | Statistic.P10 | Statistic.P25 | Statistic.P75 | Statistic.P90:
            return f"quantile_cont(v, {spec.statistic.quantile})"  # interpolated, like pandas
        case Statistic.MIN:
            return "min(v)"
        case Statistic.MAX:
            return "max(v)"
        case Statistic.MODE:
            return "mode(v)"
        case Statistic.STD:
            return "stddev_samp(v)"
        case Statistic.VAR:
            return "var_samp(v)"
    raise AssertionError(spec.statistic)


# Statistics whose margins can be summed from the cells: the data are aggregated once
# per cell, and the margins from those few rows (instead of once per grouping set).
DECOMPOSABLE = (Statistic.COUNT, Statistic.SUM, Statistic.MEAN)


def _two_stage_rec(spec: TableSpec, dims: str, gsets: str, top_n: int, missing: str, magnitude: bool) -> list[str]:
    weighted = spec.weight is not None
    if magnitude:
        value_stats = ("count(v) AS n_values, sum(v) AS total, min(v) AS vmin, max(v) AS vmax, "
                       "count_if(v < 0) AS n_negative, count_if(v = 0) AS n_zero, "
                       + ("sum(w * v) AS wv, sum(w) FILTER (WHERE v IS NOT NULL) AS wn, " if weighted else "")
                       + ("" if spec.unit else f"max(v, {top_n}) AS top, "))
    else:  # no value: constants, not aggregates of nulls
        value_stats = ("count(*) AS n_values, CAST(NULL AS DOUBLE) AS total, CAST(NULL AS DOUBLE) AS vmin, "
                       "CAST(NULL AS DOUBLE) AS vmax, 0 AS n_negative, 0 AS n_zero, ")
    fine = f"""fine AS (SELECT {dims}, count(*) AS n_records, {value_stats}
        {'sum(w)' if weighted else 'CAST(NULL AS DOUBLE)'} AS weighted, {missing} AS n_missing
        FROM src GROUP BY {dims})"""
    value = {
        Statistic.COUNT: "sum(weighted)" if weighted else "sum(n_records)",
        Statistic.SUM: "sum(wv)" if weighted else "sum(total)",
        Statistic.MEAN: "sum(wv) / nullif(sum(wn), 0)" if weighted else "sum(total) / sum(n_values)",
    }[spec.statistic]
    top = ""
    if not spec.unit:
        merged = f"list_slice(list_reverse_sort(flatten(list(top))), 1, {top_n})" if magnitude else "NULL"
        top = f", {merged} AS top, {'sum(n_values)' if magnitude else 'sum(n_records)'} AS n_units"
    rec = f"""rec AS MATERIALIZED (SELECT {dims}, GROUPING({dims}) AS g, sum(n_records)::BIGINT AS n_records,
        sum(n_values)::BIGINT AS n_values, sum(total) AS total, min(vmin) AS vmin, max(vmax) AS vmax,
        sum(n_negative)::BIGINT AS n_negative, sum(n_zero)::BIGINT AS n_zero,
        {'sum(weighted)' if weighted else 'CAST(NULL AS DOUBLE)'} AS weighted, sum(n_missing)::BIGINT AS n_missing,
        CAST({value} AS DOUBLE) AS value{top}
        FROM fine GROUP BY GROUPING SETS ({gsets}))"""
    return [fine, rec]


def source_columns(spec: TableSpec) -> tuple[list[str], str]:
    """The query's rows as the cells see them: dimensions `d0…`, value `v`, weight `w`; and the histogram's WHERE."""
    d = [f"d{i}" for i in range(len(spec.dimensions))]
    # Histograms keep the binned variable as the value too: its min and max per bin tell
    # whether an outer edge reveals the smallest or largest value.
    magnitude = spec.kind is TableKind.MAGNITUDE or spec.is_histogram
    measured = spec.value if spec.kind is TableKind.MAGNITUDE else spec.rows[0]
    columns = [f"{quote_identifier(name)} AS {alias}" for name, alias in zip(spec.dimensions, d)]
    where = ""
    if spec.is_histogram:
        columns[0] = f"{_bin_sql(quote_identifier(spec.rows[0]), spec.edges)} AS d0"
        where = f" WHERE {quote_identifier(spec.rows[0])} BETWEEN {spec.edges[0]!r} AND {spec.edges[-1]!r}"
    columns.append(f"CAST({quote_identifier(measured)} AS DOUBLE) AS v" if magnitude else "CAST(NULL AS DOUBLE) AS v")
    columns.append(f"CAST({quote_identifier(spec.weight)} AS DOUBLE) AS w" if spec.weight else "CAST(NULL AS DOUBLE) AS w")
    return columns, where


_JOINED = {"r": "rec", "un": "units", "h": "held"}  # join alias -> CTE


def shadow_sql(spec: TableSpec, top_n: int = 2) -> str:
    """The single SQL statement computing a table's cells and shadow statistics."""
    if not isinstance(top_n, int) or top_n < 1:
        raise ValueError("top_n must be a positive integer")
    k = len(spec.dimensions)
    d = [f"d{i}" for i in range(k)]
    dims = ", ".join(d)
    magnitude = spec.kind is TableKind.MAGNITUDE or spec.is_histogram
    mode = spec.statistic is Statistic.MODE
    src_columns, where = source_columns(spec)
    if spec.unit:
        src_columns.append(f"{quote_identifier(spec.unit)} AS u")
    missing_terms = (["v IS NULL"] if magnitude else []) + (["w IS NULL"] if spec.weight else [])
    missing = f"count(*) FILTER (WHERE {' OR '.join(missing_terms)})" if missing_terms else "CAST(0 AS BIGINT)"
    sets = grouping_sets(spec)
    gsets = ", ".join("(" + ", ".join(d[i] for i in s) + ")" for s in sets)
    gsets_unit = ", ".join("(" + ", ".join([*(d[i] for i in s), "u"]) + ")" for s in sets)
    src = (f"src AS {'MATERIALIZED' if spec.unit else 'NOT MATERIALIZED'} "  # read twice only with a unit pass
           f"(SELECT {', '.join(src_columns)} FROM (\n{spec.query}\n) AS q{where})")  # newlines end a -- comment
    if spec.statistic in DECOMPOSABLE:
        ctes = [src, *_two_stage_rec(spec, dims, gsets, top_n, missing, magnitude)]
    else:  # order statistics and spreads (always magnitude tables): one aggregation per grouping set
        record_top = "" if spec.unit else f", max(v, {top_n}) AS top, count(v) AS n_units"
        if mode and not spec.unit:  # the mode is a most frequent value: its count is the largest count
            record_top += ", list_max(map_values(histogram(v))) AS mode_units"
        ctes = [
            src,
            f"""rec AS MATERIALIZED (SELECT {dims}, GROUPING({dims}) AS g, count(*) AS n_records,
            count(v) AS n_values, sum(v) AS total, min(v) AS vmin, max(v) AS vmax,
            count_if(v < 0) AS n_negative, count_if(v = 0) AS n_zero, CAST(NULL AS DOUBLE) AS weighted,
            {missing} AS n_missing, CAST({_statistic_sql(spec)} AS DOUBLE) AS value{record_top}
            FROM src GROUP BY GROUPING SETS ({gsets}))""",
        ]
    if spec.unit:
        ctes.append(
            f"per_unit AS (SELECT {dims}, GROUPING({dims}) AS g, u, sum(v) AS contrib "
            f"FROM src GROUP BY GROUPING SETS ({gsets_unit}))"
        )
        ctes.append(
            f"units AS (SELECT {dims}, g, {'count(contrib)' if magnitude else 'count(*)'} AS n_units, "
            f"max(contrib, {top_n}) AS top "
            f"FROM per_unit GROUP BY {dims}, g)"
        )
        if mode:  # per cell, value -> distinct units holding it (a unit's repeated records count once)
            gsets_unit_value = ", ".join("(" + ", ".join([*(d[i] for i in s), "u", "v"]) + ")" for s in sets)
            ctes.append(
                f"unit_values AS (SELECT {dims}, GROUPING({dims}) AS g, v FROM src WHERE v IS NOT NULL "
                f"GROUP BY GROUPING SETS ({gsets_unit_value}))"
            )
            ctes.append(f"held AS (SELECT {dims}, g, histogram(v) AS by_value FROM unit_values GROUP BY {dims}, g)")
    # Observed levels, from the finest cells (g = 0) rather than a new scan of the data.
    ctes += [f"lv{i} AS (SELECT DISTINCT {d[i]} FROM rec WHERE g = 0)" for i in range(k)]
    cell_selects = []
    for s in sets:
        g = sum(1 << (k - 1 - i) for i in range(k) if i not in s)
        select = ", ".join(f"lv{i}.{d[i]}" if i in s else f"NULL AS {d[i]}" for i in range(k))
        source = " CROSS JOIN ".join(f"lv{i}" for i in s)
        cell_selects.append(f"SELECT {select}, {g} AS g" + (f" FROM {source}" if source else ""))
    ctes.append("cells AS (" + " UNION ALL ".join(cell_selects) + ")")
    stats = "un" if spec.unit else "r"

    def join(alias: str) -> str:
        keys = " AND ".join(f"c.{x} IS NOT DISTINCT FROM {alias}.{x}" for x in d)
        return f"LEFT JOIN {_JOINED[alias]} {alias} ON {keys} AND c.g = {alias}.g"

    if not mode:
        mode_units = "CAST(NULL AS BIGINT)"
    elif spec.unit:
        mode_units = "coalesce(map_extract_value(h.by_value, r.value), 0)"
    else:
        mode_units = "coalesce(r.mode_units, 0)"

    outputs = [f"c.{x} AS {quote_identifier(name)}" for x, name in zip(d, spec.dimensions)] + [
        f"CAST(c.g AS BIGINT) AS {GROUPING}",
        f"coalesce(r.n_records, 0) AS {RECORDS}",
        f"coalesce(r.n_values, 0) AS {VALUES}" if magnitude else f"coalesce(r.n_records, 0) AS {VALUES}",
        f"coalesce({stats}.n_units, 0) AS {UNITS}",
        f"r.weighted AS {WEIGHTED}",
        f"r.total AS {SUM}",
        f"CAST(coalesce({stats}.top, []) AS DOUBLE[]) AS {TOP}",
        f"r.vmin AS {MIN}",
        f"r.vmax AS {MAX}",
        f"coalesce(r.n_missing, 0) AS {MISSING}",
        f"coalesce(r.n_negative, 0) AS {NEGATIVE}",
        f"coalesce(r.n_zero, 0) AS {ZERO}",
        f"{'coalesce(r.value, 0)' if spec.statistic is Statistic.COUNT else 'r.value'} AS {VALUE}",
        f"CAST({mode_units} AS BIGINT) AS {MODE_UNITS}",
    ]
    joins = " ".join(join(a) for a in ("r", *(("un",) if spec.unit else ()), *(("h",) if spec.unit and mode else ())))
    order = ", ".join(["c.g", *(f"c.{x} NULLS LAST" for x in d)])
    return (
        "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(outputs)} FROM cells c {joins} ORDER BY {order}"
    )


def compute_shadow(con: duckdb.DuckDBPyConnection, spec: TableSpec, *, top_n: int = 2) -> ShadowTable:
    """Run the spec's query on `con` and compute every cell's shadow statistics in one statement."""
    sql = shadow_sql(spec, top_n)
    try:
        frame = con.sql(sql).pl()
    except duckdb.Error as exc:
        raise ShadowError(f"table {spec.name!r}: the query could not be computed: {exc}") from None
    log.debug("shadow statistics for table %s: %d cells", spec.name, frame.height)
    frame = frame.with_columns(pl.col(c).cast(t) for c, t in _SHADOW_SCHEMA.items() if t is not None)
    return ShadowTable(spec=spec, frame=frame, top_n=top_n)


def shadow_from_frame(frame: Any, spec: TableSpec, *, view: str = "data", top_n: int = 2) -> ShadowTable:
    """Shadow statistics of a polars/pandas frame, registered as `view` in a fresh in-memory DuckDB.

    The spec's query reads from `view` (e.g. ``SELECT * FROM data``).
    """
    con = duckdb.connect(":memory:")
    try:
        con.register(view, frame)
        return compute_shadow(con, spec, top_n=top_n)
    finally:
        con.close()
