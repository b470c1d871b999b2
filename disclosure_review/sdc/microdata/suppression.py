"""Local suppression to k-anonymity (sdcMicro localSuppression / kAnon, v5.8.1) that always reaches k.

The heuristic is sdcMicro's suppSubset, so results equal sdcMicro's where it
finishes:

1. only k records of each key combination larger than k take part (a missing
   value is a value of its own for this grouping); the others are put back at
   the end;
2. records with f_k < k (f_k counted with missing matching any value), in
   order of decreasing risk 1/f_k: find the records at the smallest positive
   distance (number of key variables where both have a value and they differ),
   and suppress, in the first key variable of the suppression order where the
   record differs from one of them, the record's value;
3. repeat until every f_k ≥ k.

sdcMicro can stop with an error or fail to reach k (its issues #225, #352).
Here a record with no record at positive distance has its first non-missing
key value (in suppression order) suppressed, every round suppresses at least
one more value per record below k, and a record whose keys are all missing
counts all records (f_k = n ≥ k): so the loop always ends with k-anonymity on
the full key set. The result is verified on the full data before it is returned.

sdcMicro's heuristic compares every record below k with every record: on
large data (records below k × records > `SDCMICRO_WORK_LIMIT`) the default
`SuppressionMethod.AUTO` switches to `FAST`: per round, every record below k
gets suppressed, at once, the first value in suppression order whose
suppression alone brings its f_k to k (counted with that key variable left
out), else the value whose suppression raises f_k most; one group-by per key
variable per round, so 10^5–10^6 records take seconds.

With `combs` (sdcMicro's k-anonymity on subsets of the key variables, see
subsets.py) the heuristic runs on each subset in turn, sizes in the order
given and subsets in R's combn order, with the subset's k and the key
variables' importance restricted to it: sdcMicro's single pass. A later subset
can break an earlier one (a record whose subset values all become missing no
longer matches complete records), so, unlike sdcMicro, passes are repeated
until every subset has k; each extra pass suppresses at least one more value,
so this ends, and the result is verified on every subset before it is returned.
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm  # a text bar: tqdm.auto wants ipywidgets in a notebook (TqdmWarning: IProgress not found)

from ._data import MISSING, InvalidMicrodataInput, check_k, encode, stack_codes
from ._params import check_alpha, member
from ._result import ProtectionMethod, ProtectionResult, count_changes, require_columns, to_polars
from .frequencies import _dense_rows
from .frequencies import code_frequencies as _weighted_frequencies
from .subsets import below_k, key_subsets, row_ids

log = logging.getLogger(__name__)

SDCMICRO_WORK_LIMIT = 2e8  # records below k × records taking part, for AUTO


class SuppressionMethod(enum.Enum):
    SDCMICRO = "sdcmicro"  # sdcMicro's nearest-record heuristic (equal results)
    FAST = "fast"  # all records below k at once, by the gain of each suppression
    AUTO = "auto"  # SDCMICRO when small enough, else FAST


def code_frequencies(codes: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Unweighted f_k of integer-coded keys (sdcMicro's freqCalc rule)."""
    return _weighted_frequencies(codes, None, alpha)[0]


def _reduce(codes: np.ndarray, k: int) -> np.ndarray:
    """Rows that take part: at most the first k of each key combination, missing a value of its own (step 1).

    sdcMicro's suppSubset means to set missing values to the column's first value for this
    grouping, but evaluates `unique(kV)[1]` within data.table's `[is.na(kV), kV := …]`, i.e. on
    the missing rows only: they stay missing and group together.
    """
    group = _dense_rows(codes)
    order = np.argsort(group, kind="stable")
    sorted_groups = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    position = np.empty(codes.shape[0], dtype=np.int64)
    position[order] = np.arange(codes.shape[0]) - np.repeat(starts, np.diff(np.r_[starts, codes.shape[0]]))
    return np.flatnonzero(position < k)


def _suppress_once(mat: np.ndarray, present: np.ndarray, i: int, col_order: Sequence[int]) -> None:
    """One suppression in record i (step 2)."""
    row = mat[i]
    dist = np.zeros(mat.shape[0], dtype=np.int16)
    for v in np.flatnonzero(row != MISSING):
        dist += (mat[:, v] != row[v]) & present[:, v]
    positive = dist[dist > 0]
    choice = None
    if positive.size:
        near = mat[dist == positive.min()]
        for v in col_order:
            if row[v] != MISSING and np.any((near[:, v] != row[v]) & (near[:, v] != MISSING)):
                choice = v
                break
    if choice is None:  # nothing at positive distance: sdcMicro stops; suppress the record's own value
        choice = next(v for v in col_order if row[v] != MISSING)
    mat[i, choice] = MISSING
    present[i, choice] = False


