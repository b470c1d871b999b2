"""Independent reference: feasible intervals by scipy's linprog on the plain formulation.

Variables are the cell values themselves (not deviations), constraints are
written out cell by cell from the dense array, nothing is reduced or
warm-started: a separate path to the same numbers as the audit.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import linprog

from disclosure_review.sdc.protection import LinkedTable


def additivity_rows(shape: tuple[int, ...]) -> np.ndarray:
    """Dense rows: for each axis and each index of the other axes, total - sum(parts)."""
    rows = []
    for axis, m in enumerate(shape):
        others = [range(s) for a, s in enumerate(shape) if a != axis]
        for rest in itertools.product(*others):
            row = np.zeros(shape)
            for level in range(m):
                index = list(rest)
                index.insert(axis, level)
                row[tuple(index)] = 1.0 if level == m - 1 else -1.0
            rows.append(row.ravel())
    return np.array(rows)


def reference_intervals(
    table: LinkedTable, suppressed: np.ndarray, rows: np.ndarray | None = None
) -> dict[int, tuple[float, float]]:
    """Intervals of the suppressed cells; `rows` default to the flat table's sums."""
    values = table.values
    equalities = additivity_rows(table.shape) if rows is None else rows
    bounds = [
        (table.lower_bounds[j], None if np.isinf(table.upper_bounds[j]) else table.upper_bounds[j])
        if suppressed[j]
        else (values[j], values[j])
        for j in range(values.size)
    ]
    out = {}
    for cell in np.flatnonzero(suppressed):
        extremes = []
        for sign in (1.0, -1.0):
            cost = np.zeros(values.size)
            cost[cell] = sign
            result = linprog(cost, A_eq=equalities, b_eq=np.zeros(len(equalities)), bounds=bounds)
            if result.status == 3:  # unbounded
                extremes.append(-sign * np.inf)
            else:
                assert result.status == 0, result.message
                extremes.append(sign * result.fun)
        out[int(cell)] = (extremes[0], extremes[1])
    return out


def protected(
    table: LinkedTable, suppressed: np.ndarray, lower, upper, sliding, tol=1e-6, rows=None
) -> bool:
    """Every primary cell suppressed and meeting its (bound-capped) levels; no suppressed cell exact."""
    if (table.unsafe & ~suppressed).any():
        return False
    room_down = table.values - table.lower_bounds
    room_up = table.upper_bounds - table.values
    for cell, (low, high) in reference_intervals(table, suppressed, rows).items():
        value = table.values[cell]
        if high - low <= tol:
            return False
        if table.unsafe[cell] and not (
            high - value >= min(upper[cell], room_up[cell]) - tol
            and value - low >= min(lower[cell], room_down[cell]) - tol
            and high - low >= min(sliding[cell], room_up[cell] + room_down[cell]) - tol
        ):
            return False
    return True
