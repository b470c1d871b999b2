"""Information loss between original and protected data (sdcMicro dUtility, IL_correl)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from ._data import InvalidMicrodataInput
from ._result import require_columns, to_polars


@dataclass(frozen=True)
class InformationLoss:
    """What protection cost: changed and suppressed values, IL1s, change in means and correlations."""

    records: int
    changed_records: int
    changed_values: dict[str, int]
    suppressed_values: dict[str, int]  # newly missing
    il1s: float | None  # Σ |x − x'| / (√2 · sd(x)) over continuous variables (sdcMicro dUtility "IL1s")
    mean_change: dict[str, float]  # relative change of each continuous variable's mean
    correlation_loss: float | None  # sdcMicro IL_correl, needs ≥ 2 continuous variables

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def il1s(x: np.ndarray, xm: np.ndarray) -> float:
    """sdcMicro dUtility(method="IL1s"): Σ_ij |x_ij − x'_ij| / (√2 · sd_j), missing skipped."""
    sd = np.nanstd(x, axis=0, ddof=1)
    return float(np.nansum(np.abs(x - xm) / (sd * np.sqrt(2))))


def il_correl(x: np.ndarray, xm: np.ndarray) -> float:
    """sdcMicro IL_correl: distance of the normalised diagonals of the inverse correlation matrices / √2."""

    def inverse_diagonal(m: np.ndarray) -> np.ndarray:
        complete = m[~np.isnan(m).any(axis=1)]
        try:
            d = np.diag(np.linalg.inv(np.corrcoef(complete, rowvar=False)))
        except np.linalg.LinAlgError as err:
            raise InvalidMicrodataInput("the correlation matrix cannot be inverted") from err
        return d / np.sqrt(np.sum(d**2))

    return float(np.sqrt(np.sum((inverse_diagonal(x) - inverse_diagonal(xm)) ** 2)) / np.sqrt(2))


def information_loss(
    original: Any, protected: Any, *, variables: Sequence[str], continuous: Sequence[str] = ()
) -> InformationLoss:
    """Compare `protected` with `original` (same records, same order) on `variables`."""
    before, after = to_polars(original), to_polars(protected)
    require_columns(before, [*variables, *continuous])
    require_columns(after, [*variables, *continuous])
    if before.height != after.height:
        raise InvalidMicrodataInput("original and protected data must have the same records in the same order")
    changed: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    any_change = np.zeros(before.height, dtype=bool)
    for v in dict.fromkeys([*variables, *continuous]):
        a, b = before[v], after[v]
        diff = (a.ne_missing(b) if a.dtype == b.dtype else a.cast(pl.String).ne_missing(b.cast(pl.String))).to_numpy()
        changed[v] = int(diff.sum())
        suppressed[v] = int((a.is_not_null() & b.is_null()).sum())
        any_change |= diff
    il, means, correl = None, {}, None
    if continuous:
        x = np.column_stack([before[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in continuous])
        xm = np.column_stack([after[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in continuous])
        il = il1s(x, xm)
        for j, c in enumerate(continuous):
            m0, m1 = np.nanmean(x[:, j]), np.nanmean(xm[:, j])
            means[c] = float((m1 - m0) / abs(m0)) if m0 else float(m1 - m0)
        if len(continuous) >= 2:
            correl = il_correl(x, xm)
    return InformationLoss(before.height, int(any_change.sum()), changed, suppressed, il, means, correl)
