"""Secondary cell suppression: protect primary-unsafe cells against recomputation.

Two methods, both ending with a full interval audit (`audit.audit`) that the
returned pattern passes, or raising `SuppressionInfeasible`:

* `suppress_hypercube` (fast heuristic). For each primary cell that is not yet
  protected, suppress the cheapest hypercube (2^k cells: the primary cell and
  one other level in every dimension, margins allowed) whose corners leave
  enough room to move the primary cell by its protection levels; such a
  hypercube protects the cell on its own, whatever else is published. If no
  hypercube suffices (or the table has sub-totals), cells are added greedily
  by the attacker LP's reduced costs until the cell is protected. Then
  secondary cells no primary needs are published again (pruning).
* `suppress_optimal` (exact). A mixed-integer program over binary x_j (1 =
  suppress) minimising ``sum w_j x_j`` with x_j = 1 for primary cells,
  solved by HiGHS in a constraint-generation loop in the manner of
  Fischetti and Salazar: first separate attacker cuts at fractional points of
  the LP relaxation, then solve the MILP, audit the pattern with the attacker
  LPs, add a Benders cut ``sum_j c_j x_j >= level`` for every cell and
  direction that is not protected, repeat until the pattern passes. Every
  cut is valid for every protecting pattern, so the first pattern that passes
  is optimal (within HiGHS's MIP gap); greedy repairs of failed patterns give
  upper bounds, returned when the time limit ends the loop.

Both finally publish again any secondary cell whose value the intruder could
recompute exactly: it adds no protection.
"""
from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import time
from collections.abc import Iterable

import highspy
import numpy as np
import polars as pl

from .audit import (
    AuditReport,
    Direction,
    IntervalSolver,
    IntervalStatus,
    audit,
    new_highs,
    tolerance,
)
from .errors import SolverFailure, SuppressionInfeasible
from .hierarchical import certified_audit, protect
from .levels import ProtectionLevels
from .table import LinkedTable

log = logging.getLogger(__name__)

MIP_RELATIVE_GAP = 1e-6


class SuppressionMethod(enum.Enum):
    OPTIMAL = "optimal"
    HYPERCUBE = "hypercube"
    HIERARCHICAL = "hierarchical"  # large hierarchical tables: hypercubes of flows, certified audit


class CostFunction(enum.Enum):
    """What secondary suppression minimises."""

    CELLS = "cells"  # the number of suppressed cells
    VALUE = "value"  # the suppressed total: |value| + 1 per cell (+1 so zeros are not free)


class CellStatus(enum.Enum):
    PUBLISHED = "published"
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclasses.dataclass(frozen=True, eq=False)
class SuppressionResult:
    """A suppression pattern with its audit.

    `optimal` is True only for `suppress_optimal` results proven optimal;
    `lower_bound` is the MILP's bound on the cost of any protecting pattern.
    """

    table: LinkedTable
    suppressed: np.ndarray
    method: SuppressionMethod
    audit: AuditReport
    cost: float
    optimal: bool
    lower_bound: float | None
    rounds: int
    seconds: float

    @property
    def n_primary(self) -> int:
        return int((self.suppressed & self.table.unsafe).sum())

    @property
    def n_secondary(self) -> int:
        return int((self.suppressed & ~self.table.unsafe).sum())

    def statuses(self) -> list[CellStatus]:
        return [
            CellStatus.PRIMARY if u else CellStatus.SECONDARY if s else CellStatus.PUBLISHED
            for s, u in zip(self.suppressed, self.table.unsafe)
        ]

    def frame(self) -> pl.DataFrame:
        """The table's cells with `status` and `published` (null where suppressed)."""
        frame = self.table.frame()
        return frame.with_columns(
            pl.Series("status", [s.value for s in self.statuses()], dtype=pl.String),
            pl.Series(
                "published",
                np.where(self.suppressed, np.nan, self.table.values),
                dtype=pl.Float64,
            ).fill_nan(None),
        )


