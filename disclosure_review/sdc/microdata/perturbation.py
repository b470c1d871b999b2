"""Perturbative methods: PRAM (invariant or with a user's transition matrix), MDAV microaggregation,
noise addition.

sdcMicro: pram(), microaggregation(method="mdav"), addNoise(method="additive"|"correlated").
Random draws come from numpy's Generator seeded by `seed`, so they are
reproducible here but not equal to R's draws.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np
from pandas import DataFrame as PandasFrame  # not `pd`: pram's argument has sdcMicro's name pd
import polars as pl

from ._data import MISSING, InvalidMicrodataInput, encode
from ._params import check_alpha, member, number_in, whole_number
from ._result import ProtectionMethod, ProtectionResult, count_changes, require_columns, to_polars


PramSpec = Union[float, np.ndarray, Sequence[Sequence[float]], PandasFrame]
ROW_SUM_TOLERANCE = 1e-8


def invariant_from(P: np.ndarray, frequencies: np.ndarray, alpha: float) -> np.ndarray:
    """alpha·(P·Q) + (1 − alpha)·I with Q the backward matrix Q_kj = P_jk p_j / Σ_j p_j P_jk, so that
    p·R = p for the category distribution p. A category no record can move to has no row in Q (zero)."""
    p = np.asarray(frequencies, dtype=float)
    p = p / p.sum()
    inflow = p @ P
    Q = np.divide((P * p[:, None]).T, inflow[:, None], out=np.zeros_like(P, dtype=float),
                  where=inflow[:, None] > 0)
    return alpha * (P @ Q) + (1 - alpha) * np.eye(P.shape[0])


def invariant_transition_matrix(
    frequencies: np.ndarray, *, pd: float | np.ndarray = 0.8, alpha: float = 0.5, rng: np.random.Generator
) -> np.ndarray:
    """sdcMicro's invariant PRAM matrix: P with diagonal drawn from U(pd, 1), the rest spread evenly;
    R = P·Q with Q the backward matrix (so p·R = p), then alpha·R + (1 − alpha)·I."""
    size = np.asarray(frequencies).size
    if size == 1:
        return np.ones((1, 1))
    diagonal = rng.uniform(pd, 1.0, size) if np.isscalar(pd) else np.asarray(pd, dtype=float)
    P = np.repeat(((1 - diagonal) / (size - 1))[:, None], size, axis=1)
    np.fill_diagonal(P, diagonal)
    return invariant_from(P, frequencies, alpha)


def user_transition_matrix(matrix: Any, categories: Sequence[Any], variable: str) -> np.ndarray:
    """Check a user's transition matrix for `variable` and return it with rows and columns in the
    order of `categories` (sorted): a pandas DataFrame labelled by the categories (index = from,
    columns = to, any order), or a 2-D array or nested list in the categories' sorted order."""
    where = f"the transition matrix for {variable!r}"
    listing = ", ".join(map(repr, categories))
    if isinstance(matrix, PandasFrame):
        for axis, labels in (("row", list(matrix.index)), ("column", list(matrix.columns))):
            if len(set(labels)) != len(labels):
                raise InvalidMicrodataInput(f"{where} has repeated {axis} labels: {labels}")
            absent = [c for c in categories if c not in labels]
            unknown = [x for x in labels if x not in set(categories)]
            if absent or unknown:
                raise InvalidMicrodataInput(
                    f"{axis} labels of {where} must be its categories ({listing}): "
                    + "; ".join(part for part in (
                        absent and f"missing {', '.join(map(repr, absent))}",
                        unknown and f"not categories of {variable!r}: {', '.join(map(repr, unknown))}") if part))
        matrix = matrix.loc[list(categories), list(categories)]
    elif isinstance(matrix, pl.DataFrame):
        raise InvalidMicrodataInput(
            f"{where}: a polars DataFrame has no row labels; pass a pandas DataFrame labelled by the "
            f"categories or a 2-D array in their sorted order ({listing})")
    try:
        P = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidMicrodataInput(f"{where} must hold numbers only ({exc})") from None
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise InvalidMicrodataInput(f"{where} must be a square matrix; it has shape {P.shape}")
    if P.shape[0] != len(categories):
        raise InvalidMicrodataInput(
            f"{where} is {P.shape[0]} × {P.shape[0]} but {variable!r} has {len(categories)} categories "
            f"({listing}): give one row and one column per category in this sorted order, or label them "
            "(a pandas DataFrame with the categories as index and columns)")
    if not np.isfinite(P).all():
        raise InvalidMicrodataInput(f"{where} has missing or infinite entries")
    if (P < 0).any():
        i, j = map(int, np.argwhere(P < 0)[0])
        raise InvalidMicrodataInput(
            f"{where} has a negative probability ({categories[i]!r} → {categories[j]!r}: {P[i, j]}); "
            "probabilities must be between 0 and 1")
    sums = P.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)
    if bad.size:
        i = int(bad[0])
        raise InvalidMicrodataInput(
            f"row {categories[i]!r} of {where} sums to {sums[i]:.10g}, not 1 (within {ROW_SUM_TOLERANCE}): "
            "each row holds the probabilities of that category's new value")
    return P


