"""Individual risk (Benedetti–Franconi), global risk, expected re-identifications, household risk.

Formulas of sdcMicro v5.8.1 indivRisk(), measure_risk(); see
docs/reference/record-level-risk.md.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ._data import InvalidMicrodataInput
from ._params import member, number_in
from .frequencies import Frequencies


class RiskMethod(enum.Enum):
    """Benedetti–Franconi estimator: closed-form approximation or the exact series."""

    APPROX = "approx"
    EXACT = "exact"


def _approx(fk: np.ndarray, pk: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = pk / (1.0 - pk)
        r1 = ratio * np.log(1.0 / pk)
        r2 = ratio - ratio**2 * np.log(1.0 / pk)
        r3 = pk / (fk - (1.0 - pk))
    return np.where(fk == 1, r1, np.where(fk == 2, r2, r3))


def _exact_series(f: int, pk: np.ndarray) -> np.ndarray:
    """The exact estimator for f_k = f > 2 (sdcMicro indivRisk method='exact')."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        a = (pk ** (1 - f) - 1) / (f - 1)
        bb = np.zeros_like(pk)
        b = np.ones_like(pk)
        for m in range(f - 2):  # m = 0 .. f-3; b is the running product of B(i), i <= m
            b = b * ((f - 1 - m) ** 2 / ((m + 1) * (f - 2 - m)) * (pk ** (m + 2 - f) - 1) / (pk ** (m + 1 - f) - 1))
            bb = bb + (-1) ** (m + 1) * b
        return (pk / (1 - pk)) ** f * (a * (1 + bb) + (-1) ** f * np.log(pk))


def individual_risk(
    freq: Frequencies, *, method: RiskMethod = RiskMethod.APPROX, qual: float = 1.0, survey: bool = True
) -> np.ndarray:
    """Per-record re-identification risk r_k.

    sdcMicro: indivRisk(freqCalc(...), method, qual, survey). With survey=False
    r = 1/f_k; unweighted frequencies (F_k = f_k) give qual/f_k.
    Where the exact series overflows (large f_k, small p_k, where sdcMicro
    returns NaN) the approximation is used.
    """
    if freq.pattern is not None:  # once per key pattern, then gathered per record
        used = freq.pattern_fk > 0  # radix patterns that no record has: f_k = 0
        per_pattern = np.zeros(freq.pattern_fk.shape[0])
        per_pattern[used] = risk_of(freq.pattern_fk[used], freq.pattern_Fk[used], method, qual, survey)
        return per_pattern[freq.pattern]
    return risk_of(freq.fk, freq.Fk, method, qual, survey)


def risk_of(fk: np.ndarray, Fk: np.ndarray, method: RiskMethod, qual: float, survey: bool) -> np.ndarray:
    """Risk for given f_k and F_k arrays (per record or per key combination)."""
    qual = number_in(qual, "qual", 0.0, low_open=True)
    method = member(method, RiskMethod, "method")
    if not survey:
        return 1.0 / fk
    pk = fk / Fk
    risk = _approx(fk, pk)
    if method is RiskMethod.EXACT:
        big = fk > 2
        for f in np.unique(fk[big]).astype(int):
            rows = np.flatnonzero(fk == f)
            exact = _exact_series(int(f), pk[rows])
            risk[rows] = np.where(np.isfinite(exact), exact, risk[rows])
    same = fk == Fk
    risk[same] = 1.0 / fk[same]
    return risk * qual


@dataclass(frozen=True)
class GlobalRisk:
    """Expected number of re-identifications and global risk (sdcMicro measure_risk)."""

    expected_reidentifications: float
    global_risk: float
    n: int
    risky_records: int
    household_expected_reidentifications: float | None = None
    household_risk: float | None = None

    @property
    def global_risk_pct(self) -> float:
        return 100.0 * self.global_risk

    @property
    def household_risk_pct(self) -> float | None:
        return None if self.household_risk is None else 100.0 * self.household_risk


def weighted_median(x: np.ndarray, counts: np.ndarray | None = None) -> float:
    """np.median of `x` with each value repeated `counts` times (integer counts), without repeating it."""
    if counts is None:
        return float(np.median(x))
    order = np.argsort(x, kind="stable")
    x, ends = x[order], np.cumsum(counts[order])
    n = int(ends[-1])
    lower, upper = np.searchsorted(ends, [(n - 1) // 2, n // 2], side="right")
    return float((x[lower] + x[upper]) / 2)


def mad(x: np.ndarray, counts: np.ndarray | None = None) -> float:
    """R's mad(): median absolute deviation scaled by 1.4826 (values repeated `counts` times)."""
    return float(1.4826 * weighted_median(np.abs(x - weighted_median(x, counts)), counts))


def risky_mask(
    risk: np.ndarray, *, mad_factor: float = 2.0, floor: float = 0.1, counts: np.ndarray | None = None
) -> np.ndarray:
    """Records whose risk exceeds median + mad_factor·MAD and `floor` (sdcMicro's print of an sdcMicroObj)."""
    return (risk > weighted_median(risk, counts) + mad_factor * mad(risk, counts)) & (risk > floor)


def household_risk(risk: np.ndarray, household: np.ndarray) -> np.ndarray:
    """Per-record household risk 1 − ∏(1 − r_j) over the record's household (sdcMicro, fast_hier)."""
    household = np.asarray(household)
    if household.shape != risk.shape:
        raise InvalidMicrodataInput("household ids and risks differ in length")
    _, inverse = np.unique(household, return_inverse=True)
    with np.errstate(divide="ignore"):
        log_safe = np.log1p(-np.clip(risk, 0.0, 1.0))
    sums = np.bincount(inverse, weights=log_safe)
    return 1.0 - np.exp(sums)[inverse]


def global_risk(
    risk: np.ndarray,
    *,
    household: np.ndarray | None = None,
    mad_factor: float = 2.0,
    records: np.ndarray | None = None,
) -> GlobalRisk:
    """ER = Σ r_i, global risk = ER / n; with households also the hierarchical versions.

    `records`: `risk` is per key combination and this many records share each value
    (household risk then needs per-record risks and is refused).
    """
    if records is not None and household is not None:
        raise InvalidMicrodataInput("household risk needs the risk of every record, not per key combination")
    risk = np.asarray(risk, dtype=np.float64)
    if risk.ndim != 1 or risk.size == 0:
        raise InvalidMicrodataInput("give one risk per record (or per key combination with `records`): none was given")
    if records is not None and np.shape(records) != risk.shape:
        raise InvalidMicrodataInput("give one record count per key combination in `records`, as many as risks")
    mad_factor = number_in(mad_factor, "mad_factor", 0.0)
    counts = np.ones_like(risk) if records is None else records
    n = int(counts.sum())
    er = float(np.nansum(risk * counts))
    hh_er = hh = None
    if household is not None:
        hr = household_risk(risk, household)
        hh_er = float(np.nansum(hr))
        hh = hh_er / n
    risky = risky_mask(risk, mad_factor=mad_factor, counts=records)
    return GlobalRisk(er, er / n, n, int(counts[risky].sum()), hh_er, hh)