def cell_weights(
    table: LinkedTable, cost: CostFunction, weights: np.ndarray | None = None
) -> np.ndarray:
    """Cost of suppressing each cell; explicit `weights` (positive) win over `cost`."""
    if weights is not None:
        w = np.asarray(weights, dtype=float).ravel()
        if w.size != table.n_cells or not np.isfinite(w).all() or (w <= 0).any():
            raise ValueError("weights must be positive and finite, one per cell")
        return w
    if cost is CostFunction.CELLS:
        return np.ones(table.n_cells)
    return np.abs(table.values) + 1.0


def requirements(table: LinkedTable, levels: ProtectionLevels) -> ProtectionLevels:
    """Effective levels; a primary cell with no level must at least not be recomputable."""
    eff = levels.effective(table)
    room = (table.values - table.lower_bounds) + (table.upper_bounds - table.values)
    bare = table.unsafe & ~eff.required()
    floor = np.minimum(100 * tolerance(table), room)
    sliding = np.where(bare, np.maximum(eff.sliding, floor), eff.sliding)
    return ProtectionLevels(lower=eff.lower, upper=eff.upper, sliding=sliding)


@dataclasses.dataclass(frozen=True)
class _Cut:
    coef: np.ndarray  # dense, capped at rhs
    rhs: float
    deficit: float


def _moves(
    solver: IntervalSolver,
    cell: int,
    req: ProtectionLevels,
    duals: bool,
    support: set[int] | None,
) -> tuple[float, float, np.ndarray | None, np.ndarray | None]:
    """How far the intruder can move `cell` up and down (only the directions it needs)."""
    up = down = 0.0
    coef_up = coef_down = None
    if req.upper[cell] > 0 or req.sliding[cell] > 0:
        up, reduced = solver.extreme(cell, Direction.UP, duals=duals)
        coef_up = None if reduced is None else solver.cut_coefficients(reduced)
        if support is not None:
            support.update(solver.last_support.tolist())
    if req.lower[cell] > 0 or req.sliding[cell] > 0:
        down, reduced = solver.extreme(cell, Direction.DOWN, duals=duals)
        coef_down = None if reduced is None else solver.cut_coefficients(reduced)
        if support is not None:
            support.update(solver.last_support.tolist())
    return up, down, coef_up, coef_down


def _protected(
    solver: IntervalSolver,
    cell: int,
    req: ProtectionLevels,
    tol: float,
    support: set[int] | None = None,
) -> bool:
    """Whether the current pattern gives `cell` its protection; `support` collects moved cells."""
    up, down, _, _ = _moves(solver, cell, req, False, support)
    return (
        up >= req.upper[cell] - tol
        and down >= req.lower[cell] - tol
        and up + down >= req.sliding[cell] - tol
    )


def _violations(
    solver: IntervalSolver, cell: int, req: ProtectionLevels, tol: float
) -> list[_Cut]:
    """Attacker cuts for every protection requirement of `cell` the current pattern misses."""
    up, down, coef_up, coef_down = _moves(solver, cell, req, True, None)
    cuts = []
    # A finite move always comes with its reduced costs; an infinite one never falls short.
    if up < req.upper[cell] - tol and coef_up is not None:
        cuts.append(_cut(coef_up, req.upper[cell], up))
    if down < req.lower[cell] - tol and coef_down is not None:
        cuts.append(_cut(coef_down, req.lower[cell], down))
    if up + down < req.sliding[cell] - tol and coef_up is not None and coef_down is not None:
        cuts.append(_cut(coef_up + coef_down, req.sliding[cell], up + down))
    return cuts


def _cut(coef: np.ndarray, rhs: float, achieved: float) -> _Cut:
    return _Cut(coef=np.minimum(coef, rhs), rhs=float(rhs), deficit=float(rhs - achieved))