def _fast_round(mat: np.ndarray, problems: np.ndarray, k: int, col_order: Sequence[int], alpha: float) -> None:
    """Suppress one value in every record of `problems`, chosen by its gain (FAST)."""
    p = mat.shape[1]
    chosen = np.full(problems.size, -1)
    best = np.full(problems.size, -1.0)
    for v in col_order:
        without_v = code_frequencies(np.delete(mat, v, axis=1), alpha)[problems] if p > 1 else np.full(
            problems.size, float(mat.shape[0]))
        open_ = (chosen < 0) | (best < k)
        usable = (mat[problems, v] != MISSING) & open_ & (without_v > best)
        chosen[usable] = v
        best[usable] = without_v[usable]
    ok = chosen >= 0  # a record below k always has a value left (all missing: f_k = n >= k)
    mat[problems[ok], chosen[ok]] = MISSING


def suppress_codes(
    codes: np.ndarray,
    k: int,
    col_order: Sequence[int],
    *,
    alpha: float = 1.0,
    method: SuppressionMethod = SuppressionMethod.AUTO,
    progress: bool = False,
) -> tuple[np.ndarray, int, SuppressionMethod]:
    """k-anonymous copy of `codes`, the number of rounds and the method used (one stratum)."""
    n = codes.shape[0]
    if n < k:
        raise InvalidMicrodataInput(f"k = {k} is larger than the number of records ({n}) in a stratum")
    rows = _reduce(codes, k) if method is not SuppressionMethod.FAST else np.arange(n)
    mat = np.ascontiguousarray(codes[rows])
    present = mat != MISSING
    rounds = 0
    with tqdm(desc="local suppression", unit="record", disable=not progress, leave=False) as bar:
        while True:
            fk = code_frequencies(mat, alpha)
            problems = np.flatnonzero(fk < k)
            if problems.size == 0:
                break
            if method is SuppressionMethod.AUTO:
                method = (SuppressionMethod.SDCMICRO if problems.size * mat.shape[0] <= SDCMICRO_WORK_LIMIT
                          else SuppressionMethod.FAST)
            rounds += 1
            if method is SuppressionMethod.FAST:
                bar.total = (bar.total or 0) + problems.size
                _fast_round(mat, problems, k, col_order, alpha)
                bar.update(problems.size)
                continue
            problems = problems[np.argsort(fk[problems], kind="stable")]  # decreasing risk 1/f_k
            log.debug("local suppression round %d: %d records below k", rounds, problems.size)
            bar.total = (bar.total or 0) + problems.size
            for i in problems:
                _suppress_once(mat, present, int(i), col_order)
                bar.update()
    out = codes.copy()
    out[rows] = mat
    return out, rounds, (SuppressionMethod.SDCMICRO if method is SuppressionMethod.AUTO else method)


def default_importance(codes: np.ndarray) -> list[int]:
    """sdcMicro's default: rank of each key variable by its number of categories (fewest = 1)."""
    categories = [len(np.unique(codes[codes[:, v] != MISSING, v])) for v in range(codes.shape[1])]
    ranks = np.empty(len(categories), dtype=int)
    ranks[np.argsort(categories, kind="stable")] = np.arange(1, len(categories) + 1)
    return ranks.tolist()


def suppress_subsets(
    codes: np.ndarray,
    subsets: Sequence[tuple[tuple[int, ...], int]],
    importance: Sequence[int],
    *,
    alpha: float = 1.0,
    method: SuppressionMethod = SuppressionMethod.AUTO,
    progress: bool = False,
) -> tuple[np.ndarray, int, set[SuppressionMethod]]:
    """Copy of `codes` with k on every (columns, k) subset, the passes over the subsets, the methods used."""
    mat = codes.copy()
    rank = np.asarray(importance)
    used: set[SuppressionMethod] = set()

    def suppress(cols: list[int], k: int, how: SuppressionMethod) -> bool:
        order = list(np.argsort(-rank[cols], kind="stable"))  # as rank(importance[kV], ties="min")
        before = mat[:, cols]
        sub, _, m = suppress_codes(before, k, order, alpha=alpha, method=how, progress=progress)
        mat[:, cols] = sub
        used.add(m)
        return bool((sub != before).any())

    # sdcMicro's single pass: every subset goes through the heuristic, which can suppress even
    # where the subset already has k (it works on the reduced data, step 1)
    for cols, k in subsets:
        suppress(list(cols), k, method)
    passes = 1
    while below := [(list(c), k) for c, k in subsets if below_k(mat, list(c), k, alpha).any()]:
        passes += 1
        log.debug("local suppression on key subsets: pass %d, %d subsets below k", passes, len(below))
        for cols, k in below:
            # FAST takes every record below k, so it always suppresses: the loop ends
            if below_k(mat, cols, k, alpha).any() and not suppress(cols, k, method):
                suppress(cols, k, SuppressionMethod.FAST)
    return mat, passes, used


