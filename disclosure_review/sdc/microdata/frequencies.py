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

Computed on integer codes of the distinct key patterns with hash
factorisation and bincounts (pandas/numpy, no loop over records); with missing
values, one vectorised lookup per pair of missing-value masks. The same
algorithm in DuckDB SQL (one statement per pair of masks) was 70× slower once
local suppression had created a few dozen masks, and no faster without them.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ._data import MISSING, InvalidMicrodataInput, _columns_of, check_k, load_keys, quote
from ._params import check_alpha

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frequencies:
    """f_k and F_k per record (in the data's row order); F_k equals f_k without weights."""

    keys: tuple[str, ...]
    fk: np.ndarray
    Fk: np.ndarray
    weighted: bool
    alpha: float
    # Optional: each record's row in per-pattern arrays (fk = pattern_fk[pattern]), so that
    # per-record measures are computed once per key pattern and gathered (individual_risk).
    pattern: np.ndarray | None = field(default=None, repr=False)
    pattern_fk: np.ndarray | None = field(default=None, repr=False)
    pattern_Fk: np.ndarray | None = field(default=None, repr=False)

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
        """Records in a key combination with fewer than k records (weighted: F_k < k, any k >= 1)."""
        k = check_k(k, weighted=weighted)
        return int(np.sum((self.Fk if weighted else self.fk) < k))


