"""f_k, F_k, k-anonymity and individual risk per key combination, in one DuckDB GROUP BY.

Every record of a key combination shares its f_k, F_k and risk, so the
per-combination arrays carry the per-record results without materialising
them. On a DuckDB relation whose key variables have no missing value the
aggregation runs inside DuckDB (only the combinations are fetched); otherwise
(missing values match any value, sdcMicro's rule, or a data frame) it uses the
per-pattern arrays of `frequencies()`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from ._data import InvalidMicrodataInput, check_k
from .frequencies import frequencies
from .risk import RiskMethod, risk_of


@dataclass(frozen=True)
class KeyCombinations:
    """Per key combination (or per key pattern with missing values): records, f_k and F_k."""

    keys: tuple[str, ...]
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

    def violations(self, k: float, *, weighted: bool = False) -> int:
        """Records in a key combination with f_k < k (weighted: F_k < k); as `Frequencies.violations`."""
        check_k(k)
        return int(self.records[(self.Fk if weighted else self.fk) < k].sum())

    def risk(self, *, method: RiskMethod = RiskMethod.APPROX, qual: float = 1.0, survey: bool = True) -> np.ndarray:
        """Individual risk of the records of each combination (sdcMicro indivRisk, as `individual_risk`)."""
        return risk_of(self.fk, self.Fk, method, qual, survey)

    def expected_reidentifications(self, risk: np.ndarray | None = None) -> float:
        """ER = Σ over records of their risk."""
        return float(np.dot(self.records, self.risk() if risk is None else risk))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def key_combinations(data: Any, keys: Sequence[str], *, weight: str | None = None) -> KeyCombinations:
    """Records, f_k and F_k of every key combination of `data` (see the module docstring)."""
    keys = tuple(keys)
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    if isinstance(data, duckdb.DuckDBPyRelation):
        wanted = [*keys, *([weight] if weight else [])]
        absent = [c for c in wanted if c not in data.columns]
        if absent:
            raise InvalidMicrodataInput(f"variable(s) {', '.join(map(repr, absent))} not in the data; "
                                        f"it has: {', '.join(data.columns)}")
        cols = ", ".join(map(_quote, keys))
        any_null = " OR ".join(f"{_quote(c)} IS NULL" for c in keys)
        w = f"CAST({_quote(weight)} AS DOUBLE)" if weight else "1.0"
        bad_weight = f"count(*) FILTER (WHERE {w} IS NULL OR isnan({w}) OR {w} <= 0)" if weight else "0"
        result = data.query(
            "microdata_input",
            f"SELECT count(*)::DOUBLE AS f, sum({w}) AS w, bool_or({any_null}) AS m, {bad_weight} AS bad "
            f"FROM microdata_input GROUP BY {cols}",
        ).fetchnumpy()
        if result["f"].size == 0:
            raise InvalidMicrodataInput("the data has no records")
        bad = int(np.asarray(result["bad"]).sum())
        if bad:
            raise InvalidMicrodataInput(
                f"sampling weight {weight!r} must be positive and present for every record: "
                f"{bad} record(s) have a missing, zero or negative weight")
        if not np.asarray(result["m"]).any():
            fk = np.asarray(result["f"], dtype=np.float64)
            Fk = np.asarray(result["w"], dtype=np.float64) if weight else fk
            return KeyCombinations(keys, fk, fk, Fk, weight is not None)
    freq = frequencies(data, keys, weight=weight)
    records = np.bincount(freq.pattern, minlength=freq.pattern_fk.shape[0]).astype(np.float64)
    used = records > 0
    return KeyCombinations(keys, records[used], freq.pattern_fk[used], freq.pattern_Fk[used], weight is not None)
