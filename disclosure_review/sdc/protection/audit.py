"""Audit of a suppression pattern: the feasible interval (秘匿インターバル) of every suppressed cell.

An intruder who sees the published cells knows that the suppressed ones
satisfy the additivity constraints of the table and the a-priori bounds. The
smallest and largest value a suppressed cell can take under those constraints
are two linear programs (minimise / maximise the cell):

    min / max  y_i   subject to  M y = 0,
                                 y_j = a_j                for published cells,
                                 lb_j <= y_j <= ub_j      for suppressed cells.

We solve them in deviations ``z = y - a`` (so ``M z = 0``, published ``z_j =
0``, suppressed ``-(a_j - lb_j) <= z_j <= ub_j - a_j``) with HiGHS, and read
the reduced costs of every cell at the optimum: they give a Benders
("attacker") cut used by the optimal secondary suppression (see
`cut_coefficients`). The intervals are those of the linear relaxation; an
intruder who also uses integrality of counts may narrow them slightly, as
with tau-Argus and sdcTable.
"""
from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Sequence

import highspy
import numpy as np

try:  # the bare solver: no Python callback layer, no banner on stdout
    from highspy._core import _Highs as HighsEngine
except ImportError:  # pragma: no cover - other highspy layouts
    HighsEngine = highspy.Highs
import polars as pl

from ..enums import Verdict
from .errors import SolverFailure
from .levels import ProtectionLevels
from .table import LinkedTable

log = logging.getLogger(__name__)

PRIMAL_SIMPLEX = 4
# Reduced costs below this are solver noise.
DUAL_TOLERANCE = 1e-9


UNBOUNDED = (
    highspy.HighsModelStatus.kUnbounded,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,
)


class IntervalStatus(enum.Enum):
    """What the audit concluded for one suppressed cell."""

    PROTECTED = "protected"
    TOO_NARROW = "too_narrow"  # recomputable to within less than its protection level
    RECOMPUTABLE = "recomputable"  # interval of width 0: the value is disclosed exactly
    UNDECIDED = "undecided"  # the solver gave no answer: a reviewer must look


class Direction(enum.Enum):
    UP = 1
    DOWN = -1


def new_highs() -> highspy.Highs:
    """A silent, single-threaded HiGHS instance (the machines are shared)."""
    highs = HighsEngine()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    return highs


def tolerance(table: LinkedTable) -> float:
    """Absolute tolerance for interval comparisons, relative to the table's scale."""
    return 1e-7 * max(1.0, float(np.abs(table.values).max()))


