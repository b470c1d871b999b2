"""Reading microdata from a DuckDB relation or a data frame, checking it, encoding key variables.

Every measure works on integer codes: each key variable's distinct values become
0, 1, 2, … and a missing value (NULL, or NaN in a float column) becomes -1.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import polars as pl
import pyarrow.compute as pc

from ._params import InvalidMicrodataInput, check_k, unique_names  # noqa: F401 (this package's API)

MISSING = -1


def _columns_of(data: Any) -> list[str]:
    """The data's column names; a name given to two columns is refused (which one would a variable be?)."""
    if isinstance(data, duckdb.DuckDBPyRelation):
        names = list(data.columns)
    elif isinstance(data, pa.Table):
        names = list(data.column_names)
    elif isinstance(data, pl.LazyFrame):
        names = list(data.collect_schema().names())
    elif hasattr(data, "columns"):
        names = [str(c) for c in data.columns]
    else:
        raise InvalidMicrodataInput(
            f"cannot read microdata from a {type(data).__name__}: pass a DuckDB relation "
            "(e.g. con.table('microdata')), a polars or pandas DataFrame, or a pyarrow Table"
        )
    unique_names(names, "the data")
    return names


def to_arrow(data: Any, columns: Sequence[str]) -> pa.Table:
    """The named columns of `data` as an Arrow table, in the data's row order."""
    available = _columns_of(data)
    missing = [c for c in columns if c not in available]
    if missing:
        raise InvalidMicrodataInput(
            f"variable(s) {', '.join(map(repr, missing))} not in the data; "
            f"it has: {', '.join(available)}"
        )
    cols = list(dict.fromkeys(columns))
    if isinstance(data, duckdb.DuckDBPyRelation):
        return data.select(*[duckdb.ColumnExpression(c) for c in cols]).to_arrow_table()
    if isinstance(data, pa.Table):
        return data.select(cols)
    if isinstance(data, pl.LazyFrame):
        return data.select(cols).collect().to_arrow()
    if isinstance(data, pl.DataFrame):
        return data.select(cols).to_arrow()
    return pa.Table.from_pandas(data[cols], preserve_index=False)


def is_missing(col: pa.ChunkedArray) -> pa.ChunkedArray:
    missing = pc.is_null(col)
    if pa.types.is_floating(col.type):
        missing = pc.or_(missing, pc.is_nan(col))
    return pc.fill_null(missing, True)


def encode(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (MISSING for missing values) and the distinct values they stand for."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_floating(col.type):  # NaN is missing, as NULL; -0.0 is 0.0, as in SQL and sdcMicro
        col = pc.add(pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col), pa.scalar(0.0, col.type))
    if pa.types.is_integer(col.type) and col.null_count < len(col):
        low, high = pc.min_max(col).values()
        low, high = low.as_py(), high.as_py()
        if high - low <= 4 * len(col) + 1024:  # small range: the value minus the minimum, no hashing
            raw = pc.fill_null(col, low).to_numpy(zero_copy_only=False)
            if -(2**31) <= low and high < 2**31:
                codes = raw.astype(np.int32)
                codes -= np.int32(low)
            else:
                codes = (raw.astype(np.int64) - low).astype(np.int32)
            if col.null_count:
                codes[pc.is_null(col).to_numpy(zero_copy_only=False)] = MISSING
            return codes, pa.array(np.arange(low, high + 1), type=col.type)
    encoded = pc.dictionary_encode(col)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    codes = np.where(pc.is_null(encoded).to_numpy(zero_copy_only=False), MISSING, codes)
    return codes.astype(np.int32), encoded.dictionary


@dataclass(frozen=True)
class KeyData:
    """Key variables as codes (n × p, MISSING for missing), optional weights and household ids."""

    keys: tuple[str, ...]
    codes: np.ndarray
    levels: tuple[pa.Array, ...]
    weight: np.ndarray | None
    household: np.ndarray | None

    @property
    def n(self) -> int:
        return int(self.codes.shape[0])

    def decode(self, row_codes: Sequence[int]) -> tuple[Any, ...]:
        """The original values of one combination of codes (None for missing)."""
        return tuple(
            None if c == MISSING else self.levels[j][int(c)].as_py() for j, c in enumerate(row_codes)
        )


def stack_codes(columns: Sequence[np.ndarray]) -> np.ndarray:
    """n × p codes in column-major order (every algorithm reads whole columns)."""
    codes = np.empty((len(columns[0]), len(columns)), dtype=np.int32, order="F")
    for j, column in enumerate(columns):
        codes[:, j] = column
    return codes