def _check_feasible(
    table: LinkedTable, req: ProtectionLevels, solver: IntervalSolver, cells: Iterable[int] | None = None
) -> None:
    """Even suppressing every cell must protect every primary cell (or those of `cells`), or nothing can."""
    solver.set_pattern(np.ones(table.n_cells, dtype=bool))
    tol = tolerance(table)
    room = table.upper_bounds - table.lower_bounds
    for cell in np.flatnonzero(table.unsafe) if cells is None else cells:
        if room[cell] <= tol or not _protected(solver, int(cell), req, tol):
            raise SuppressionInfeasible(
                f"cell {table.key(int(cell))} cannot reach its protection level even with "
                "every cell suppressed: lower the level or widen the a-priori bounds"
            )


def _repair(
    solver: IntervalSolver,
    cell: int,
    suppressed: np.ndarray,
    req: ProtectionLevels,
    weights: np.ndarray,
    tol: float,
) -> None:
    """Greedy: add the cell with the best cut coefficient per cost until `cell` is protected."""
    while True:
        solver.set_pattern(suppressed)
        cuts = _violations(solver, cell, req, tol)
        if not cuts:
            return
        cut = max(cuts, key=lambda c: c.deficit)
        gain = np.where(suppressed, 0.0, np.minimum(cut.coef, cut.deficit))
        if gain.max() <= tol:
            raise SuppressionInfeasible(
                f"no further suppression protects cell {solver.table.key(cell)}"
            )
        suppressed[int(np.argmax(gain / weights))] = True


def _best_hypercube(
    table: LinkedTable,
    cell: int,
    suppressed: np.ndarray,
    req: ProtectionLevels,
    weights: np.ndarray,
    tol: float,
) -> np.ndarray | None:
    """Cells of the cheapest hypercube through `cell` that protects it alone, or None.

    Moving the primary cell by t moves each corner by ±t: in every dimension
    the corner's sign flips when both chosen levels are parts and stays when
    one of them is the total, which keeps every sum in the table intact.
    """
    shape = table.shape
    k = len(shape)
    p = table.multi_index(cell)
    strides = np.array([int(np.prod(shape[d + 1 :])) for d in range(k)])
    others, signs = [], []
    for d, m in enumerate(shape):
        q = np.array([i for i in range(m) if i != p[d]])
        view = [1] * k
        view[d] = q.size
        others.append(q.reshape(view))
        total = m - 1
        signs.append(np.where((q == total) | (p[d] == total), 1.0, -1.0).reshape(view))
    out_shape = tuple(len(range(m)) - 1 for m in shape)
    room_down = table.values - table.lower_bounds
    room_up = table.upper_bounds - table.values
    cap_up = np.full(out_shape, np.inf)
    cap_down = np.full(out_shape, np.inf)
    cost = np.zeros(out_shape)
    corners = []
    for bits in itertools.product((0, 1), repeat=k):
        flat = np.zeros(out_shape, dtype=np.int64)
        sign = np.ones(out_shape)
        for d, bit in enumerate(bits):
            if bit:
                flat = flat + others[d] * strides[d]
                sign = sign * signs[d]
            else:
                flat = flat + p[d] * strides[d]
        corners.append(flat)
        cap_up = np.minimum(cap_up, np.where(sign > 0, room_up[flat], room_down[flat]))
        cap_down = np.minimum(cap_down, np.where(sign > 0, room_down[flat], room_up[flat]))
        cost = cost + np.where(suppressed[flat], 0.0, weights[flat])
    feasible = (
        (cap_up >= req.upper[cell] - tol)
        & (cap_down >= req.lower[cell] - tol)
        & (cap_up + cap_down >= req.sliding[cell] - tol)
    )
    if not feasible.any():
        return None
    best = np.unravel_index(np.argmin(np.where(feasible, cost, np.inf)), out_shape)
    return np.array([c[best] for c in corners], dtype=np.int64)