class IntervalSolver:
    """The attacker LPs of one table; a pattern change rebuilds a small HiGHS model.

    The model holds only the suppressed cells (published ones are fixed at
    deviation 0) and the sums they appear in, so it stays small however big
    the table; the two solves per cell warm-start from each other. Reduced
    costs of published cells come from the row duals: ``d = c - M^T y``.
    """

    def __init__(self, table: LinkedTable) -> None:
        self.table = table
        self.room_down = table.values - table.lower_bounds
        self.room_up = table.upper_bounds - table.values
        self.matrix = table.constraints().tocsc()
        self.matrix_t = self.matrix.T.tocsr()
        self.highs = new_highs()
        # Presolve would throw away the basis that warm-starts the second solve.
        self.highs.setOptionValue("presolve", "off")
        # Only the cost changes between solves: the last basis stays primal feasible.
        self.highs.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)
        self.inf = self.highs.getInfinity()
        self.pattern = np.zeros(table.n_cells)
        self._columns = np.zeros(0, dtype=np.int64)
        self._rows = np.zeros(0, dtype=np.int64)
        self._position: dict[int, int] = {}
        self._stale = True
        self._objective: int | None = None
        # Cells moved by the last optimal solution: a pattern change that
        # fixes none of them leaves that optimum unchanged.
        self.last_support = np.zeros(0, dtype=np.int64)

    def set_pattern(self, pattern: np.ndarray) -> None:
        """Suppressed cells (True, or a fraction in (0, 1]) get their a-priori room times it.

        Fractions are for separating cuts at a fractional point of the
        optimal method's LP relaxation; audits use booleans.
        """
        scale = np.asarray(pattern, dtype=float)
        if np.array_equal(scale, self.pattern):
            return
        if not self._stale and np.isin(np.flatnonzero(scale > 0), self._columns).all():
            # Only cells already in the model change: new bounds keep the basis.
            changed = np.flatnonzero(scale[self._columns] != self.pattern[self._columns])
            lower, upper = self._bounds(self._columns[changed], scale)
            self.highs.changeColsBounds(changed.size, changed.astype(np.int32), lower, upper)
        else:
            self._stale = True
        self.pattern = scale.copy()

    def _bounds(self, cells: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Deviation bounds of `cells`: their room times the scale (0 when published)."""
        on = scale[cells] > 0
        with np.errstate(invalid="ignore"):
            lower = np.where(on, -np.minimum(self.room_down[cells] * scale[cells], self.inf), 0.0)
            upper = np.where(on, np.minimum(self.room_up[cells] * scale[cells], self.inf), 0.0)
        return lower, upper

    def _build(self) -> None:
        columns = np.flatnonzero(self.pattern > 0)
        sub = self.matrix[:, columns]
        rows = np.flatnonzero(np.diff(sub.tocsr().indptr) > 0)
        sub = sub[rows, :].tocsc()
        lp = highspy.HighsLp()
        lp.num_col_ = columns.size
        lp.num_row_ = rows.size
        lp.col_cost_ = np.zeros(columns.size)
        lp.col_lower_, lp.col_upper_ = self._bounds(columns, self.pattern)
        lp.row_lower_ = np.zeros(rows.size)
        lp.row_upper_ = np.zeros(rows.size)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = sub.indptr.astype(np.int32)
        lp.a_matrix_.index_ = sub.indices.astype(np.int32)
        lp.a_matrix_.value_ = sub.data.astype(float)
        self.highs.clearModel()
        self.highs.passModel(lp)
        self._columns, self._rows = columns, rows
        self._position = {int(c): k for k, c in enumerate(columns)}
        self._objective = None
        self._stale = False

    def extreme(
        self, cell: int, direction: Direction, *, duals: bool = True
    ) -> tuple[float, np.ndarray | None]:
        """How far cell `cell` can move in `direction` (>= 0, may be inf), and reduced costs.

        Reduced costs (one per cell of the table) are those of ``min -z_i``
        (UP) or ``min z_i`` (DOWN); None when the move is unbounded or
        `duals` is False.
        """
        if self.pattern[cell] <= 0:
            self.last_support = np.zeros(0, dtype=np.int64)
            return 0.0, None
        if self._stale:
            self._build()
        col = self._position[cell]
        if self._objective is not None and self._objective != col:
            self.highs.changeColCost(self._objective, 0.0)
        sign = -1.0 if direction is Direction.UP else 1.0
        self.highs.changeColCost(col, sign)
        self._objective = col
        self.highs.run()
        status = self.highs.getModelStatus()
        if status not in UNBOUNDED and status != highspy.HighsModelStatus.kOptimal:
            self.highs.clearSolver()  # retry once from scratch
            self.highs.run()
            status = self.highs.getModelStatus()
        if status in UNBOUNDED:
            # z = 0 is always feasible, so "unbounded or infeasible" is unbounded.
            self.last_support = self._columns
            return float("inf"), None
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolverFailure(
                f"HiGHS ended the interval LP for cell {self.table.key(cell)} with "
                f"{self.highs.modelStatusToString(status)}"
            )
        move = max(-self.highs.getInfo().objective_function_value, 0.0)
        solution = self.highs.getSolution()
        z = np.asarray(solution.col_value)
        self.last_support = self._columns[np.abs(z) > DUAL_TOLERANCE]
        if not duals:
            return move, None
        row_dual = np.zeros(self.matrix.shape[0])
        row_dual[self._rows] = solution.row_dual
        reduced = -(self.matrix_t @ row_dual)
        reduced[cell] += sign
        return move, reduced

    def interval(self, cell: int) -> tuple[float, float]:
        """(low, high) of one cell under the current pattern."""
        value = self.table.values[cell]
        up, _ = self.extreme(cell, Direction.UP)
        down, _ = self.extreme(cell, Direction.DOWN)
        return value - down, value + up

    def cut_coefficients(self, reduced: np.ndarray) -> np.ndarray:
        """Coefficients c of the attacker cut ``sum_j c_j x_j >= level`` from one LP's reduced costs.

        By LP duality the move found equals ``sum_j c_j x_j`` over the current
        suppressed cells, with ``c_j = d_j * (a_j - lb_j)`` when ``d_j > 0``
        and ``-d_j * (ub_j - a_j)`` otherwise; the same dual solution bounds
        the move of any other pattern x (weak duality), so every protecting
        pattern satisfies the cut. Infinite coefficients mean "suppressing j
        alone suffices".
        """
        d = np.where(np.abs(reduced) > DUAL_TOLERANCE, reduced, 0.0)
        with np.errstate(invalid="ignore"):
            coef = np.where(d > 0, d * self.room_down, -d * self.room_up)
        return np.nan_to_num(coef, nan=0.0, posinf=np.inf)


@dataclasses.dataclass(frozen=True)
class CellInterval:
    """The feasible interval of one suppressed cell against its protection level."""

    cell: int
    key: dict[str, str]
    value: float
    primary: bool
    low: float
    high: float
    required_lower: float
    required_upper: float
    required_width: float
    status: IntervalStatus

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """Per-cell intervals of a pattern and the verdict on it.

    `verdict` is FAIL when an unsafe cell is published or any suppressed cell
    is TOO_NARROW or RECOMPUTABLE, REVIEW when a solve gave no answer, PASS
    otherwise.
    """

    verdict: Verdict
    intervals: tuple[CellInterval, ...]
    published_unsafe: tuple[dict[str, str], ...]
    dims: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def failing(self) -> tuple[CellInterval, ...]:
        return tuple(c for c in self.intervals if c.status is not IntervalStatus.PROTECTED)

    def frame(self) -> pl.DataFrame:
        """One row per suppressed cell: its labels, value, interval, levels and status."""
        schema = {d: pl.String for d in self.dims} | {
            "value": pl.Float64,
            "primary": pl.Boolean,
            "low": pl.Float64,
            "high": pl.Float64,
            "width": pl.Float64,
            "required_lower": pl.Float64,
            "required_upper": pl.Float64,
            "required_width": pl.Float64,
            "status": pl.String,
        }
        rows = [
            {
                **c.key,
                "value": c.value,
                "primary": c.primary,
                "low": c.low,
                "high": c.high,
                "width": c.width,
                "required_lower": c.required_lower,
                "required_upper": c.required_upper,
                "required_width": c.required_width,
                "status": c.status.value,
            }
            for c in self.intervals
        ]
        return pl.DataFrame(rows, schema=schema, orient="row")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: infinite or undecided interval ends become None (no finite limit / unknown)."""

        def number(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "verdict": self.verdict.value,
            "summary": self.summary(),
            "published_unsafe": [dict(k) for k in self.published_unsafe],
            "cells": [
                {
                    "key": dict(c.key),
                    "value": c.value,
                    "primary": c.primary,
                    "low": number(c.low),
                    "high": number(c.high),
                    "required_lower": c.required_lower,
                    "required_upper": c.required_upper,
                    "required_width": c.required_width,
                    "status": c.status.value,
                }
                for c in self.intervals
            ],
        }

    def summary(self) -> str:
        counts = {s: 0 for s in IntervalStatus}
        for c in self.intervals:
            counts[c.status] += 1
        parts = [f"{n} {s.value}" for s, n in counts.items() if n]
        text = f"{self.verdict.value}: {len(self.intervals)} suppressed cells ({', '.join(parts) or 'none'})"
        if self.published_unsafe:
            text += f"; {len(self.published_unsafe)} unsafe cells published"
        return text


def judge(
    value: float,
    low: float,
    high: float,
    levels: ProtectionLevels,
    cell: int,
    tol: float,
) -> IntervalStatus:
    """Compare one interval with its (effective) protection levels."""
    if high - low <= tol:
        return IntervalStatus.RECOMPUTABLE
    ok = (
        high - value >= levels.upper[cell] - tol
        and value - low >= levels.lower[cell] - tol
        and high - low >= levels.sliding[cell] - tol
    )
    return IntervalStatus.PROTECTED if ok else IntervalStatus.TOO_NARROW


def audit(
    table: LinkedTable,
    suppressed: np.ndarray,
    levels: ProtectionLevels | None = None,
    *,
    solver: IntervalSolver | None = None,
) -> AuditReport:
    """Feasible interval of every suppressed cell of `table` under pattern `suppressed`.

    `levels` default to none (then only exact recomputation and published
    unsafe cells fail). Levels are capped by the a-priori bounds
    (`ProtectionLevels.effective`).
    """
    suppressed = np.asarray(suppressed, dtype=bool).ravel()
    if suppressed.size != table.n_cells:
        raise ValueError(f"pattern has {suppressed.size} entries for {table.n_cells} cells")
    levels = (levels or ProtectionLevels.explicit(table)).effective(table)
    solver = solver or IntervalSolver(table)
    solver.set_pattern(suppressed)
    tol = tolerance(table)
    intervals = [exact_interval(table, solver, int(cell), levels, tol) for cell in np.flatnonzero(suppressed)]
    published_unsafe = tuple(
        table.key(int(c)) for c in np.flatnonzero(table.unsafe & ~suppressed)
    )
    return AuditReport(
        verdict=verdict_of(intervals, published_unsafe),
        intervals=tuple(intervals),
        published_unsafe=published_unsafe,
        dims=table.dims,
    )


def exact_interval(
    table: LinkedTable, solver: IntervalSolver, cell: int, levels: ProtectionLevels, tol: float
) -> CellInterval:
    """The interval of one cell under the solver's pattern (UNDECIDED when the solver gives no answer)."""
    value = float(table.values[cell])
    try:
        low, high = solver.interval(cell)
        status = judge(value, low, high, levels, cell, tol)
    except SolverFailure as exc:
        log.warning("interval audit undecided for cell %d: %s", cell, exc)
        low, high, status = float("nan"), float("nan"), IntervalStatus.UNDECIDED
    return cell_interval(table, cell, low, high, levels, status)


def cell_interval(
    table: LinkedTable, cell: int, low: float, high: float, levels: ProtectionLevels, status: IntervalStatus
) -> CellInterval:
    return CellInterval(
        cell=cell,
        key=table.key(cell),
        value=float(table.values[cell]),
        primary=bool(table.unsafe[cell]),
        low=low,
        high=high,
        required_lower=float(levels.lower[cell]),
        required_upper=float(levels.upper[cell]),
        required_width=float(levels.sliding[cell]),
        status=status,
    )


def verdict_of(intervals: Sequence[CellInterval], published_unsafe: Sequence[object]) -> Verdict:
    """FAIL for a published unsafe cell or a narrow or recomputable interval, REVIEW for an undecided one."""
    statuses = {c.status for c in intervals}
    if published_unsafe or statuses & {IntervalStatus.TOO_NARROW, IntervalStatus.RECOMPUTABLE}:
        return Verdict.FAIL
    if IntervalStatus.UNDECIDED in statuses:
        return Verdict.REVIEW
    return Verdict.PASS
