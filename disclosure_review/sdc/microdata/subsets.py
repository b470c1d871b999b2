"""k-anonymity on subsets of the key variables (sdcMicro's `combs`, v5.8.1).

sdcMicro's kAnon(obj, k, combs=c(4, 3)) asks for k-anonymity on every
combination of 4 and of 3 key variables, with k per subset size (a k of length
1 is used for every size). An intruder who knows only some of the key variables
is then protected as well. Here a record violates k-anonymity on a subset S
when its f_k counted on the key variables of S alone, with sdcMicro's freqCalc
rule for missing values (missing matches any value), is below S's k. With
`strata`, f_k is counted within each stratum.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import comb
from typing import Any

import numpy as np
import pandas as pd

from ._data import InvalidMicrodataInput, check_k, encode, stack_codes, to_arrow
from ._params import check_alpha
from .frequencies import code_frequencies

MAX_SUBSETS = 100_000  # beyond this the key set is too large for subsets of this size


def key_subsets(n_keys: int, combs: Sequence[int], k: float | Sequence[float]) -> list[tuple[tuple[int, ...], int]]:
    """(column indices, k) of every subset, sizes in the order of `combs`, each size in R's combn order."""
    sizes = [combs] if isinstance(combs, (int, np.integer)) else list(combs)
    if not sizes:
        raise InvalidMicrodataInput("combs is empty: give the subset sizes, e.g. combs=[3, 2]")
    for s in sizes:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise InvalidMicrodataInput(f"subset sizes in combs must be whole numbers (got {s!r})")
        if s < 1:
            raise InvalidMicrodataInput(f"subset sizes in combs must be at least 1 (got {s})")
        if s > n_keys:
            raise InvalidMicrodataInput(
                f"subset size {s} in combs is larger than the number of key variables ({n_keys})")
    ks = [k] * len(sizes) if np.isscalar(k) else list(k)
    if len(ks) != len(sizes):
        raise InvalidMicrodataInput(
            f"give one k for every subset size in combs ({len(sizes)}) or a single k (got {len(ks)})")
    ks = [int(check_k(value)) for value in ks]
    total = sum(comb(n_keys, int(s)) for s in sizes)
    if total > MAX_SUBSETS:
        raise InvalidMicrodataInput(
            f"combs {sizes} on {n_keys} key variables means {total} subsets (at most {MAX_SUBSETS}): "
            "choose fewer key variables or other subset sizes")
    return [(cols, kk) for s, kk in zip(sizes, ks)
            for cols in itertools.combinations(range(n_keys), int(s))]


def row_ids(columns: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Dense id (0, 1, … in order of appearance) of each record's combination of integer codes (missing a value)."""
    if not columns:
        return np.zeros(n, dtype=np.int64)
    return pd.MultiIndex.from_arrays(list(columns)).factorize()[0].astype(np.int64)


def below_k(codes: np.ndarray, cols: Sequence[int], k: float, alpha: float = 1.0) -> np.ndarray:
    """Per record: f_k on the key columns `cols` (freqCalc rule) is below k."""
    return code_frequencies(np.asfortranarray(codes[:, list(cols)]), None, alpha)[0] < k


@dataclass(frozen=True)
class SubsetViolation:
    """k-anonymity on one subset of the key variables."""

    keys: tuple[str, ...]
    k: int
    records_below_k: int
    level: float  # smallest f_k on this subset (within strata: over all strata)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "k": self.k, "records_below_k": self.records_below_k, "level": self.level}


@dataclass(frozen=True)
class SubsetKAnonymity:
    """k-anonymity on every subset of the key variables of the sizes in `combs`."""

    keys: tuple[str, ...]
    combs: tuple[int, ...]
    subsets: tuple[SubsetViolation, ...]
    below: np.ndarray = field(repr=False)  # per record: below k on at least one subset

    @property
    def violating(self) -> tuple[SubsetViolation, ...]:
        """The subsets on which some record has f_k < k."""
        return tuple(s for s in self.subsets if s.records_below_k > 0)

    @property
    def records_below_k(self) -> int:
        """Records below k on at least one subset."""
        return int(self.below.sum())

    @property
    def anonymous(self) -> bool:
        return not self.violating

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "combs": list(self.combs), "anonymous": self.anonymous,
                "records_below_k": self.records_below_k, "subsets": [s.to_dict() for s in self.subsets]}


def subset_k_anonymity(
    data: Any,
    keys: Sequence[str],
    *,
    combs: Sequence[int],
    k: float | Sequence[float] = 3,
    strata: Sequence[str] = (),
    alpha: float = 1.0,
) -> SubsetKAnonymity:
    """Records below k on every subset of the key variables of the sizes in `combs`.

    sdcMicro: the check behind kAnon(obj, k=k, combs=combs) / localSuppression(..., combs=combs);
    k is one value or one per subset size.
    """
    keys, strata = tuple(keys), tuple(strata)
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    if len(set(keys)) != len(keys):
        raise InvalidMicrodataInput(f"key variables are repeated: {list(keys)}")
    check_alpha(alpha)
    subsets = key_subsets(len(keys), combs, k)
    table = to_arrow(data, [*keys, *strata])
    if table.num_rows == 0:
        raise InvalidMicrodataInput("the data has no records")
    codes = stack_codes([encode(table.column(c))[0] for c in keys])
    groups = row_ids([encode(table.column(c))[0] for c in strata], table.num_rows)
    strata_rows = [np.flatnonzero(groups == g) for g in np.unique(groups)] if strata else [slice(None)]
    below_any = np.zeros(table.num_rows, dtype=bool)
    results = []
    for cols, kk in subsets:
        below = np.zeros(table.num_rows, dtype=bool)
        level = np.inf
        for rows in strata_rows:
            fk = code_frequencies(np.asfortranarray(codes[rows][:, list(cols)]), None, alpha)[0]
            below[rows] = fk < kk
            level = min(level, float(fk.min()))
        below_any |= below
        results.append(SubsetViolation(tuple(keys[c] for c in cols), kk, int(below.sum()), level))
    sizes = (combs,) if isinstance(combs, (int, np.integer)) else tuple(int(s) for s in combs)
    return SubsetKAnonymity(keys, sizes, tuple(results), below_any)