def _prune(
    table: LinkedTable,
    suppressed: np.ndarray,
    req: ProtectionLevels,
    weights: np.ndarray,
    solver: IntervalSolver,
    time_limit: float,
) -> None:
    """Publish again each secondary cell (dearest first) whose suppression no primary needs.

    Stops after `time_limit` seconds; every removal made is already checked.

    Publishing cell j fixes z_j = 0; a primary whose optimal intruder moves
    (both directions) leave j at 0 keeps exactly the same interval, so only
    the primaries whose stored optimal solutions move j are re-checked.
    """
    tol = tolerance(table)
    support: dict[int, set[int]] = {}

    def check(cell: int) -> bool:
        used: set[int] = set()
        ok = _protected(solver, cell, req, tol, used)
        support[cell] = used
        return ok

    solver.set_pattern(suppressed)
    primaries = [int(p) for p in np.flatnonzero(table.unsafe)]
    for p in primaries:
        check(p)
    by_cell = table.constraints().tocsc()
    by_row = by_cell.tocsr()
    secondary = np.flatnonzero(suppressed & ~table.unsafe)
    deadline = time.perf_counter() + time_limit
    for cell in secondary[np.argsort(-weights[secondary], kind="stable")]:
        if time.perf_counter() > deadline:
            log.info("pruning stopped after %.0f s", time_limit)
            break
        cell = int(cell)
        sums = by_cell.indices[by_cell.indptr[cell] : by_cell.indptr[cell + 1]]
        near = set(by_row[sums].indices.tolist())
        # Primaries sharing a sum with the cell are the likely losers: try them first.
        affected = sorted(
            (p for p in primaries if cell in support[p]), key=lambda p: p not in near
        )
        saved = {p: support[p] for p in affected}
        suppressed[cell] = False
        solver.set_pattern(suppressed)
        if not all(check(p) for p in affected):
            suppressed[cell] = True
            solver.set_pattern(suppressed)
            support.update(saved)


def _finish(
    table: LinkedTable,
    suppressed: np.ndarray,
    req: ProtectionLevels,
    weights: np.ndarray,
    solver: IntervalSolver,
) -> AuditReport:
    """Publish recomputable secondary cells, repair any leftover failure, audit."""
    tol = tolerance(table)
    for _ in range(table.n_cells):
        report = audit(table, suppressed, req, solver=solver)
        recomputable = [
            c.cell
            for c in report.intervals
            if c.status is IntervalStatus.RECOMPUTABLE and not c.primary
        ]
        if recomputable:
            # A cell the intruder can recompute exactly adds nothing: publish it.
            suppressed[recomputable] = False
            continue
        failing = [c.cell for c in report.failing() if c.status is not IntervalStatus.UNDECIDED]
        if not failing:
            return report
        before = suppressed.copy()
        for cell in failing:
            _repair(solver, cell, suppressed, req, weights, tol)
        if np.array_equal(before, suppressed):
            break  # the protection checks and the audit disagree: do not loop
    raise SolverFailure("suppression did not settle on a pattern that passes the audit")


def _result(
    table: LinkedTable,
    suppressed: np.ndarray,
    method: SuppressionMethod,
    req: ProtectionLevels,
    weights: np.ndarray,
    solver: IntervalSolver,
    started: float,
    *,
    optimal: bool,
    lower_bound: float | None,
    rounds: int,
) -> SuppressionResult:
    before = suppressed.copy()
    report = _finish(table, suppressed, req, weights, solver)
    seconds = time.perf_counter() - started
    log.info(
        "%s suppression: %d primary, %d secondary cells, %d rounds, %.2f s",
        method.value,
        int(table.unsafe.sum()),
        int((suppressed & ~table.unsafe).sum()),
        rounds,
        seconds,
    )
    return SuppressionResult(
        table=table,
        suppressed=suppressed,
        method=method,
        audit=report,
        cost=float(weights[suppressed].sum()),
        # _finish changing a proven-optimal pattern would contradict the proof.
        optimal=optimal and bool((suppressed == before).all()),
        lower_bound=lower_bound,
        rounds=rounds,
        seconds=seconds,
    )


