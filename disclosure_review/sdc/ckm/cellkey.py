"""Consistent perturbation of table cells by their record keys, as the R package `cellKey` does it.

Every record carries a key, uniform in [0, 1), drawn once. Keys are kept as 32-bit fixed-point
numbers (key = k / 2^32), so a cell's key, the fractional part of the sum of its records' keys,
is exact: the sum of the k modulo 2^32. The same records give the same cell key — and so the same
perturbation — in every table, margin or query that holds them: differencing two releases shows
the difference of two noises, not a hidden cell.

Counts (cellKey's `lookup_freq`): the row of the perturbation table for the cell's count (the last
row for counts at or above it); the deviation whose interval [p_int_lb, p_int_ub) holds the cell
key is added. Empty cells stay 0.

Magnitudes (cellKey's `top_contr` with the flex function): the `top_k` largest contributions x_j
each add noise scaled to them: x_delta_j = x_j · m(|x_j|) · epsilon_j, where m is p_small below
the flex point `fp` and falls towards p_large above it; the table row is |cell / x_delta_j| (cut at
D, interpolated between the table's classes) and the deviation is looked up by the j-th cell key.
The j-th key is the cell key's fixed-point number times an odd constant modulo 2^32 (a bijection,
so uniform too); cellKey scrambles decimal digits instead, so single values differ from cellKey's.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .ptable import PTable, PTableInvalid, parameters_from_dict

KEY_SCALE = 2**32  # a key is k / 2^32 with k a uint32
_KEY_MULTIPLIERS = (1, 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xD3A2646D, 0xFD7046C5)


def draw_record_keys(rows: int) -> np.ndarray:
    """`rows` record keys from the operating system's cryptographic source (fixed point, uint32)."""
    return np.frombuffer(os.urandom(4 * rows), dtype=np.uint32).copy()


def cell_keys(key_sums: np.ndarray) -> np.ndarray:
    """Cell keys in [0, 1) from each cell's sum of record keys (fixed point, any unsigned width)."""
    return (np.asarray(key_sums, dtype=np.uint64) % np.uint64(KEY_SCALE)).astype(np.float64) / KEY_SCALE


def kth_keys(key_sums: np.ndarray, k: int) -> np.ndarray:
    """The keys of the `k` largest contributions of each cell ([cells, k]): the first is the cell key."""
    if not 1 <= k <= len(_KEY_MULTIPLIERS):
        raise ValueError(f"top_k must be 1 to {len(_KEY_MULTIPLIERS)}")
    fixed = np.asarray(key_sums, dtype=np.uint64) % np.uint64(KEY_SCALE)
    columns = [(fixed * np.uint64(m)) % np.uint64(KEY_SCALE) for m in _KEY_MULTIPLIERS[:k]]
    return np.stack(columns, axis=1).astype(np.float64) / KEY_SCALE


def _one_kind(table: PTable) -> None:
    """cellKey picks among even/odd/small_cells tables by the cell; here a table is of one kind."""
    kinds = sorted(set(table.type))
    if len(kinds) != 1:
        raise PTableInvalid("ckm_one_type", types=kinds)


def _lookup(table: PTable, row: float, keys: np.ndarray) -> np.ndarray:
    """The deviation of row `row` whose interval holds each key."""
    at = table.i == row
    ub, v = table.p_int_ub[at], table.v[at]
    return v[np.minimum(np.searchsorted(ub, keys, side="right"), len(v) - 1)]


def perturb_counts(counts: np.ndarray, keys: np.ndarray, table: PTable) -> np.ndarray:
    """The deviation added to each count (0 for empty cells), looked up by its cell key."""
    _one_kind(table)
    counts = np.asarray(counts, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.float64)
    top = int(table.classes.max())
    rows = np.minimum(counts, top)
    deviation = np.zeros(len(counts), dtype=np.int64)
    for row in np.unique(rows[rows > 0]):
        at = rows == row
        deviation[at] = _lookup(table, float(row), keys[at]).astype(np.int64)
    return deviation