def local_suppression(
    data: Any,
    keys: Sequence[str],
    *,
    k: int | Sequence[int] = 2,
    importance: Sequence[int] | None = None,
    strata: Sequence[str] = (),
    combs: Sequence[int] | None = None,
    alpha: float = 1.0,
    method: SuppressionMethod = SuppressionMethod.AUTO,
    progress: bool = False,
) -> ProtectionResult:
    """Suppress key values until every record's key combination has f_k ≥ k.

    sdcMicro: localSuppression(x, keyVars=keys, k=k, importance=importance) and,
    with strata, kAnon(x, keyVars, strataVars=strata). `importance` ranks the key
    variables 1..p: 1 is suppressed last, p first (default: most categories first).
    `method`: see SuppressionMethod; AUTO gives sdcMicro's results on data small
    enough for its heuristic.

    `combs` (sdcMicro's localSuppression(..., k=k, combs=combs)): k-anonymity on
    every subset of the key variables of each size in `combs` instead of the full
    key set (include len(keys) for the full set too); `k` is one value or one per size.
    """
    df = to_polars(data)
    keys, strata = tuple(keys), tuple(strata)
    require_columns(df, [*keys, *strata])
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
    if len(set(keys)) != len(keys):
        raise InvalidMicrodataInput(f"key variables are repeated: {list(keys)}")
    check_alpha(alpha)
    method = member(method, SuppressionMethod, "method")
    if combs is None:
        if not np.isscalar(k):
            raise InvalidMicrodataInput("k has several values: give the subset sizes they apply to with combs")
        k = int(check_k(k))
        subsets = [(tuple(range(len(keys))), k)]
    else:
        subsets = key_subsets(len(keys), combs, k)
    size_k = list(dict.fromkeys((len(cols), kk) for cols, kk in subsets))
    codes = stack_codes([encode(df[c].to_arrow())[0] for c in keys])
    if importance is None:
        importance = default_importance(codes)
    elif len(importance) != len(keys) or not set(importance) <= set(range(1, len(keys) + 1)):
        raise InvalidMicrodataInput(
            f"importance must give each of the {len(keys)} key variables a rank between 1 and {len(keys)}"
        )  # ties are allowed, as in sdcMicro: tied variables go in key order
    col_order = list(np.argsort(-np.asarray(importance), kind="stable"))
    protected = codes.copy()
    rounds = 0
    used: set[SuppressionMethod] = set()
    groups = row_ids([encode(df[c].to_arrow())[0] for c in strata], df.height)
    strata_rows = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    largest_k = max(kk for _, kk in subsets)
    if min(rows.size for rows in strata_rows) < largest_k:
        raise InvalidMicrodataInput(
            f"k = {largest_k} is larger than the number of records ({min(r.size for r in strata_rows)})"
            + (" in a stratum" if strata else ""))
    for rows in strata_rows:
        if combs is None:
            protected[rows], r, m = suppress_codes(
                codes[rows], subsets[0][1], col_order, alpha=alpha, method=method, progress=progress)
            rounds = max(rounds, r)
            used.add(m)
        else:
            protected[rows], r, ms = suppress_subsets(
                codes[rows], subsets, importance, alpha=alpha, method=method, progress=progress)
            rounds = max(rounds, r)
            used |= ms
    # never return a result that misses k (cannot happen, see the module docstring)
    fk = code_frequencies(protected, alpha)
    missed = (fk < subsets[0][1]).any() if combs is None and not strata else any(
        below_k(protected[rows], cols, kk, alpha).any() for rows in strata_rows for cols, kk in subsets)
    if missed:
        raise RuntimeError("local suppression ended below k; please report this data pattern")
    extra = ({"k": subsets[0][1], "rounds": rounds} if combs is None else  # passes > 1: sdcMicro left a subset below k
             {"k": [kk for _, kk in size_k], "combs": [s for s, _ in size_k], "subsets": len(subsets), "passes": rounds})
    newly = (protected == MISSING) & (codes != MISSING)
    out = df.with_columns(
        pl.when(pl.Series(newly[:, j])).then(None).otherwise(pl.col(c)).alias(c) for j, c in enumerate(keys)
    )
    changed, records = count_changes(df, out, keys)
    return ProtectionResult(
        ProtectionMethod.LOCAL_SUPPRESSION,
        out,
        changed,
        records,
        {"importance": list(importance), "strata": list(strata), **extra,
         "methods": sorted(m.value for m in used),
         "min_fk": float(fk.min())},
    )