def _radix_rows(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """An id < span for each row's combination of codes (MISSING is a value here), not yet dense."""
    group = np.zeros(codes.shape[0], dtype=np.int64)
    span = 1  # mixed-radix codes until they would overflow, then re-densify
    for v in range(codes.shape[1]):
        card = int(codes[:, v].max()) + 2
        if span * card >= 2**62:
            group = pd.factorize(group)[0].astype(np.int64)
            span = int(group.max()) + 1
        group *= card  # in place: no temporaries of n int64 per key variable
        group += codes[:, v]
        group += 1
        span *= card
    return group, span


def _dense_rows(codes: np.ndarray) -> np.ndarray:
    """Dense id (0, 1, … in order of appearance) of each row's combination of codes."""
    return pd.factorize(_radix_rows(codes)[0])[0].astype(np.int64)


def code_frequencies(
    codes: np.ndarray, weight: np.ndarray | None = None, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """f_k and F_k per row of integer-coded keys (MISSING = missing), sdcMicro's freqCalc rule."""
    group, fk, Fk = pattern_frequencies(codes, weight, alpha)
    return fk[group], Fk[group]


def frequencies_of_codes(
    keys: Sequence[str], codes: np.ndarray, weight: np.ndarray | None = None, alpha: float = 1.0
) -> Frequencies:
    group, fk, Fk = pattern_frequencies(codes, weight, alpha)
    return Frequencies(tuple(keys), fk[group], Fk[group], weight is not None, alpha, group, fk, Fk)


def pattern_frequencies(
    codes: np.ndarray, weight: np.ndarray | None = None, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's key pattern, and f_k and F_k per pattern (fk[pattern] is the row's f_k).

    Works on the distinct key patterns: hash factorisation (pandas) and
    bincounts; with missing values one lookup per pair of missing-value masks.
    Without missing values and few possible combinations the pattern is the
    mixed-radix code itself (no hashing); unused codes then have f_k = 0.
    """
    n, p = codes.shape
    if not (codes == MISSING).any():
        group, span = _radix_rows(codes)
        if span <= max(8 * n, 1 << 20):  # small enough to count by id directly, no hashing
            fk = np.bincount(group, minlength=span).astype(np.float64)
            Fk = fk if weight is None else np.bincount(group, weights=weight, minlength=span)
            return group, fk, Fk
    group = _dense_rows(codes)
    n_pat = int(group.max()) + 1
    first = np.empty(n_pat, dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)
    pat = codes[first]
    f0 = np.bincount(group, minlength=n_pat).astype(np.float64)
    F0 = f0.copy() if weight is None else np.bincount(group, weights=weight, minlength=n_pat)
    mask = (pat != MISSING) @ (1 << np.arange(p, dtype=np.int64))
    masks = np.unique(mask)
    full = (1 << p) - 1
    fk, Fk = f0.copy(), F0.copy()
    if masks.tolist() != [full]:
        log.debug("frequencies: %d missing-value patterns over %d key variables", masks.size, p)
        members = {int(m): np.flatnonzero(mask == m) for m in masks}
        for target, t_rows in members.items():
            if target == 0:
                continue  # all-missing records: set below
            for source, s_rows in members.items():
                if source == target:
                    continue  # a pattern matches itself only, counted in f0
                if target == full:
                    factor = alpha if source != 0 or p == 1 else 0.0
                else:
                    factor = alpha if source != full else 1.0
                if factor == 0:
                    continue
                common = [v for v in range(p) if (target & source) >> v & 1]
                if not common:
                    fk[t_rows] += factor * f0[s_rows].sum()
                    Fk[t_rows] += factor * F0[s_rows].sum()
                    continue
                both = _dense_rows(np.concatenate([pat[s_rows][:, common], pat[t_rows][:, common]]))
                s_key, t_key = both[: s_rows.size], both[s_rows.size :]
                size = int(both.max()) + 1
                sf = np.bincount(s_key, weights=f0[s_rows], minlength=size)
                sF = np.bincount(s_key, weights=F0[s_rows], minlength=size)
                fk[t_rows] += factor * sf[t_key]
                Fk[t_rows] += factor * sF[t_key]
        all_missing = mask == 0
        fk[all_missing] = n
        Fk[all_missing] = F0.sum()
    return group, fk, Fk


def frequencies(
    data: Any, keys: Sequence[str], *, weight: str | None = None, alpha: float = 1.0
) -> Frequencies:
    """f_k and F_k for every record of `data` (DuckDB relation, polars/pandas frame, Arrow table).

    sdcMicro: freqCalc(x, keyVars=keys, w=weight, alpha=alpha).
    """
    keys = tuple(keys)
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    check_alpha(alpha)
    key_data = load_keys(data, keys, weight=weight)
    return frequencies_of_codes(keys, key_data.codes, key_data.weight, alpha)


@dataclass(frozen=True)
class KAnonymity:
    """The k-anonymity level of a dataset (smallest f_k) and the records below a given k."""

    level: int
    k: int
    records_below_k: int


def k_anonymity(data: Any, keys: Sequence[str], *, k: int = 3) -> KAnonymity:
    """Smallest f_k and records with f_k < k, without per-record results.

    On a DuckDB relation whose key variables have no missing value this is one
    GROUP BY inside DuckDB (nothing is fetched); otherwise it uses
    `frequencies()` (missing values match any value).
    """
    k = int(check_k(k))
    keys = tuple(keys)
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    if isinstance(data, duckdb.DuckDBPyRelation):
        missing = [c for c in keys if c not in _columns_of(data)]
        if missing:
            raise InvalidMicrodataInput(f"variable(s) {', '.join(map(repr, missing))} not in the data")
        cols = ", ".join(map(quote, keys))
        # Missing values (NULL, NaN) form groups of their own: looked for per group, not per record.
        types = dict(zip(data.columns, map(str, data.types)))
        missing = " OR ".join(f"{quote(c)} IS NULL" + (f" OR isnan({quote(c)})" if types[c] in ("FLOAT", "DOUBLE") else "")
                              for c in keys)
        level, below, has_missing = data.query(
            "microdata_input",
            f"SELECT min(__onsite_c), coalesce(sum(__onsite_c) FILTER (WHERE __onsite_c < {k}), 0), "
            f"bool_or({missing}) FROM (SELECT {cols}, count(*) AS __onsite_c FROM microdata_input GROUP BY {cols})",
        ).fetchall()[0]
        if level is None:
            raise InvalidMicrodataInput("the data has no records")
        if not has_missing:
            return KAnonymity(int(level), k, int(below))
    freq = frequencies(data, keys)
    return KAnonymity(int(freq.fk.min()), k, freq.violations(k))
