"""Local suppression to k-anonymity (sdcMicro localSuppression / kAnon, v5.8.1) that always reaches k.

The heuristic is sdcMicro's suppSubset, so results equal sdcMicro's where it
finishes:

1. only k records of each key combination larger than k take part (missing
   values set to the first record's value just for this grouping); the others
   are put back at the end, which can only raise frequencies;
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
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from ._data import MISSING, InvalidMicrodataInput, check_k, encode, stack_codes
from ._result import ProtectionMethod, ProtectionResult, count_changes, require_columns, to_polars
from .frequencies import _dense_rows
from .frequencies import code_frequencies as _weighted_frequencies

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
    """Rows that take part: at most the first k of each key combination (step 1)."""
    filled = codes.copy()
    for v in range(codes.shape[1]):
        filled[filled[:, v] == MISSING, v] = codes[0, v]
    group = _dense_rows(filled)
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


def local_suppression(
    data: Any,
    keys: Sequence[str],
    *,
    k: int = 2,
    importance: Sequence[int] | None = None,
    strata: Sequence[str] = (),
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
    """
    check_k(k)
    k = int(np.ceil(k))
    df = to_polars(data)
    keys, strata = tuple(keys), tuple(strata)
    require_columns(df, [*keys, *strata])
    if not keys:
        raise InvalidMicrodataInput("name at least one key variable")
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
    groups = (
        _dense_rows(np.column_stack([encode(df[c].to_arrow())[0] for c in strata]))
        if strata else np.zeros(df.height, dtype=np.int64)
    )
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        protected[rows], r, m = suppress_codes(
            codes[rows], k, col_order, alpha=alpha, method=method, progress=progress
        )
        rounds = max(rounds, r)
        used.add(m)
    fk = code_frequencies(protected, alpha)
    if np.any(fk < k):  # cannot happen (see module docstring); never return a result that misses k
        raise RuntimeError("local suppression ended below k; please report this data pattern")
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
        {"k": k, "importance": list(importance), "rounds": rounds, "strata": list(strata),
         "methods": sorted(m.value for m in used),
         "min_fk": float(fk.min())},
    )
