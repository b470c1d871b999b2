"""Sample frequencies f_k and weighted population frequencies F_k, k-anonymity.

Missing key values follow sdcMicro's freqCalc (v5.8.1): a missing value matches
any value. For a record i, f_k(i) adds up the records j that agree with i on
every key variable where both have a value, with these sdcMicro details:

- a record with no missing value is not matched by a record whose key values
  are all missing (unless there is only one key variable);
- a record with all key values missing gets f_k = n and F_k = the sum of all weights;
- records with the same pattern count 1; other matching records with a missing
  value count `alpha` (default 1), complete records matching a record with a
  missing value count 1.

Computed in DuckDB on the distinct key patterns: one group-by per pair of
missing-value masks (usually a handful), so census-scale data is fine.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._data import InvalidMicrodataInput, check_k, check_weight, to_arrow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frequencies:
    """f_k and F_k per record (in the data's row order); F_k equals f_k without weights."""

    keys: tuple[str, ...]
    fk: np.ndarray
    Fk: np.ndarray
    weighted: bool
    alpha: float

    @property
    def n(self) -> int:
        return int(self.fk.shape[0])

    @property
    def n1(self) -> int:
        """Records violating 2-anonymity (sdcMicro's n1: f_k == 1)."""
        return int(np.sum(self.fk == 1))

    @property
    def n2(self) -> int:
        """Records with f_k == 2 (n1 + n2 violate 3-anonymity)."""
        return int(np.sum(self.fk == 2))

    def violations(self, k: float, *, weighted: bool = False) -> int:
        """Records in a key combination with fewer than k records (weighted: F_k < k)."""
        check_k(k)
        return int(np.sum((self.Fk if weighted else self.fk) < k))


def private_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection of our own, so nothing is written to the caller's."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _nan_to_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(col.type):
        return pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
    if pa.types.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col


def key_table(table: pa.Table, keys: Sequence[str], weight: np.ndarray | None) -> pa.Table:
    """rid, k0..k{p-1} (the key columns, NaN made NULL), w."""
    n = table.num_rows
    cols: dict[str, Any] = {"rid": pa.array(np.arange(n, dtype=np.int64))}
    for j, k in enumerate(keys):
        cols[f"k{j}"] = _nan_to_null(table.column(k))
    cols["w"] = pa.array(np.ones(n) if weight is None else weight)
    return pa.table(cols)


def compute_frequencies(
    con: duckdb.DuckDBPyConnection, keys: Sequence[str], alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """f_k, F_k per rid (SQL names sf, pf: DuckDB identifiers ignore case, fk and Fk collide) for the registered table `t` (rid, k0.., w)."""
    p = len(keys)
    kcols = [f"k{j}" for j in range(p)]
    full = (1 << p) - 1
    mask_sql = " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE {1 << j} END)" for j, c in enumerate(kcols))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE pat AS SELECT row_number() OVER () AS pid, {', '.join(kcols)}, "
        f"count(*)::DOUBLE AS sf0, sum(w) AS pf0, {mask_sql} AS mask FROM t GROUP BY ALL"
    )
    masks = [int(m) for (m,) in con.execute("SELECT DISTINCT mask FROM pat ORDER BY mask").fetchall()]
    if masks == [full]:
        con.execute("CREATE OR REPLACE TEMP TABLE pat_final AS SELECT *, sf0 AS sf, pf0 AS pf FROM pat")
    else:
        log.debug("frequencies: %d missing-value patterns over %d key variables", len(masks), p)
        parts: list[str] = []
        for target in masks:
            if target == 0:
                continue  # all-missing records: overridden below
            for source in masks:
                if source == target:
                    continue  # same pattern only matches itself, counted in sf0
                if target == full:
                    factor = alpha if source != 0 or p == 1 else 0.0
                else:
                    factor = alpha if source != full else 1.0
                if factor == 0:
                    continue
                common = [kcols[j] for j in range(p) if (target & source) >> j & 1]
                if common:
                    cl = ", ".join(common)
                    parts.append(
                        f"SELECT q.pid, s.sf * {factor} AS sf, s.pf * {factor} AS pf FROM pat q JOIN "
                        f"(SELECT {cl}, sum(sf0) AS sf, sum(pf0) AS pf FROM pat WHERE mask = {source} "
                        f"GROUP BY {cl}) s USING ({cl}) WHERE q.mask = {target}"
                    )
                else:
                    parts.append(
                        f"SELECT q.pid, s.sf * {factor} AS sf, s.pf * {factor} AS pf FROM pat q, "
                        f"(SELECT sum(sf0) AS sf, sum(pf0) AS pf FROM pat WHERE mask = {source}) s "
                        f"WHERE q.mask = {target}"
                    )
        con.execute("CREATE OR REPLACE TEMP TABLE contrib (pid BIGINT, sf DOUBLE, pf DOUBLE)")
        for part in parts:
            con.execute(f"INSERT INTO contrib {part}")
        n, total_w = con.execute("SELECT count(*), sum(w) FROM t").fetchone()
        con.execute(
            "CREATE OR REPLACE TEMP TABLE pat_final AS SELECT p.*, "
            f"CASE WHEN p.mask = 0 THEN {float(n)} ELSE p.sf0 + coalesce(c.sf, 0) END AS sf, "
            f"CASE WHEN p.mask = 0 THEN {float(total_w)!r} ELSE p.pf0 + coalesce(c.pf, 0) END AS pf "
            "FROM pat p LEFT JOIN (SELECT pid, sum(sf) AS sf, sum(pf) AS pf FROM contrib GROUP BY pid) c "
            "USING (pid)"
        )
    on = " AND ".join(f"t.{c} IS NOT DISTINCT FROM p.{c}" for c in kcols)
    res = con.execute(f"SELECT t.rid, p.sf, p.pf FROM t JOIN pat_final p ON {on}").fetchnumpy()
    n = int(con.execute("SELECT count(*) FROM t").fetchone()[0])
    fk = np.empty(n)
    Fk = np.empty(n)
    fk[res["rid"]] = res["sf"]
    Fk[res["rid"]] = res["pf"]
    return fk, Fk


def frequencies(
    data: Any, keys: Sequence[str], *, weight: str | None = None, alpha: float = 1.0
) -> Frequencies:
    """f_k and F_k for every record of `data` (DuckDB relation, polars/pandas frame, Arrow table).

    sdcMicro: freqCalc(x, keyVars=keys, w=weight, alpha=alpha).
    """
    keys = tuple(keys)
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    if not 0 <= alpha <= 1:
        raise InvalidMicrodataInput(f"alpha must be between 0 and 1 (got {alpha!r})")
    table = to_arrow(data, [*keys, *([weight] if weight else [])])
    if table.num_rows == 0:
        raise InvalidMicrodataInput("the data has no records")
    w = None
    if weight:
        w = check_weight(pc.fill_null(table.column(weight).cast(pa.float64()), np.nan).to_numpy(), weight)
    return frequencies_of_table(table, keys, w, alpha)


def frequencies_of_table(
    table: pa.Table, keys: Sequence[str], weight: np.ndarray | None, alpha: float = 1.0
) -> Frequencies:
    con = private_connection()
    try:
        con.register("t", key_table(table, keys, weight))
        fk, Fk = compute_frequencies(con, keys, alpha)
    finally:
        con.close()
    return Frequencies(tuple(keys), fk, Fk, weight is not None, alpha)