def _draw(matrix: np.ndarray, local: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new category (column of `matrix`) for each record of category `local` (row)."""
    cumulative = np.cumsum(matrix, axis=1)
    cumulative /= cumulative[:, -1:]  # exactly 1 at the end, so trailing zero columns are never drawn
    draws = rng.random(local.size)
    picked = np.empty(local.size, dtype=np.int64)
    for i in range(matrix.shape[0]):
        rows = np.flatnonzero(local == i)
        picked[rows] = np.searchsorted(cumulative[i], draws[rows], side="right")
    return np.minimum(picked, matrix.shape[1] - 1)


def pram(
    data: Any,
    variables: Sequence[str],
    *,
    pd: PramSpec | Mapping[str, PramSpec] = 0.8,
    alpha: float = 0.5,
    strata: Sequence[str] = (),
    invariant: bool | None = None,
    seed: int | None = None,
) -> ProtectionResult:
    """Post-randomisation: each record's category is redrawn from its row of a transition matrix.

    sdcMicro: pram(obj, variables, strata_variables=strata, pd=pd, alpha=alpha).
    `pd` is, per variable (a mapping variable → spec, or one spec for all):
    - a number: sdcMicro's invariant matrix per variable and stratum (diagonal from U(pd, 1),
      then alpha·P·Q + (1 − alpha)·I): the expected category frequencies stay those of the data;
    - a transition matrix (pandas DataFrame labelled by the categories, or a 2-D array in their
      sorted order; rows sum to 1): applied as given, the same in every stratum (sdcMicro; alpha
      is not used), or with `invariant=True` made invariant per stratum as sdcMicro does with its
      own P: alpha·P·Q + (1 − alpha)·I.
    Missing values stay missing. `details` has the matrices (with strata only those that are
    the same in every stratum), their categories, and the transitions (from, to, records).
    """
    check_alpha(alpha)
    df = to_polars(data)
    variables = list(variables)
    require_columns(df, [*variables, *strata])
    if not variables:
        raise InvalidMicrodataInput("name at least one variable to post-randomise")
    if isinstance(pd, Mapping):
        unknown = sorted(set(pd) - set(variables))
        if unknown or set(pd) != set(variables):
            raise InvalidMicrodataInput(
                f"pd must give a spec for each of the variables {variables} and no other "
                f"(missing: {sorted(set(variables) - set(pd))}, not pramed: {unknown})")
        specs = dict(pd)
    else:
        specs = dict.fromkeys(variables, pd)
    for v, spec in specs.items():
        if np.isscalar(spec):
            number_in(spec, f"pd for {v!r} (or give a transition matrix)", 0.0, 1.0)
            if invariant is False:
                raise InvalidMicrodataInput(
                    f"pd = {spec} for {v!r} always gives sdcMicro's invariant matrix; to apply a matrix as "
                    "it is, pass the matrix")
    rng = np.random.default_rng(seed)
    groups = np.zeros(df.height, dtype=np.int64)
    for s in strata:
        codes, _ = encode(df[s].to_arrow())
        groups = groups * (int(codes.max()) + 2) + codes + 1
    matrices: dict[str, list[list[float]]] = {}
    categories: dict[str, list[Any]] = {}
    transitions: dict[str, list[dict[str, Any]]] = {}
    new_columns = []
    for v in variables:
        codes, levels = encode(df[v].to_arrow())
        present = np.unique(codes[codes != MISSING])
        if present.size == 0:
            raise InvalidMicrodataInput(f"{v!r} is missing for every record: it has no category to post-randomise")
        values = levels.take(present).to_pylist()
        order = sorted(range(len(values)), key=values.__getitem__)
        cat_codes, cats = present[order], [values[i] for i in order]  # categories in sorted order
        position = np.full(len(levels), -1)
        position[cat_codes] = np.arange(cat_codes.size)
        spec = specs[v]
        user = None if np.isscalar(spec) else user_transition_matrix(spec, cats, v)
        same_everywhere = user is not None and not invariant
        out = codes.copy()
        for g in np.unique(groups):
            rows = np.flatnonzero((groups == g) & (codes != MISSING))
            if rows.size == 0:
                continue
            local = position[codes[rows]]
            if user is None:  # sdcMicro's generated matrix over the categories of this stratum
                here = np.unique(local)
                matrix = invariant_transition_matrix(np.bincount(np.searchsorted(here, local)), pd=spec,
                                                     alpha=alpha, rng=rng)
                full = np.eye(cat_codes.size)
                full[np.ix_(here, here)] = matrix
                matrix = full
            elif invariant:
                matrix = invariant_from(user, np.bincount(local, minlength=cat_codes.size), alpha)
            else:
                matrix = user
            out[rows] = cat_codes[_draw(matrix, local, rng)]
            if same_everywhere or not strata:
                matrices[v] = matrix.tolist()
        categories[v] = cats
        moved = (codes != MISSING) & (out != codes)
        pairs, counts = np.unique(np.column_stack([position[codes[moved]], position[out[moved]]]), axis=0,
                                  return_counts=True)
        transitions[v] = [{"from": cats[a], "to": cats[b], "records": int(c)} for (a, b), c in zip(pairs, counts)]
        new_values = levels.take(np.where(out == MISSING, 0, out)).to_pylist()
        new_columns.append(pl.Series(v, [None if c == MISSING else x for c, x in zip(out, new_values)],
                                     dtype=df[v].dtype))
    result = df.with_columns(new_columns)
    changed, records = count_changes(df, result, variables)
    return ProtectionResult(
        ProtectionMethod.PRAM, result, changed, records,
        {"pd": {v: (s if np.isscalar(s) else "matrix") for v, s in specs.items()}, "alpha": alpha,
         "invariant": invariant, "strata": list(strata), "seed": seed, "categories": categories,
         "transition_matrices": matrices, "transitions": transitions},
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
    k = whole_number(k, "k (records per group in microaggregation)", 2)
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
    noise = number_in(noise, "noise (percent of the standard deviation)", 0.0)
    method = member(method, NoiseMethod, "method")
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
