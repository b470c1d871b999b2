"""Perturbative methods: invariant PRAM, MDAV microaggregation, noise addition.

sdcMicro: pram(), microaggregation(method="mdav"), addNoise(method="additive"|"correlated").
Random draws come from numpy's Generator seeded by `seed`, so they are
reproducible here but not equal to R's draws.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from ._data import MISSING, InvalidMicrodataInput, encode
from ._result import ProtectionMethod, ProtectionResult, count_changes, require_columns, to_polars


def invariant_transition_matrix(
    frequencies: np.ndarray, *, pd: float | np.ndarray = 0.8, alpha: float = 0.5, rng: np.random.Generator
) -> np.ndarray:
    """sdcMicro's invariant PRAM matrix: P with diagonal drawn from U(pd, 1), the rest spread evenly;
    R = P·Q with Q the backward matrix (so p·R = p), then alpha·R + (1 − alpha)·I."""
    p = np.asarray(frequencies, dtype=float)
    p = p / p.sum()
    size = p.size
    if size == 1:
        return np.ones((1, 1))
    diagonal = rng.uniform(pd, 1.0, size) if np.isscalar(pd) else np.asarray(pd, dtype=float)
    P = np.repeat(((1 - diagonal) / (size - 1))[:, None], size, axis=1)
    np.fill_diagonal(P, diagonal)
    Q = (P * p[:, None]).T / (p @ P)[:, None]  # Q[k, j] = P[j, k] p[j] / Σ_j p[j] P[j, k]
    return alpha * (P @ Q) + (1 - alpha) * np.eye(size)


def pram(
    data: Any,
    variables: Sequence[str],
    *,
    pd: float = 0.8,
    alpha: float = 0.5,
    strata: Sequence[str] = (),
    seed: int | None = None,
) -> ProtectionResult:
    """Post-randomisation with an invariant transition matrix per variable (and stratum).

    Each record's category is redrawn from its row of the matrix; the expected
    frequencies of the categories stay those of the data. Missing values stay missing.
    """
    if not 0 <= pd <= 1 or not 0 <= alpha <= 1:
        raise InvalidMicrodataInput("pd and alpha must be between 0 and 1")
    df = to_polars(data)
    require_columns(df, [*variables, *strata])
    rng = np.random.default_rng(seed)
    groups = np.zeros(df.height, dtype=np.int64)
    for s in strata:
        codes, _ = encode(df[s].to_arrow())
        groups = groups * (int(codes.max()) + 2) + codes + 1
    matrices: dict[str, list[list[float]]] = {}
    new_columns = []
    for v in variables:
        codes, levels = encode(df[v].to_arrow())
        out = codes.copy()
        for g in np.unique(groups):
            rows = np.flatnonzero((groups == g) & (codes != MISSING))
            if rows.size == 0:
                continue
            present = np.unique(codes[rows])
            local = np.searchsorted(present, codes[rows])
            matrix = invariant_transition_matrix(np.bincount(local), pd=pd, alpha=alpha, rng=rng)
            cumulative = np.cumsum(matrix, axis=1)
            draws = rng.random(rows.size)
            picked = (draws[:, None] > cumulative[local]).sum(axis=1)
            out[rows] = present[np.minimum(picked, present.size - 1)]
            if not strata:
                matrices[v] = matrix.tolist()
        values = levels.take(np.where(out == MISSING, 0, out)).to_pylist()
        new_columns.append(pl.Series(v, [None if c == MISSING else x for c, x in zip(out, values)],
                                     dtype=df[v].dtype))
    result = df.with_columns(new_columns)
    changed, records = count_changes(df, result, variables)
    return ProtectionResult(
        ProtectionMethod.PRAM, result, changed, records,
        {"pd": pd, "alpha": alpha, "strata": list(strata), "seed": seed, "transition_matrices": matrices},
    )


def _numeric_matrix(df: pl.DataFrame, variables: Sequence[str]) -> np.ndarray:
    for v in variables:
        if not df[v].dtype.is_numeric():
            raise InvalidMicrodataInput(f"{v!r} must be numeric")
    return np.column_stack([df[v].cast(pl.Float64).fill_null(np.nan).to_numpy() for v in variables])


def mdav_groups(x: np.ndarray, k: int) -> np.ndarray:
    """Group id per row by MDAV (maximum distance to average vector) on standardised variables."""
    n = x.shape[0]
    scale = x.std(axis=0, ddof=1) if n > 1 else np.ones(x.shape[1])
    z = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    remaining = np.arange(n)
    group = np.full(n, -1)
    next_id = 0

    def take_nearest(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
        d = ((z[points] - centre) ** 2).sum(axis=1)
        return points[np.argsort(d, kind="stable")[:k]]

    while remaining.size >= 3 * k:
        centroid = z[remaining].mean(axis=0)
        r = remaining[np.argmax(((z[remaining] - centroid) ** 2).sum(axis=1))]
        s = remaining[np.argmax(((z[remaining] - z[r]) ** 2).sum(axis=1))]
        for anchor in (r, s):
            members = take_nearest(remaining, z[anchor])
            group[members] = next_id
            next_id += 1
            remaining = np.setdiff1d(remaining, members, assume_unique=True)
    if remaining.size >= 2 * k:
        centroid = z[remaining].mean(axis=0)
        r = remaining[np.argmax(((z[remaining] - centroid) ** 2).sum(axis=1))]
        members = take_nearest(remaining, z[r])
        group[members] = next_id
        next_id += 1
        remaining = np.setdiff1d(remaining, members, assume_unique=True)
    group[remaining] = next_id
    return group


def microaggregation(data: Any, variables: Sequence[str], *, k: int = 3) -> ProtectionResult:
    """MDAV microaggregation: groups of k to 2k − 1 similar records, each value replaced by its group mean.

    sdcMicro: microaggregation(obj, variables, aggr=k, method="mdav"). Records
    with a missing value in these variables are left unchanged. O(n²/k): meant
    for up to some 10^4–10^5 records.
    """
    if k < 2:
        raise InvalidMicrodataInput("k must be at least 2 for microaggregation")
    df = to_polars(data)
    require_columns(df, variables)
    x = _numeric_matrix(df, variables)
    complete = np.flatnonzero(~np.isnan(x).any(axis=1))
    if complete.size < k:
        raise InvalidMicrodataInput(f"fewer than k = {k} complete records to aggregate")
    groups = mdav_groups(x[complete], k)
    sums = np.zeros((groups.max() + 1, x.shape[1]))
    np.add.at(sums, groups, x[complete])
    means = sums / np.bincount(groups)[:, None]
    aggregated = x.copy()
    aggregated[complete] = means[groups]
    out = df.with_columns(pl.Series(v, aggregated[:, j]) for j, v in enumerate(variables))
    changed, records = count_changes(df.with_columns(pl.col(v).cast(pl.Float64) for v in variables), out, variables)
    return ProtectionResult(
        ProtectionMethod.MICROAGGREGATION, out, changed, records,
        {"k": k, "groups": int(groups.max() + 1), "group_sizes": np.bincount(np.bincount(groups)).tolist()},
    )


class NoiseMethod(enum.Enum):
    ADDITIVE = "additive"  # each variable + N(0, (noise/100 · sd)²)
    CORRELATED = "correlated"  # + N(0, noise/100 · covariance): keeps correlations


def add_noise(
    data: Any,
    variables: Sequence[str],
    *,
    noise: float = 150.0,
    method: NoiseMethod = NoiseMethod.ADDITIVE,
    seed: int | None = None,
) -> ProtectionResult:
    """Add random noise to continuous variables (sdcMicro addNoise, default noise = 150 as there)."""
    if noise < 0:
        raise InvalidMicrodataInput("noise must not be negative")
    df = to_polars(data)
    require_columns(df, variables)
    x = _numeric_matrix(df, variables)
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    if method is NoiseMethod.ADDITIVE:
        sd = np.nanstd(x, axis=0, ddof=1)
        noisy = x + rng.normal(0.0, 1.0, x.shape) * (noise / 100.0 * sd)
    else:
        complete = x[~np.isnan(x).any(axis=1)]
        if complete.shape[0] < 2:
            raise InvalidMicrodataInput("correlated noise needs at least two complete records")
        cov = np.atleast_2d(np.cov(complete, rowvar=False))
        noisy = x + rng.multivariate_normal(np.zeros(x.shape[1]), noise / 100.0 * cov, size=n)
    out = df.with_columns(pl.Series(v, noisy[:, j]) for j, v in enumerate(variables))
    changed, records = count_changes(df.with_columns(pl.col(v).cast(pl.Float64) for v in variables), out, variables)
    return ProtectionResult(
        ProtectionMethod.NOISE, out, changed, records, {"noise": noise, "method": method.value, "seed": seed}
    )
