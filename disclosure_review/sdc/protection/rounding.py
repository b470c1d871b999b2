"""Rounding of additive tables to a base.

* `round_to_base`: every interior cell (no total or sub-total in any
  dimension) is rounded to a multiple of `base` (to the nearest, halves up,
  or always up), then every margin and sub-total is recomputed as the sum of
  the rounded cells it covers. Margins are then additive but are not necessarily multiples of the
  base, and may differ from the rounded true margin: say so beside a
  released table ("totals are sums of rounded cells").
* `controlled_round`: every cell, margins included, is rounded to one of the
  two multiples of `base` next to it (multiples stay as they are) such that
  the rounded table is still additive, with the smallest total absolute
  change. Solved as a MILP with HiGHS: the choice up/down is binary y_j,
  ``r_j = base * floor(a_j / base) + base * y_j``, constraints ``M r = 0``,
  objective ``sum_j y_j (base - 2 (a_j mod base))`` (the absolute change
  minus a constant). Two-dimensional tables always have such a rounding
  (Cox 1987); three-dimensional ones may not, and then `RoundingInfeasible`
  is raised.
"""
from __future__ import annotations

import enum

import highspy
import numpy as np

from .audit import new_highs
from .table import LinkedTable


class RoundingInfeasible(RuntimeError):
    """No additive rounding to adjacent multiples of the base exists (or none found in time)."""


class RoundingMode(enum.Enum):
    NEAREST = "nearest"  # halves round up (2.5 -> 5 with base 5)
    UP = "up"


def _round_values(values: np.ndarray, base: float, mode: RoundingMode) -> np.ndarray:
    quotient = values / base
    if mode is RoundingMode.UP:
        return np.ceil(quotient - 1e-12) * base
    return np.floor(quotient + 0.5) * base


def _check_base(base: float) -> None:
    if not np.isfinite(base) or base <= 0:
        raise ValueError(f"rounding base must be a positive number, not {base!r}")


def round_to_base(
    table: LinkedTable, base: float = 5, mode: RoundingMode = RoundingMode.NEAREST
) -> LinkedTable:
    """Interior cells rounded to `base`, margins recomputed as sums of the rounded cells."""
    _check_base(base)
    leaves = np.where(table.is_interior(), _round_values(table.values, base, mode), 0.0)
    return table.with_values(table.aggregate(leaves).ravel())


def controlled_round(
    table: LinkedTable, base: float = 5, *, time_limit: float = 60.0
) -> LinkedTable:
    """Additive rounding of every cell, margins included, to an adjacent multiple of `base`."""
    _check_base(base)
    values = table.values
    floor = np.floor(values / base + 1e-9) * base
    remainder = values - floor
    exact = remainder <= 1e-9 * max(1.0, base)
    matrix = table.constraints().tocsc()
    n = table.n_cells
    # M r = 0 with r = floor + base * y  =>  M y = -M floor / base
    rhs = -(matrix @ floor) / base
    highs = new_highs()
    highs.setOptionValue("time_limit", float(time_limit))
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = matrix.shape[0]
    lp.col_cost_ = np.where(exact, 0.0, base - 2 * remainder)
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.where(exact, 0.0, 1.0)
    lp.row_lower_ = rhs
    lp.row_upper_ = rhs
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    highs.passModel(lp)
    highs.run()
    status = highs.getModelStatus()
    if highs.getInfo().primal_solution_status != 2:
        raise RoundingInfeasible(
            f"no controlled rounding to base {base:g} ({highs.modelStatusToString(status)}); "
            "use round_to_base, which always exists"
        )
    y = np.round(np.asarray(highs.getSolution().col_value))
    return table.with_values(floor + base * y)
