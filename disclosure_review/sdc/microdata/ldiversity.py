"""l-diversity of sensitive variables within key combinations (sdcMicro ldiversity()).

Groups are records with identical key values; here, as in sdcMicro's
measure_risk_cpp, a missing key value is a value of its own (not a wildcard).
Per group and sensitive variable:

- distinct: number of distinct non-missing values, plus one when the group also
  has missing values (and at least one value);
- entropy: exp(−Σ p·ln p) over those values (missing counted as one value when
  the group has any other value), p = count / group size;
- recursive (c, l): with the value counts r_1 ≥ r_2 ≥ … ≥ r_m, the largest l
  such that r_1 < c·(r_l + … + r_m), or 1.

With several sensitive variables, multi-attribute l-diversity (sdcMicro's
MultiEntropy_Ldiversity and MultiRecursive_Ldiversity, Compute_Multi_LDiversity
in src/Measure_Risk.h): for each sensitive variable S, the group is split by the
values of the other sensitive variables (missing a value of its own), entropy and
recursive l-diversity of S are computed in every part, and the group's value is
the smallest over all parts and all S. An intruder who knows a person's other
sensitive values learns S from that part only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._data import MISSING, InvalidMicrodataInput, encode, to_arrow
from ._params import measure_of, number_in
from .subsets import row_ids


def private_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection of our own, so nothing is written to the caller's."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def _nan_to_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(col.type):
        return pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
    if pa.types.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col


@dataclass(frozen=True)
class LDiversity:
    """Per-record l-diversity of one sensitive variable (in the data's row order)."""

    sensitive: str
    distinct: np.ndarray
    entropy: np.ndarray
    recursive: np.ndarray
    c: float

    def violations(self, l: float, *, measure: str = "distinct") -> int:
        """Records whose group has an l-diversity below l (measure: distinct, entropy or recursive)."""
        values = measure_of({"distinct": self.distinct, "entropy": self.entropy, "recursive": self.recursive},
                            measure, l)
        return int(np.sum(values < l))


def _checked_table(data: Any, keys: Sequence[str], sensitive: Sequence[str] | str
                   ) -> tuple[tuple[str, ...], tuple[str, ...], pa.Table]:
    keys = tuple(keys)
    sensitive = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    if not keys or not sensitive:
        raise InvalidMicrodataInput("name at least one key variable and one sensitive variable")
    overlap = set(keys) & set(sensitive)
    if overlap:
        raise InvalidMicrodataInput(f"a sensitive variable cannot be a key variable: {sorted(overlap)}")
    for names, what in ((keys, "key"), (sensitive, "sensitive")):
        if len(set(names)) != len(names):
            raise InvalidMicrodataInput(f"{what} variables are repeated: {list(names)}")
    table = to_arrow(data, [*keys, *sensitive])
    if table.num_rows == 0:
        raise InvalidMicrodataInput("the data has no records")
    return keys, sensitive, table


def l_diversity(
    data: Any, keys: Sequence[str], sensitive: Sequence[str] | str, *, c: float = 2.0
) -> dict[str, LDiversity]:
    """l-diversity of each sensitive variable; sdcMicro: ldiversity(obj, keyVars, ldiv_index, l_recurs_c=c)."""
    keys, sensitive, table = _checked_table(data, keys, sensitive)
    c = number_in(c, "c (recursive l-diversity constant)", 0.0, low_open=True)
    n = table.num_rows
    kcols = [f"k{j}" for j in range(len(keys))]
    cols: dict[str, Any] = {"rid": pa.array(np.arange(n, dtype=np.int64))}
    cols.update({kc: _nan_to_null(table.column(k)) for kc, k in zip(kcols, keys)})
    cols.update({f"s{j}": _nan_to_null(table.column(s)) for j, s in enumerate(sensitive)})
    con = private_connection()
    try:
        con.register("t", pa.table(cols))
        kl = ", ".join(kcols)
        on = " AND ".join(f"t.{kc} IS NOT DISTINCT FROM g.{kc}" for kc in kcols)
        result: dict[str, LDiversity] = {}
        for j, name in enumerate(sensitive):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE cnt AS SELECT {kl}, s{j} AS v, count(*)::DOUBLE AS c "
                f"FROM t GROUP BY ALL"
            )
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE grp AS
                WITH sized AS (SELECT *, sum(c) OVER g AS size, count(v) OVER g AS used,
                    max(c) FILTER (WHERE v IS NOT NULL) OVER g AS r1,
                    sum(c) FILTER (WHERE v IS NOT NULL) OVER (PARTITION BY {kl} ORDER BY
                        CASE WHEN v IS NULL THEN -1 ELSE c END DESC
                        ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS tail,
                    row_number() OVER (PARTITION BY {kl} ORDER BY CASE WHEN v IS NULL THEN -1 ELSE c END DESC)
                        AS pos
                    FROM cnt WINDOW g AS (PARTITION BY {kl}))
                SELECT {kl},
                    count(v) + CASE WHEN count(v) > 0 AND count(*) > count(v) THEN 1 ELSE 0 END AS l_distinct,
                    exp(-sum(CASE WHEN used > 0 THEN c / size * ln(c / size) ELSE 0 END)) AS l_entropy,
                    CASE WHEN max(used) = 0 THEN 0
                         ELSE 1 + count(*) FILTER (WHERE v IS NOT NULL AND pos >= 2 AND {float(c)!r} * tail > r1)
                    END AS l_recursive
                FROM sized GROUP BY ALL"""
            )
            res = con.execute(
                f"SELECT t.rid, g.l_distinct, g.l_entropy, g.l_recursive FROM t JOIN grp g ON {on}"
            ).fetchnumpy()
            out = {m: np.empty(n) for m in ("l_distinct", "l_entropy", "l_recursive")}
            for m, arr in out.items():
                arr[res["rid"]] = res[m]
            result[name] = LDiversity(name, out["l_distinct"], out["l_entropy"], out["l_recursive"], c)
        return result
    finally:
        con.close()


@dataclass(frozen=True)
class MultiLDiversity:
    """Per-record multi-attribute l-diversity of several sensitive variables (in the data's row order)."""

    sensitive: tuple[str, ...]
    entropy: np.ndarray
    recursive: np.ndarray
    c: float

    def violations(self, l: float, *, measure: str = "entropy") -> int:
        """Records whose group has a multi l-diversity below l (measure: entropy or recursive)."""
        values = measure_of({"entropy": self.entropy, "recursive": self.recursive}, measure, l)
        return int(np.sum(values < l))


def _part_diversity(part: np.ndarray, values: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Entropy and recursive (c, l) l-diversity of `values` (codes, MISSING) in each part 0..max(part)."""
    n_parts = int(part.max()) + 1
    size = np.bincount(part, minlength=n_parts)
    pair = row_ids([part, values], part.size)
    first = np.empty(int(pair.max()) + 1, dtype=np.int64)
    first[pair[::-1]] = np.arange(part.size - 1, -1, -1)
    pair_part, present = part[first], values[first] != MISSING
    count = np.bincount(pair, minlength=first.size).astype(np.float64)
    used = np.bincount(pair_part, weights=present, minlength=n_parts) > 0
    # missing counts as one more value, but only in a part that has some value
    share = count / size[pair_part]
    terms = np.where(present | used[pair_part], share * np.log(share), 0.0)
    entropy = np.exp(-np.bincount(pair_part, weights=terms, minlength=n_parts))
    # recursive: value counts r_1 >= r_2 >= ... per part; l = 1 + #{j >= 2 : c * (r_j + ... + r_m) > r_1}
    recursive = np.where(used, 1.0, 0.0)
    idx = np.flatnonzero(present)
    if idx.size == 0:
        return entropy, recursive
    idx = idx[np.lexsort((-count[idx], pair_part[idx]))]
    owner, r = pair_part[idx], count[idx]
    start = np.r_[True, owner[1:] != owner[:-1]]
    block = np.cumsum(start) - 1
    before = np.cumsum(r) - r
    tail = np.bincount(owner, weights=r, minlength=n_parts)[owner] - (before - before[start][block])
    r1 = r[start][block]
    recursive += np.bincount(owner, weights=(~start) & (c * tail > r1), minlength=n_parts)
    return entropy, recursive


def multi_l_diversity(
    data: Any, keys: Sequence[str], sensitive: Sequence[str], *, c: float = 2.0
) -> MultiLDiversity:
    """Multi-attribute entropy and recursive (c, l) l-diversity of two or more sensitive variables.

    sdcMicro: ldiversity(obj, keyVars, ldiv_index=sensitive, l_recurs_c=c), columns
    MultiEntropy_Ldiversity and MultiRecursive_Ldiversity (see the module docstring).
    """
    keys, sensitive, table = _checked_table(data, keys, sensitive)
    if len(sensitive) < 2:
        raise InvalidMicrodataInput("multi l-diversity needs at least two sensitive variables")
    c = number_in(c, "c (recursive l-diversity constant)", 0.0, low_open=True)
    n = table.num_rows
    group = row_ids([encode(table.column(k))[0] for k in keys], n)
    codes = [encode(table.column(s))[0] for s in sensitive]
    n_groups = int(group.max()) + 1
    entropy, recursive = np.full(n_groups, np.inf), np.full(n_groups, np.inf)
    for i, values in enumerate(codes):
        part = row_ids([group, *(v for j, v in enumerate(codes) if j != i)], n)
        part_entropy, part_recursive = _part_diversity(part, values, c)
        part_group = np.empty(part_entropy.size, dtype=np.int64)
        part_group[part] = group
        np.minimum.at(entropy, part_group, part_entropy)
        np.minimum.at(recursive, part_group, part_recursive)
    return MultiLDiversity(sensitive, entropy[group], recursive[group], c)