def suppress_hypercube(
    table: LinkedTable,
    levels: ProtectionLevels,
    *,
    cost: CostFunction = CostFunction.VALUE,
    weights: np.ndarray | None = None,
    prune: bool = True,
    prune_time_limit: float = 60.0,
) -> SuppressionResult:
    """Fast heuristic secondary suppression (see the module docstring).

    With `prune`, each secondary cell is then published again if every
    primary cell stays protected without it (re-checking the primaries whose
    intruder solutions moved it), for at most `prune_time_limit` seconds.
    """
    started = time.perf_counter()
    req = requirements(table, levels)
    w = cell_weights(table, cost, weights)
    solver = IntervalSolver(table)
    _check_feasible(table, req, solver)
    tol = tolerance(table)
    suppressed = table.unsafe.copy()
    need = np.maximum(np.maximum(req.upper, req.lower), req.sliding)
    primaries = np.flatnonzero(table.unsafe)
    for cell in primaries[np.argsort(-need[primaries], kind="stable")]:
        cell = int(cell)
        solver.set_pattern(suppressed)
        if _protected(solver, cell, req, tol):
            continue
        # Hypercubes keep sums intact only when no level is both a part and a sub-total.
        corners = _best_hypercube(table, cell, suppressed, req, w, tol) if table.is_flat else None
        if corners is not None:
            suppressed[corners] = True
        else:
            _repair(solver, cell, suppressed, req, w, tol)
    if prune:
        _prune(table, suppressed, req, w, solver, prune_time_limit)
    return _result(
        table, suppressed, SuppressionMethod.HYPERCUBE, req, w, solver, started,
        optimal=False, lower_bound=None, rounds=1,
    )


def suppress_hierarchical(
    table: LinkedTable,
    levels: ProtectionLevels,
    *,
    cost: CostFunction = CostFunction.VALUE,
    weights: np.ndarray | None = None,
) -> SuppressionResult:
    """Secondary suppression for large hierarchical tables, judged by the certified audit (hierarchical.py).

    Each primary cell gets the cheapest hypercube of flows that protects it
    on its own; a primary cell no hypercube protects is repaired by the
    attacker LP's reduced costs as in `suppress_hypercube`, and the pattern
    then gets the exact audit. No pruning: every secondary cell is a corner
    of some primary cell's hypercube.
    """
    started = time.perf_counter()
    req = requirements(table, levels)
    w = cell_weights(table, cost, weights)
    suppressed = table.unsafe.copy()
    cubes, unprotected = protect(table, req, w, suppressed)
    if unprotected:
        solver = IntervalSolver(table)
        _check_feasible(table, req, solver, unprotected)
        for cell in unprotected:
            _repair(solver, cell, suppressed, req, w, tolerance(table))
        report = _finish(table, suppressed, req, w, solver)
    else:
        report = certified_audit(table, suppressed, req, cubes)
    seconds = time.perf_counter() - started
    log.info("hierarchical suppression: %d primary, %d secondary cells (%d repaired), %.2f s",
             int(table.unsafe.sum()), int((suppressed & ~table.unsafe).sum()), len(unprotected), seconds)
    return SuppressionResult(
        table=table, suppressed=suppressed, method=SuppressionMethod.HIERARCHICAL, audit=report,
        cost=float(w[suppressed].sum()), optimal=False, lower_bound=None, rounds=1, seconds=seconds,
    )