@dataclasses.dataclass(frozen=True)
class MagnitudeParams:
    """cellKey's `ck_params_nums(type = "top_contr")` with `ck_flexparams`: the noise of a magnitude table.

    `fp`: flex point; `p_small`, `p_large`: the noise as a share of a contribution below and far above it;
    `q`: how fast it falls; `epsilon`: one factor per top contribution, the first 1, falling;
    `mu_c`: extra deviation for cells marked sensitive."""

    top_k: int = 3
    fp: float = 1000.0
    p_small: float = 0.20
    p_large: float = 0.03
    q: float = 2.0
    epsilon: tuple[float, ...] = (1.0, 0.5, 0.3)
    mu_c: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or not 1 <= self.top_k <= len(_KEY_MULTIPLIERS):
            raise PTableInvalid("ptable_param_whole", name="top_k", value=repr(self.top_k), least=1)
        for name in ("fp", "q"):
            if not _positive(getattr(self, name)):
                raise PTableInvalid("ptable_param_positive", name=name, value=repr(getattr(self, name)))
        for name in ("p_small", "p_large"):
            if not (_positive(getattr(self, name)) and getattr(self, name) < 1):
                raise PTableInvalid("ptable_param_range", name=name, value=repr(getattr(self, name)), low="0", high="1")
        if self.p_large > self.p_small:
            raise PTableInvalid("ckm_p_large", p_small=self.p_small, p_large=self.p_large)
        eps = tuple(self.epsilon)
        if (len(eps) != self.top_k or eps[0] != 1 or any(not _positive(e) or e > 1 for e in eps)
                or any(b > a for a, b in zip(eps, eps[1:]))):
            raise PTableInvalid("ckm_epsilon", top_k=self.top_k, epsilon=list(eps))
        if not (isinstance(self.mu_c, (int, float)) and math.isfinite(self.mu_c) and self.mu_c >= 0):
            raise PTableInvalid("ckm_param_nonnegative", name="mu_c", value=repr(self.mu_c))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"epsilon": list(self.epsilon)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MagnitudeParams:
        return parameters_from_dict(cls, data)


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def flex_share(x: np.ndarray, params: MagnitudeParams) -> np.ndarray:
    """The noise as a share of a contribution of size |x| (cellKey's flex function; p_small below fp)."""
    fp, small, large = params.fp, params.p_small, params.p_large
    f1 = (small * x - large * fp) / (large * fp)
    f2 = (2 * fp / (fp + x)) ** params.q
    return np.where(x < fp, small, large * (1 + f1 * f2))


def _lookup_magnitude(table: PTable, a: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The deviation for row a (cut at the last class, interpolated linearly between classes)."""
    classes = table.classes
    a = np.minimum(a, classes[-1])
    upper = np.clip(np.searchsorted(classes, a, side="left"), 0, len(classes) - 1)
    lower = np.where(classes[upper] == a, upper, np.maximum(upper - 1, 0))
    looked = np.stack([_lookup(table, float(c), keys) for c in classes])  # [classes, cells]
    cells = np.arange(len(a))
    v_low, v_up = looked[lower, cells], looked[upper, cells]
    span = classes[upper] - classes[lower]
    weight = np.divide(a - classes[lower], span, out=np.zeros(len(a)), where=span > 0)
    return (1 - weight) * v_low + weight * v_up


def perturb_magnitudes(values: np.ndarray, top: np.ndarray, keys: np.ndarray, table: PTable,
                       params: MagnitudeParams, sensitive: np.ndarray | None = None) -> np.ndarray:
    """The deviation added to each magnitude cell.

    `values`: the cells' totals; `top`: [cells, top_k] their largest contributions by absolute value (NaN where a
    cell has fewer); `keys`: [cells, top_k] from `kth_keys`; `sensitive`: cells that get `mu_c` more."""
    _one_kind(table)
    values = np.asarray(values, dtype=np.float64)
    current = values.copy()
    mu = np.where(sensitive, params.mu_c, 0.0) if sensitive is not None else np.zeros(len(values))
    for j in range(params.top_k):
        x = top[:, j] if j < top.shape[1] else np.full(len(values), np.nan)
        active = ~np.isnan(x) & (values != 0) & (current != 0)
        x = np.where(active, x, 0.0)
        ax = np.abs(x)
        delta = np.where(ax < params.fp, x * params.p_small, x * flex_share(ax, params) * params.epsilon[j])
        delta = np.where(np.abs(current) < np.abs(delta), current, delta)  # never more than what is left
        a = np.divide(np.abs(current), np.abs(delta), out=np.zeros(len(values)), where=delta != 0)
        v = _lookup_magnitude(table, a, keys[:, j])
        sign = np.where(current >= 0, 1.0, -1.0)
        hat = sign * np.abs(delta) * np.where(v >= 0, 1.0, -1.0) * (mu + np.abs(v))  # v = 0 counts as up (mu_c)
        # a negative deviation never moves the value past zero
        hat = np.where((v < 0) & (current < 0), np.minimum(hat, -current), hat)
        hat = np.where((v < 0) & (current > 0), np.maximum(hat, -current), hat)
        current = current + np.where(active, hat, 0.0)
    return current - values


@dataclasses.dataclass(frozen=True)
class InformationLoss:
    """How far the released cells are from the computed ones."""

    cells: int
    changed: int
    mean_absolute_deviation: float
    mean_relative_deviation: float | None  # over cells whose computed value is not 0
    max_absolute_deviation: float

    @property
    def share_changed(self) -> float:
        return self.changed / self.cells if self.cells else 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"share_changed": self.share_changed}


def information_loss(original: Sequence[float], released: Sequence[float]) -> InformationLoss:
    original = np.asarray(original, dtype=np.float64)
    deviation = np.abs(np.asarray(released, dtype=np.float64) - original)
    nonzero = original != 0
    relative = float(np.mean(deviation[nonzero] / np.abs(original[nonzero]))) if nonzero.any() else None
    return InformationLoss(
        cells=len(original), changed=int(np.count_nonzero(deviation > 1e-9 * np.maximum(1.0, np.abs(original)))),
        mean_absolute_deviation=float(deviation.mean()) if len(original) else 0.0,
        mean_relative_deviation=relative, max_absolute_deviation=float(deviation.max()) if len(original) else 0.0)
