"""Protection levels: how far the feasible interval of a suppressed cell must reach.

For a suppressed cell with true value ``a`` and feasible interval
``[low, high]`` (what an intruder can deduce from the published cells, the
additivity of the table and the a-priori bounds), the cell is protected when

    high >= a + upper      (upper protection level)
    low  <= a - lower      (lower protection level)
    high - low >= sliding  (sliding protection level: the interval width)

Levels are capped by the a-priori bounds: a requirement to reach below the
lower bound (e.g. below 0 for a count of 2 with ``lower = 3``) is met when
the interval reaches the bound, since no pattern can do more. Cells that are
not primary-unsafe have no level (all zeros); the audit still refuses any
suppressed cell whose value can be recomputed exactly (interval of width 0).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .errors import InvalidProtectionLevel
from .table import LinkedTable


@dataclasses.dataclass(frozen=True, eq=False)
class ProtectionLevels:
    """Per-cell required protection (arrays aligned with the table's cells)."""

    lower: np.ndarray
    upper: np.ndarray
    sliding: np.ndarray

    def __post_init__(self) -> None:
        sizes = {self.lower.size, self.upper.size, self.sliding.size}
        if len(sizes) != 1:
            raise InvalidProtectionLevel("lower, upper and sliding levels differ in length")
        for name in ("lower", "upper", "sliding"):
            array = getattr(self, name)
            if not np.isfinite(array).all() or (array < 0).any():
                raise InvalidProtectionLevel(f"{name} protection levels must be finite and >= 0")

    def effective(self, table: LinkedTable) -> ProtectionLevels:
        """Levels capped by the a-priori bounds (see the module docstring)."""
        self._check_size(table)
        room_down = table.values - table.lower_bounds
        room_up = table.upper_bounds - table.values
        lower = np.minimum(self.lower, room_down)
        upper = np.minimum(self.upper, room_up)
        sliding = np.minimum(self.sliding, room_down + room_up)
        return ProtectionLevels(lower=lower, upper=upper, sliding=sliding)

    def required(self) -> np.ndarray:
        """True where a cell has any positive requirement."""
        return (self.lower > 0) | (self.upper > 0) | (self.sliding > 0)

    def _check_size(self, table: LinkedTable) -> None:
        if self.lower.size != table.n_cells:
            raise InvalidProtectionLevel(
                f"{self.lower.size} protection levels for a table of {table.n_cells} cells"
            )

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def explicit(
        cls,
        table: LinkedTable,
        lower: np.ndarray | float = 0.0,
        upper: np.ndarray | float = 0.0,
        sliding: np.ndarray | float = 0.0,
    ) -> ProtectionLevels:
        """Given levels for the unsafe cells (zero elsewhere)."""
        n = table.n_cells
        arrays = []
        for name, level in (("lower", lower), ("upper", upper), ("sliding", sliding)):
            array = np.asarray(level, dtype=float)
            array = np.full(n, float(array)) if array.ndim == 0 else array.ravel().copy()
            if array.size != n:
                raise InvalidProtectionLevel(f"{name}: {array.size} levels for {n} cells")
            arrays.append(np.where(table.unsafe, array, 0.0))
        return cls(*arrays)

    @classmethod
    def fraction(
        cls, table: LinkedTable, fraction: float = 0.5, minimum: float = 1.0
    ) -> ProtectionLevels:
        """Upper and lower level ``max(fraction * |value|, minimum)`` for every unsafe cell.

        `minimum` keeps small and zero cells from getting no protection at
        all: with counts, 1 means the intruder cannot tell the value from its
        neighbours 1 up or down.
        """
        if not 0 <= fraction or not np.isfinite(fraction) or minimum < 0:
            raise InvalidProtectionLevel("fraction and minimum must be finite and >= 0")
        level = np.maximum(fraction * np.abs(table.values), minimum)
        return cls.explicit(table, lower=level, upper=level)

    @classmethod
    def threshold(cls, table: LinkedTable, threshold: float) -> ProtectionLevels:
        """Frequency tables: the interval of a cell below `threshold` must reach it.

        Upper level ``threshold - value`` (so the intruder cannot tell that the
        cell was below the threshold), lower level ``min(value, 1)`` (nor that
        it was not smaller), for unsafe cells.
        """
        if not np.isfinite(threshold) or threshold <= 0:
            raise InvalidProtectionLevel("threshold must be a positive number")
        upper = np.maximum(threshold - table.values, 1.0)
        lower = np.minimum(np.abs(table.values), 1.0)
        return cls.explicit(table, lower=lower, upper=upper)

    @classmethod
    def p_percent(
        cls,
        table: LinkedTable,
        largest: np.ndarray,
        second: np.ndarray,
        p: float,
    ) -> ProtectionLevels:
        """Magnitude tables, the p% rule with the second-largest contributor as intruder.

        The second contributor knows ``X - x1 - x2`` up to the interval, so the
        interval must let them misjudge the largest contribution ``x1`` by at
        least ``p%``: level ``p/100 * x1 - (X - x1 - x2)`` in both directions
        (positive exactly when the cell fails the p% rule; at least the
        ``minimum`` of 0). `largest` and `second` are aligned with the cells.
        """
        if not 0 < p < 100:
            raise InvalidProtectionLevel("p is a percentage between 0 and 100")
        x1 = np.asarray(largest, dtype=float).ravel()
        x2 = np.asarray(second, dtype=float).ravel()
        if x1.size != table.n_cells or x2.size != table.n_cells:
            raise InvalidProtectionLevel("largest and second need one entry per cell")
        remainder = table.values - np.nan_to_num(x1) - np.nan_to_num(x2)
        level = np.maximum(p / 100.0 * np.nan_to_num(x1) - remainder, 0.0)
        return cls.explicit(table, lower=level, upper=level)
