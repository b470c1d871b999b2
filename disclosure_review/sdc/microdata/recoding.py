"""Global recoding (intervals by breaks, equal width, quantiles; category merging) and top/bottom coding.

sdcMicro: globalRecode(), groupAndRename(), topBotCoding().
"""
from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from ._data import InvalidMicrodataInput
from ._params import member, number_in, whole_number
from ._result import ProtectionMethod, ProtectionResult, count_changes, require_columns, to_polars


class RecodeMethod(enum.Enum):
    BREAKS = "breaks"  # the given break points
    EQUAL_WIDTH = "equal_width"  # sdcMicro "equidistant": n intervals over [min − 1, max + 1]
    QUANTILES = "quantiles"  # sdcMicro "equalAmount": n intervals of about equal size
    LOG_EQUAL_WIDTH = "log_equal_width"  # sdcMicro "logEqui": equal width on the log scale


def _fmt(x: float) -> str:
    return f"{x:.8g}"  # R's cut(dig.lab = 8)


def recode_breaks(values: np.ndarray, intervals: int, method: RecodeMethod) -> np.ndarray:
    """Break points as sdcMicro's globalRecode computes them for `intervals` intervals."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InvalidMicrodataInput("the variable to recode has no values")
    if method is RecodeMethod.QUANTILES:
        breaks = np.quantile(finite, np.arange(intervals + 1) / intervals)  # R's quantile type 7
        return np.unique(breaks)  # sdcMicro jitters tied breaks; we merge them (deterministic)
    if method is RecodeMethod.LOG_EQUAL_WIDTH:
        if (finite <= 0).any():
            raise InvalidMicrodataInput("log equal-width recoding needs positive values")
        logs = np.log(finite)
        breaks = np.exp(np.linspace(logs.min() - 1, logs.max() + 1, intervals + 1))
    else:
        breaks = np.linspace(finite.min() - 1, finite.max() + 1, intervals + 1)
    rounded = np.round(breaks)
    return rounded if np.unique(rounded).size == rounded.size else breaks  # round unless it merges breaks


def global_recode(
    data: Any,
    variable: str,
    *,
    breaks: int | Sequence[float],
    method: RecodeMethod | None = None,
    labels: Sequence[str] | None = None,
) -> ProtectionResult:
    """Replace a numeric variable by intervals (a, b]; values outside the breaks become missing.

    breaks: a number of intervals (method EQUAL_WIDTH default, QUANTILES or
    LOG_EQUAL_WIDTH; the lowest interval then includes its left end, as in
    sdcMicro) or the break points themselves.
    """
    method = None if method is None else member(method, RecodeMethod, "method")
    df = to_polars(data)
    require_columns(df, [variable])
    if not df[variable].dtype.is_numeric():
        raise InvalidMicrodataInput(f"{variable!r} must be numeric to recode into intervals; use recode_categories")
    values = df[variable].cast(pl.Float64).fill_null(np.nan).to_numpy()
    include_lowest = False
    if isinstance(breaks, (int, np.integer)):
        breaks = whole_number(breaks, "breaks (number of intervals)")
        method = method or RecodeMethod.EQUAL_WIDTH
        if method is RecodeMethod.BREAKS:
            raise InvalidMicrodataInput("method BREAKS needs the break points, not a number of intervals")
        cut_points = recode_breaks(values, int(breaks), method)
        include_lowest = int(breaks) > 1
    else:
        cut_points = np.asarray(breaks, dtype=float)
        method = RecodeMethod.BREAKS
        if cut_points.size < 2 or not np.isfinite(cut_points).all() or np.any(np.diff(cut_points) <= 0):
            raise InvalidMicrodataInput("break points must be at least two finite, increasing numbers")
    n_intervals = cut_points.size - 1
    if labels is None:
        labels = [
            ("[" if include_lowest and i == 0 else "(") + f"{_fmt(cut_points[i])},{_fmt(cut_points[i + 1])}]"
            for i in range(n_intervals)
        ]
    labels = [str(label) for label in labels]
    if len(labels) != n_intervals:
        raise InvalidMicrodataInput(f"{len(labels)} labels for {n_intervals} intervals")
    index = np.searchsorted(cut_points, values, side="left") - 1  # (a, b]
    if include_lowest:
        index[values == cut_points[0]] = 0
    valid = np.isfinite(values) & (index >= 0) & (index < n_intervals)
    recoded = np.array(labels, dtype=object)[np.where(valid, index, 0)]
    recoded[~valid] = None
    out = df.with_columns(pl.Series(variable, recoded, dtype=pl.Enum(list(dict.fromkeys(labels)))))
    changed, records = count_changes(df, out, [variable])
    return ProtectionResult(
        ProtectionMethod.GLOBAL_RECODE, out, changed, records,
        {"variable": variable, "method": method.value, "breaks": cut_points.tolist(), "labels": labels,
         "categories_before": int(df[variable].n_unique()), "categories_after": int(out[variable].n_unique())},
    )


def recode_categories(data: Any, variable: str, mapping: Mapping[Any, Any]) -> ProtectionResult:
    """Merge categories: each value in `mapping` becomes its new value (sdcMicro groupAndRename)."""
    df = to_polars(data)
    require_columns(df, [variable])
    unknown = set(mapping) - set(df[variable].drop_nulls().unique().to_list())
    if unknown:
        raise InvalidMicrodataInput(f"values not found in {variable!r}: {sorted(map(str, unknown))}")
    out = df.with_columns(pl.col(variable).replace(dict(mapping)))
    changed, records = count_changes(df, out, [variable])
    return ProtectionResult(
        ProtectionMethod.GLOBAL_RECODE, out, changed, records,
        {"variable": variable, "mapping": {str(k): v for k, v in mapping.items()},
         "categories_before": int(df[variable].n_unique()), "categories_after": int(out[variable].n_unique())},
    )


class CodingSide(enum.Enum):
    TOP = "top"  # values above the bound are replaced
    BOTTOM = "bottom"  # values below the bound are replaced


def top_bottom_code(
    data: Any, variable: str, *, bound: float, replacement: float, side: CodingSide = CodingSide.TOP
) -> ProtectionResult:
    """Replace values above (TOP) or below (BOTTOM) `bound` by `replacement`; missing stays missing.

    sdcMicro: topBotCoding(x, value=bound, replacement, kind="top"|"bottom").
    """
    df = to_polars(data)
    require_columns(df, [variable])
    if not df[variable].dtype.is_numeric():
        raise InvalidMicrodataInput(f"{variable!r} must be numeric for top or bottom coding")
    side = member(side, CodingSide, "side")
    number_in(bound, "bound", -math.inf)
    number_in(replacement, "replacement", -math.inf)
    beyond = pl.col(variable) > bound if side is CodingSide.TOP else pl.col(variable) < bound
    dtype = df[variable].dtype if df[variable].dtype.is_float() or isinstance(replacement, int) else pl.Float64
    out = df.with_columns(
        pl.when(beyond).then(pl.lit(replacement)).otherwise(pl.col(variable)).cast(dtype).alias(variable)
    )
    changed, records = count_changes(df, out, [variable])
    return ProtectionResult(
        ProtectionMethod.TOP_BOTTOM_CODE, out, changed, records,
        {"variable": variable, "side": side.value, "bound": bound, "replacement": replacement},
    )
