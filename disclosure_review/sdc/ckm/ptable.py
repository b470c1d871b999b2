"""Perturbation tables for the cell key method, as the R package `ptable` makes them (Giessing 2016).

A table holds, for each original value `i` (a count, or a magnitude class for magnitudes), the
deviations `v` it may be moved by and their probabilities `p`: the distribution of maximum entropy
with mean 0, variance `V` (at most, or exactly with `optim` 4), |v| <= `D`, no target value
in 1..`js` (counts), a probability of staying of at least `pstay`, every allowed deviation at least
`epsilon` likely, and with `mono` probabilities rising towards v = 0 from below. Rows are cumulated
into intervals [p_int_lb, p_int_ub): a cell key in a row's interval picks its deviation.

The columns are ptable's (i, j, p, v, p_int_lb, p_int_ub, type), so a table ptable wrote as CSV
(`write.csv(ptab@pTable)`) loads with `read_csv` and is used as is. Counts at or above the last
row's `i` (D + js + 1) use the last row (ptable's "symmetry" row).

Each row is a small convex problem: SLSQP from scipy, after HiGHS has checked the row is feasible at
all, so a parameter set without a solution is refused naming the parameter to change.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..messages import render_text
from .messages import MESSAGES

COLUMNS = ("i", "j", "p", "v", "p_int_lb", "p_int_ub", "type")
DIGITS = 8  # ptable rounds the cumulated intervals to 8 digits; p is their difference
TYPES = ("all", "even", "odd", "small_cells")
MAX_POINTS = 50  # ptable: D * step below 50
PSTAY_STEP = 0.05  # ptable lowers the bound on p(stay) by this until the variance is met
PSTAY_TRIES = 20


class PTableInvalid(ValueError):
    """A parameter set or a loaded table that cannot be used; `code`/`arguments` name the parameter (sdc.messages)."""

    def __init__(self, code: str, **arguments: Any) -> None:
        self.code, self.arguments = code, arguments
        super().__init__(self.text("en"))

    def text(self, lang: str = "en") -> str:
        return render_text(self.code, self.arguments, lang, messages=MESSAGES)


@dataclasses.dataclass(frozen=True)
class PTableParams:
    """ptable's parameters. `table`: "cnts" (counts) or "nums" (magnitudes, rows at `icat`, steps of 1/`step`).

    `pstay`, `optim`, `mono`: one value, or one per row i = 1 … (ptable's vectors)."""

    D: int
    V: float
    js: int = 0
    pstay: float | tuple[float, ...] | None = None
    optim: int | tuple[int, ...] = 1
    mono: bool | tuple[bool, ...] = True
    epsilon: float = 10.0 ** -DIGITS
    table: str = "cnts"
    step: int = 1
    icat: tuple[int, ...] | None = None
    type: str = "all"

    def __post_init__(self) -> None:
        _whole(self.D, "D", 1)
        if isinstance(self.V, bool) or not isinstance(self.V, (int, float)) or not math.isfinite(self.V) or self.V <= 0:
            raise PTableInvalid("ptable_param_positive", name="V", value=repr(self.V))
        _whole(self.js, "js", 0)
        _whole(self.step, "step", 1)
        if self.table not in ("cnts", "nums"):
            raise PTableInvalid("ptable_param_choice", name="table", value=repr(self.table), choices="cnts, nums")
        if self.type not in TYPES:
            raise PTableInvalid("ptable_param_choice", name="type", value=repr(self.type), choices=", ".join(TYPES))
        if not (isinstance(self.epsilon, (int, float)) and 0 < self.epsilon < 0.01):
            raise PTableInvalid("ptable_param_range", name="epsilon", value=repr(self.epsilon), low="0", high="0.01")
        if self.table == "nums":
            if self.js or self.pstay is not None:
                raise PTableInvalid("ptable_nums_no_js")
            if self.D * self.step >= MAX_POINTS:
                raise PTableInvalid("ptable_nums_points", D=self.D, step=self.step, limit=MAX_POINTS)
            icat = sorted(set(self.icat or ()))
            if 1 not in icat or self.D not in icat or icat[0] < 1 or icat[-1] > self.D:
                raise PTableInvalid("ptable_icat", D=self.D, icat=list(icat))
        elif self.step != 1 or self.icat is not None:
            raise PTableInvalid("ptable_cnts_no_step")
        for name in ("pstay", "optim", "mono"):
            value = getattr(self, name)
            if isinstance(value, (tuple, list)) and len(value) != len(self.rows):
                raise PTableInvalid("ptable_param_length", name=name, length=len(value), rows=len(self.rows))
        for pstay in self._each("pstay"):
            if pstay is not None and not (isinstance(pstay, (int, float)) and 0 < pstay < 1):
                raise PTableInvalid("ptable_param_range", name="pstay", value=repr(pstay), low="0", high="1")
        for optim in self._each("optim"):
            if optim not in (1, 2, 3, 4):
                raise PTableInvalid("ptable_param_choice", name="optim", value=repr(optim), choices="1, 2, 3, 4")

    @property
    def rows(self) -> tuple[int, ...]:
        """The original values i (> 0) a row is made for."""
        if self.table == "nums":
            return tuple(sorted(set(self.icat or ())))
        return tuple(range(1, self.D + (self.js + 1 if self.js else 0) + 1))

    def _each(self, name: str) -> list[Any]:
        value = getattr(self, name)
        return list(value) if isinstance(value, (tuple, list)) else [value] * len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PTableParams:
        return parameters_from_dict(cls, data)


def parameters_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A parameter dataclass from JSON (lists become tuples); unknown names are refused, listing the known ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PTableInvalid("ptable_param_unknown", names=unknown, known=sorted(known))
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _whole(value: Any, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise PTableInvalid("ptable_param_whole", name=name, value=repr(value), least=least)


@dataclasses.dataclass(frozen=True)
class PTable:
    """A perturbation table: ptable's columns as arrays, rows ordered by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    p: np.ndarray
    v: np.ndarray
    p_int_lb: np.ndarray
    p_int_ub: np.ndarray
    type: tuple[str, ...]
    params: PTableParams | None = None

    @property
    def classes(self) -> np.ndarray:
        """The distinct i, ascending."""
        return np.unique(self.i)

    def row(self, i: float) -> tuple[np.ndarray, np.ndarray]:
        """Row `i`'s upper interval bounds and deviations."""
        at = self.i == i
        return self.p_int_ub[at], self.v[at]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in zip(self.i, self.j, self.p, self.v, self.p_int_lb, self.p_int_ub, self.type):
            writer.writerow([_number(x) for x in row[:6]] + [row[6]])
        return out.getvalue()


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(round(float(x), 10))


def create_cnt_ptable(D: int, V: float, js: int = 0, pstay: float | None = None, optim: int = 1,
                      mono: bool | Sequence[bool] = True, epsilon: float = 10.0 ** -DIGITS) -> PTable:
    """ptable's `create_cnt_ptable`: a table for frequency counts."""
    return create_ptable(PTableParams(D=D, V=V, js=js, pstay=pstay, optim=_vector(optim),
                                      mono=_vector(mono), epsilon=epsilon))


def create_num_ptable(D: int, V: float, step: int = 2, icat: Sequence[int] | None = None,
                      optim: int | Sequence[int] = 1, mono: bool | Sequence[bool] = True, type: str = "all",
                      epsilon: float = 10.0 ** -DIGITS) -> PTable:
    """ptable's `create_num_ptable`: a table for magnitudes (rows at the classes `icat`, default 1 and D)."""
    return create_ptable(PTableParams(D=D, V=V, table="nums", step=step, icat=tuple(icat or (1, D)),
                                      optim=_vector(optim), mono=_vector(mono), type=type, epsilon=epsilon))


def _vector(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def create_ptable(params: PTableParams) -> PTable:
    """The perturbation table for `params`; `PTableInvalid` naming the parameter when a row has no solution."""
    blocked = set(range(1, params.js + 1))
    width = 1.0 / params.step
    i_col, j_col, p_col = [0.0], [0.0], [1.0]
    for i, pstay, optim, mono in zip(params.rows, params._each("pstay"), params._each("optim"), params._each("mono")):
        j = np.round(np.arange(max(i - params.D, 0), i + params.D + width / 2, width), 4)
        j = j[~np.isin(j, list(blocked))]
        v = np.round(j - i, 4)
        p = _row(params, i, v, pstay, optim, bool(mono), i in blocked)
        i_col += [float(i)] * len(j)
        j_col += list(j)
        p_col += list(p)
    return _table(np.array(i_col), np.array(j_col), np.array(p_col), params.type, params)


def _table(i: np.ndarray, j: np.ndarray, p: np.ndarray, kind: str, params: PTableParams | None) -> PTable:
    """Cumulate each row's probabilities into rounded intervals; p becomes their difference (as ptable does)."""
    ub = np.empty_like(p)
    for value in np.unique(i):
        at = np.flatnonzero(i == value)
        ub[at] = np.cumsum(p[at])
    ub = np.round(ub, DIGITS)
    lb = np.empty_like(ub)
    for value in np.unique(i):
        at = np.flatnonzero(i == value)
        lb[at] = np.concatenate(([0.0], ub[at][:-1]))
    return PTable(i, j, np.round(ub - lb, DIGITS), np.round(j - i, 4), lb, ub, (kind,) * len(i), params)


def _row(params: PTableParams, i: float, v: np.ndarray, pstay: float | None, optim: int, mono: bool,
         blocked: bool) -> np.ndarray:
    lower = np.full(len(v), params.epsilon)
    stay = np.flatnonzero(v == 0)
    if pstay is not None and len(stay):
        lower[stay] = pstay
    _check_feasible(params, i, v, lower, mono, pstay)
    for _ in range(PSTAY_TRIES):
        p = _max_entropy(v, params.V, lower, optim, mono, {"i": _number(i), "D": params.D, "js": params.js})
        if blocked or round(float(p @ v**2), 3) == round(params.V, 3) or not len(stay) or lower[stay[0]] <= params.epsilon:
            return p
        # ptable: a bound on p(stay) that keeps the variance below V is lowered step by step
        lower[stay] = max(lower[stay[0]] - PSTAY_STEP, params.epsilon)
    return p


def _mono_rows(v: np.ndarray) -> np.ndarray:
    """Rows of p[k] - p[k+1] <= 0 for the deviations below 0 (probabilities rise towards v = 0)."""
    zero = np.flatnonzero(v == 0)
    n = int(zero[0]) if len(zero) else 0
    rows = np.zeros((n, len(v)))
    for k in range(n):
        rows[k, k], rows[k, k + 1] = 1.0, -1.0
    return rows


def _check_feasible(params: PTableParams, i: float, v: np.ndarray, lower: np.ndarray, mono: bool,
                    pstay: float | None) -> None:
    """Refuse a row no distribution satisfies, naming the parameter: the least variance it allows (HiGHS)."""
    from scipy.optimize import linprog  # heavy: scipy/HiGHS load only when a table is made

    a_eq = np.vstack([np.ones(len(v)), v])
    mono_rows = _mono_rows(v) if mono else np.zeros((0, len(v)))
    result = linprog(v**2, A_ub=mono_rows if len(mono_rows) else None, b_ub=np.zeros(len(mono_rows)) if len(mono_rows) else None,
                     A_eq=a_eq, b_eq=[1.0, 0.0], bounds=list(zip(lower, np.ones(len(v)))), method="highs")
    where = {"i": _number(i), "D": params.D, "js": params.js}
    if result.status == 2:  # infeasible: no mean-0 distribution within the bounds
        if pstay is not None and (v == 0).any():
            raise PTableInvalid("ptable_pstay_infeasible", pstay=pstay, **where)
        raise PTableInvalid("ptable_js_infeasible", **where)
    if result.status != 0:
        raise PTableInvalid("ptable_unsolved", detail=result.message, **where)
    if result.fun > params.V + 1e-9:
        raise PTableInvalid("ptable_v_too_small", V=params.V, least=f"{result.fun:.9g}", **where)


def _max_entropy(v: np.ndarray, variance: float, lower: np.ndarray, optim: int, mono: bool,
                 where: dict[str, Any]) -> np.ndarray:
    """The maximum-entropy probabilities of one row (SLSQP; optim 4: variance exactly V, else at most V)."""
    from scipy.optimize import minimize  # heavy: scipy loads only when a table is made

    n = len(v)
    constraints = [{"type": "eq", "fun": lambda p: np.array([p.sum() - 1.0, p @ v]),
                    "jac": lambda p: np.vstack([np.ones(n), v])}]
    variance_row = {"fun": lambda p: np.array([variance - p @ v**2]), "jac": lambda p: -(v**2)[None, :]}
    constraints.append({"type": "eq" if optim == 4 else "ineq", **variance_row})
    if mono and len(rows := _mono_rows(v)):
        constraints.append({"type": "ineq", "fun": lambda p: -(rows @ p), "jac": lambda p: -rows})
    start = np.maximum(np.full(n, 1.0 / n), lower)
    with warnings.catch_warnings():  # SLSQP clips its steps to the bounds and says so
        warnings.simplefilter("ignore", RuntimeWarning)
        result = minimize(lambda p: float(p @ np.log(p)), start / start.sum(), jac=lambda p: np.log(p) + 1.0,
                          bounds=list(zip(lower, np.ones(n))), constraints=constraints, method="SLSQP",
                          options={"ftol": 1e-12, "maxiter": 1000})
    p = np.clip(result.x, lower, 1.0)
    # status 8 (no descent direction left) at this tolerance is converged when the constraints hold
    if result.status not in (0, 8) or abs(p.sum() - 1.0) > 1e-7 or abs(p @ v) > 1e-7 or p @ v**2 > variance + 1e-7:
        raise PTableInvalid("ptable_unsolved", detail=str(result.message), **where)
    return p / p.sum()


def read_csv(source: str | Path) -> PTable:
    """A perturbation table written as CSV by ptable (`write.csv(ptab@pTable)`: an unnamed first column of row
    names is ignored) or by `PTable.to_csv`, checked: each row's intervals must cover [0, 1) in order."""
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    reader = csv.reader(io.StringIO(text))
    header = [name.strip().strip('"') for name in next(reader, [])]
    if header and header[0] == "":
        header = header[1:]
        rows = [row[1:] for row in reader]
    else:
        rows = list(reader)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PTableInvalid("ptable_csv_columns", missing=missing, columns=list(COLUMNS))
    at = {c: header.index(c) for c in COLUMNS}
    try:
        numbers = {c: np.array([float(row[at[c]]) for row in rows if row]) for c in COLUMNS[:6]}
    except (ValueError, IndexError) as exc:
        raise PTableInvalid("ptable_csv_value", detail=str(exc)) from None
    kinds = tuple(row[at["type"]].strip().strip('"') for row in rows if row)
    if not kinds:
        raise PTableInvalid("ptable_csv_empty")
    bad = sorted(set(kinds) - set(TYPES))
    if bad:
        raise PTableInvalid("ptable_param_choice", name="type", value=repr(bad[0]), choices=", ".join(TYPES))
    kind_index = np.array([TYPES.index(k) for k in kinds])
    order = np.lexsort((numbers["j"], numbers["i"], kind_index))  # rows of one type together (even, odd, …)
    table = PTable(**{c: numbers[c][order] for c in COLUMNS[:6]}, type=tuple(kinds[k] for k in order))
    for kind, value in sorted(set(zip(table.type, table.i))):
        sel = (table.i == value) & np.array([t == kind for t in table.type])
        lb, ub = table.p_int_lb[sel], table.p_int_ub[sel]
        if (abs(lb[0]) > 1e-7 or abs(ub[-1] - 1.0) > 1e-7 or np.any(np.abs(lb[1:] - ub[:-1]) > 1e-7)
                or np.any(ub < lb) or np.any(table.j[sel] - value - table.v[sel] > 1e-4)):
            raise PTableInvalid("ptable_csv_intervals", i=_number(value))
    return table