class _MasterProblem:
    """The MILP over x (1 = suppress), rows added as cuts are found."""

    def __init__(self, table: LinkedTable, weights: np.ndarray) -> None:
        n = table.n_cells
        self.n = n
        self.highs = new_highs()
        self.highs.setOptionValue("mip_rel_gap", MIP_RELATIVE_GAP)
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = 0
        lp.col_cost_ = weights
        lp.col_lower_ = np.where(table.unsafe, 1.0, 0.0)
        lp.col_upper_ = np.ones(n)
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        self.highs.passModel(lp)
        self._add_bridge_rows(table)

    def _add_bridge_rows(self, table: LinkedTable) -> None:
        """In every sum, a suppressed cell needs another suppressed cell beside it.

        Otherwise it is recomputable; valid for every minimal protecting pattern.
        """
        matrix = table.constraints().tocsr()
        rows_idx: list[np.ndarray] = []
        rows_val: list[np.ndarray] = []
        for r in range(matrix.shape[0]):
            members = matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]
            for cell in members:
                rows_idx.append(members)
                rows_val.append(np.where(members == cell, -1.0, 1.0))
        self.add_rows(rows_idx, rows_val, np.zeros(len(rows_idx)))

    def add_rows(
        self, indices: list[np.ndarray], values: list[np.ndarray], lower: np.ndarray
    ) -> None:
        if not indices:
            return
        starts = np.cumsum([0] + [len(i) for i in indices[:-1]]).astype(np.int32)
        flat_idx = np.concatenate(indices).astype(np.int32)
        flat_val = np.concatenate(values).astype(float)
        self.highs.addRows(
            len(indices),
            np.asarray(lower, dtype=float),
            np.full(len(indices), self.highs.getInfinity()),
            flat_idx.size,
            starts,
            flat_idx,
            flat_val,
        )

    def add_cuts(self, cuts: list[_Cut]) -> None:
        indices, values = [], []
        for cut in cuts:
            nz = np.flatnonzero(cut.coef > DUAL_FLOOR * cut.rhs)
            indices.append(nz)
            values.append(cut.coef[nz])
        self.add_rows(indices, values, np.array([c.rhs for c in cuts]))

    def solve_relaxation(self) -> tuple[np.ndarray, float]:
        """The LP relaxation's x (fractions) and objective."""
        self.highs.setOptionValue("solve_relaxation", True)
        self.highs.setOptionValue("time_limit", self.highs.getInfinity())
        try:
            self.highs.run()
        finally:
            self.highs.setOptionValue("solve_relaxation", False)
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise SolverFailure("the LP relaxation of the suppression problem has no optimum")
        x = np.clip(np.asarray(self.highs.getSolution().col_value), 0.0, 1.0)
        return np.where(x > 1e-9, x, 0.0), float(self.highs.getInfo().objective_function_value)

    def solve(self, time_limit: float) -> tuple[np.ndarray | None, bool, float]:
        """(pattern or None, proven optimal, dual bound).

        No starting solution is passed: HiGHS 1.16 then reported the start as
        optimal with a smaller objective than its cost.
        """
        self.highs.setOptionValue("time_limit", max(time_limit, 0.01))
        self.highs.run()
        status = self.highs.getModelStatus()
        info = self.highs.getInfo()
        if status == highspy.HighsModelStatus.kInfeasible:
            raise SuppressionInfeasible("no suppression pattern satisfies every attacker cut")
        bound = float(info.mip_dual_bound)
        if info.primal_solution_status != 2:  # no feasible solution found
            return None, False, bound
        x = np.asarray(self.highs.getSolution().col_value) > 0.5
        return x, status == highspy.HighsModelStatus.kOptimal, bound


MAX_RELAXATION_ROUNDS = 200
# Cut coefficients below this fraction of the right-hand side are dropped (noise).
DUAL_FLOOR = 1e-9