def check_weight(values: np.ndarray, name: str) -> np.ndarray:
    weight = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(weight) | (weight <= 0)
    if bad.any():
        raise InvalidMicrodataInput(
            f"sampling weight {name!r} must be positive and present for every record: "
            f"{int(bad.sum())} record(s) have a missing, zero or negative weight"
        )
    return weight


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_UNUSED = -2  # a hash slot no distinct value occupies
_MAX_HASHED = 2048  # distinct values up to which a text key is coded inside DuckDB


def _hash_slots(data: duckdb.DuckDBPyRelation, column: str) -> tuple[int, np.ndarray, pa.Array] | None:
    """Code a text key inside DuckDB: a modulus P under which DuckDB's hashes of the column's distinct
    values are distinct, the slot → code table (slot + 1; 0 = missing) and the values in sorted order.

    Fetching a small integer per record instead of the text and hashing it again in Python
    saves most of the reading time. None when the column has too many (or no) distinct values.
    """
    q = quote(column)
    rows = data.query("microdata_input", f"SELECT DISTINCT {q}, hash({q}) FROM microdata_input "
                      f"WHERE {q} IS NOT NULL LIMIT {_MAX_HASHED + 1}").fetchall()
    if not rows or len(rows) > _MAX_HASHED:
        return None
    rows.sort()
    hashes = np.array([h for _, h in rows], dtype=np.uint64)
    d = len(rows)
    for modulus in itertools.chain(range(d, 4 * d + 1), range(d * d, d * d + 4096)):
        slots = (hashes % np.uint64(modulus)).astype(np.int64)
        if np.unique(slots).size == d:
            table = np.full(modulus + 1, _UNUSED, dtype=np.int32)
            table[0] = MISSING
            table[slots + 1] = np.arange(d, dtype=np.int32)
            return modulus, table, pa.array([v for v, _ in rows], type=pa.string())
    return None


def _read_relation(
    data: duckdb.DuckDBPyRelation, keys: Sequence[str], extra: Sequence[str]
) -> tuple[list[tuple[np.ndarray, pa.Array]], pa.Table]:
    """Codes of the key variables and the `extra` columns of a DuckDB relation; text keys coded in DuckDB."""
    types = dict(zip(data.columns, map(str, data.types)))
    slots = {k: _hash_slots(data, k) for k in keys if types[k] == "VARCHAR"}
    exprs = []
    for k in dict.fromkeys([*keys, *extra]):
        if slots.get(k):
            q = quote(k)
            exprs.append(f"CASE WHEN {q} IS NULL THEN -1 ELSE (hash({q}) % {slots[k][0]})::INTEGER END AS {q}")
        else:
            exprs.append(quote(k))
    table = data.query("microdata_input", f"SELECT {', '.join(exprs)} FROM microdata_input").to_arrow_table()
    encoded = []
    for k in keys:
        if not slots.get(k):
            encoded.append(encode(table.column(k)))
            continue
        _, lookup, levels = slots[k]
        codes = lookup[table.column(k).to_numpy() + 1]
        if (codes == _UNUSED).any():  # a value appeared that the first query did not see
            raise InvalidMicrodataInput("the data changed while it was read; run the measure again")
        encoded.append((codes, levels))
    return encoded, table


def load_keys(
    data: Any,
    keys: Sequence[str],
    *,
    weight: str | None = None,
    household: str | None = None,
) -> KeyData:
    """Read and check the key variables (and weight, household id) of `data`."""
    keys = tuple(keys)
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    if len(set(keys)) != len(keys):
        raise InvalidMicrodataInput(f"key variables are repeated: {list(keys)}")
    extra = [*([weight] if weight else []), *([household] if household else [])]
    if isinstance(data, duckdb.DuckDBPyRelation):
        to_arrow(data.limit(0), [*keys, *extra])  # the clear error for absent variables
        encoded, table = _read_relation(data, keys, extra)
    else:
        table = to_arrow(data, [*keys, *extra])
        encoded = [encode(table.column(k)) for k in keys]
    if table.num_rows == 0:
        raise InvalidMicrodataInput("the data has no records")
    codes = stack_codes([c for c, _ in encoded])
    w = None
    if weight:
        col = table.column(weight)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)):
            raise InvalidMicrodataInput(f"sampling weight {weight!r} must be numeric, not {col.type}")
        w = check_weight(pc.fill_null(col.cast(pa.float64()), np.nan).to_numpy(), weight)
    hh = None
    if household:
        hh_codes, _ = encode(table.column(household))
        if (hh_codes == MISSING).any():
            raise InvalidMicrodataInput(f"household id {household!r} is missing for some records")
        hh = hh_codes
    return KeyData(keys, codes, tuple(lv for _, lv in encoded), w, hh)
