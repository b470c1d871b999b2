"""f_k, F_k, k-anonymity and individual risk per key combination.

Every record of a key combination shares its f_k, F_k and risk, so the
per-combination arrays (with each combination's number of records) carry the
per-record results without materialising them. On a DuckDB relation whose key
variables have no missing value this is one GROUP BY inside DuckDB (only the
combinations are fetched); otherwise (missing values match any value,
sdcMicro's rule, or a data frame) it works on the per-pattern arrays of
`frequencies_of_codes`, one combination per key pattern.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._data import MISSING, InvalidMicrodataInput, KeyData, check_k, is_missing, load_keys, quote
from .frequencies import frequencies_of_codes
from .risk import RiskMethod, risk_of


@dataclass(frozen=True)
class KeyCombinations:
    """Per key combination (or per key pattern with missing values): its values, records, f_k and F_k."""

    keys: tuple[str, ...]
    values: pa.Table  # one row per combination, a column per key variable; null = missing
    records: np.ndarray
    fk: np.ndarray
    Fk: np.ndarray
    weighted: bool

    @property
    def n(self) -> int:
        return int(self.records.sum())

    @property
    def level(self) -> int:
        """k-anonymity level: the smallest f_k."""
        return int(self.fk.min())

    def records_where(self, mask: np.ndarray) -> int:
        """Records in the combinations selected by a boolean mask over combinations."""
        return int(self.records[mask].sum())

    def violations(self, k: float, *, weighted: bool = False) -> int:
        """Records in a key combination with f_k < k (weighted: F_k < k); as `Frequencies.violations`."""
        k = check_k(k, weighted=weighted)
        return self.records_where((self.Fk if weighted else self.fk) < k)

    def risk(self, *, method: RiskMethod = RiskMethod.APPROX, qual: float = 1.0, survey: bool = True) -> np.ndarray:
        """Individual risk of the records of each combination (sdcMicro indivRisk, as `individual_risk`)."""
        return risk_of(self.fk, self.Fk, method, qual, survey)

    def expected_reidentifications(self, risk: np.ndarray | None = None) -> float:
        """ER = Σ over records of their risk."""
        return float(np.dot(self.records, self.risk() if risk is None else risk))


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def _check_relation(data: duckdb.DuckDBPyRelation, keys: tuple[str, ...], weight: str | None) -> None:
    absent = [c for c in (*keys, *([weight] if weight else [])) if c not in data.columns]
    if absent:
        raise InvalidMicrodataInput(f"variable(s) {', '.join(map(repr, absent))} not in the data; "
                                    f"it has: {', '.join(data.columns)}")
    if weight:
        kind = str(dict(zip(data.columns, data.types))[weight])
        if not kind.startswith(_NUMERIC):
            raise InvalidMicrodataInput(f"sampling weight {weight!r} must be numeric, not {kind}")


def _check_weight_in_duckdb(data: duckdb.DuckDBPyRelation, weight: str) -> None:
    """Every weight present, finite and positive: one ungrouped pass; the count of bad ones only on failure."""
    w = quote(weight)
    records, absent, low, high = data.query(
        "microdata_input",
        f"SELECT count(*), count(*) - count({w}), min({w})::DOUBLE, max({w})::DOUBLE FROM microdata_input",
    ).fetchall()[0]
    if records == 0:
        raise InvalidMicrodataInput("the data has no records")
    if absent == 0 and low > 0 and np.isfinite(high):  # DuckDB orders NaN above +inf
        return
    bad = data.query("microdata_input", f"SELECT count(*) FROM microdata_input WHERE {w} IS NULL "
                     f"OR NOT isfinite({w}::DOUBLE) OR {w} <= 0").fetchall()[0][0]
    raise InvalidMicrodataInput(
        f"sampling weight {weight!r} must be positive and present for every record: "
        f"{bad} record(s) have a missing, zero or negative weight")


def _in_duckdb(data: duckdb.DuckDBPyRelation, keys: tuple[str, ...], weight: str | None) -> KeyCombinations | None:
    """One GROUP BY in DuckDB; None when a key value is missing (then sdcMicro's matching rule applies)."""
    _check_relation(data, keys, weight)
    if weight:
        _check_weight_in_duckdb(data, weight)
    cols = ", ".join(map(quote, keys))
    w = f", sum({quote(weight)}::DOUBLE) AS __onsite_w" if weight else ""
    # Aliases no key variable is likely to have (DuckDB names are case-insensitive).
    result = data.query(
        "microdata_input", f"SELECT {cols}, count(*) AS __onsite_f{w} FROM microdata_input GROUP BY {cols}"
    ).to_arrow_table()
    if result.num_rows == 0:
        raise InvalidMicrodataInput("the data has no records")
    if any(pc.any(is_missing(result.column(key))).as_py() for key in keys):  # a group of missing values
        return None
    fk = result.column("__onsite_f").to_numpy().astype(np.float64)
    Fk = result.column("__onsite_w").to_numpy() if weight else fk
    return KeyCombinations(keys, result.select(list(keys)), fk, fk, Fk, weight is not None)


def combinations_of_keys(key_data: KeyData, alpha: float = 1.0) -> tuple[KeyCombinations, np.ndarray]:
    """The key patterns of coded data as combinations, and each record's combination (index per record)."""
    freq = frequencies_of_codes(key_data.keys, key_data.codes, key_data.weight, alpha)
    n_pat = freq.pattern_fk.shape[0]
    records = np.bincount(freq.pattern, minlength=n_pat).astype(np.float64)
    used = records > 0  # radix patterns that no record has are dropped
    compact = np.cumsum(used) - 1
    first = np.empty(n_pat, dtype=np.int64)
    first[freq.pattern[::-1]] = np.arange(key_data.n - 1, -1, -1)
    codes = key_data.codes[first[used]]
    values = pa.table({
        key: key_data.levels[j].take(pa.array(codes[:, j], mask=codes[:, j] == MISSING))
        for j, key in enumerate(key_data.keys)
    })
    combos = KeyCombinations(key_data.keys, values, records[used], freq.pattern_fk[used], freq.pattern_Fk[used],
                             key_data.weight is not None)
    return combos, compact[freq.pattern]


def key_combinations(data: object, keys: Sequence[str], *, weight: str | None = None) -> KeyCombinations:
    """Values, records, f_k and F_k of every key combination of `data` (see the module docstring)."""
    keys = tuple(keys)
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    if len(set(keys)) != len(keys):
        raise InvalidMicrodataInput(f"key variables are repeated: {list(keys)}")
    if isinstance(data, duckdb.DuckDBPyRelation):
        combos = _in_duckdb(data, keys, weight)
        if combos is not None:
            return combos
    return combinations_of_keys(load_keys(data, keys, weight=weight))[0]