def suppress_optimal(
    table: LinkedTable,
    levels: ProtectionLevels,
    *,
    cost: CostFunction = CostFunction.VALUE,
    weights: np.ndarray | None = None,
    time_limit: float = 300.0,
    warm_start: bool = True,
) -> SuppressionResult:
    """Minimum-cost secondary suppression by MILP with attacker cuts (see the module docstring).

    `time_limit` (seconds) bounds the whole loop; when it runs out, the best
    protecting pattern found (the hypercube pattern computed first when
    `warm_start`, or a cheaper repaired MILP pattern) is returned with
    ``optimal=False`` and the proven bound in `lower_bound`. Raises
    `SuppressionInfeasible` when no pattern can protect every primary cell
    and `SolverFailure` when time ran out before any protecting pattern.
    """
    started = time.perf_counter()
    req = requirements(table, levels)
    w = cell_weights(table, cost, weights)
    solver = IntervalSolver(table)
    _check_feasible(table, req, solver)
    tol = tolerance(table)
    best: np.ndarray | None = None
    if warm_start:
        best = suppress_hypercube(
            table, levels, cost=cost, weights=weights, prune_time_limit=time_limit / 10
        ).suppressed
    best_cost = np.inf if best is None else float(w[best].sum())
    master = _MasterProblem(table, w)
    # The primary cells alone are a lower bound on any pattern's cost.
    optimal, bound, rounds = False, float(w[table.unsafe].sum()), 0
    primaries = [int(c) for c in np.flatnonzero(table.unsafe)]
    # Root cutting planes: separate attacker cuts at fractional LP points
    # first, which tightens the MILP far more than cuts at integer points.
    for _ in range(MAX_RELAXATION_ROUNDS):
        if time.perf_counter() - started > time_limit / 2:
            break
        fractional, relaxed = master.solve_relaxation()
        bound = max(bound, relaxed)
        solver.set_pattern(fractional)
        cuts = [cut for cell in primaries for cut in _violations(solver, cell, req, tol)]
        if not cuts:
            break
        master.add_cuts(cuts)
    gap_tol = 1e-9 * max(1.0, best_cost if np.isfinite(best_cost) else 1.0)
    while best_cost > bound + gap_tol:
        remaining = time_limit - (time.perf_counter() - started)
        if remaining <= 0:
            break
        rounds += 1
        pattern, proven, round_bound = master.solve(remaining)
        bound = max(bound, round_bound)
        if pattern is None:
            break
        solver.set_pattern(pattern)
        cuts = [cut for cell in primaries for cut in _violations(solver, cell, req, tol)]
        log.debug("optimal suppression round %d: %d cuts, bound %.6g", rounds, len(cuts), bound)
        if not cuts:
            best, best_cost, optimal = pattern, float(w[pattern].sum()), proven
            break
        master.add_cuts(cuts)
        # Repairing the failed pattern gives a protecting one: an upper bound
        # that may meet the MILP's lower bound before the loop ends.
        repaired = pattern.copy()
        for cell in primaries:
            _repair(solver, cell, repaired, req, w, tol)
        if float(w[repaired].sum()) < best_cost:
            best, best_cost = repaired, float(w[repaired].sum())
    if best is None:
        raise SolverFailure(
            f"no protecting pattern within time_limit={time_limit:g} s; raise it or use "
            "suppress_hypercube"
        )
    optimal = optimal or best_cost <= bound + gap_tol
    if optimal:
        bound = best_cost
    return _result(
        table, best.copy(), SuppressionMethod.OPTIMAL, req, w, solver, started,
        optimal=optimal, lower_bound=bound, rounds=rounds,
    )


def secondary_suppression(
    table: LinkedTable,
    levels: ProtectionLevels,
    method: SuppressionMethod = SuppressionMethod.HYPERCUBE,
    **options: object,
) -> SuppressionResult:
    """Dispatch to `suppress_optimal`, `suppress_hypercube` or `suppress_hierarchical`."""
    if method is SuppressionMethod.OPTIMAL:
        return suppress_optimal(table, levels, **options)  # type: ignore[arg-type]
    if method is SuppressionMethod.HIERARCHICAL:
        return suppress_hierarchical(table, levels, **options)  # type: ignore[arg-type]
    return suppress_hypercube(table, levels, **options)  # type: ignore[arg-type]
