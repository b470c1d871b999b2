"""Additive tables with margins: the structure every protection method works on.

A `LinkedTable` holds the cells of a k-dimensional table (k = 1, 2, 3, ...)
in which every dimension has its levels plus one total level, and every cell
whose key has a total in some dimension equals the sum of the cells it covers
("additivity"). The additivity constraints `constraints @ values == 0` are
generated from that structure, one row per (dimension, combination of the
other dimensions' levels): ``total - sum(parts) == 0``.

Cells are stored in C order of the dense array of shape ``(n_1 + 1, ...,
n_k + 1)`` in which the last index of every axis is that dimension's total.

A dimension may be hierarchical (sub-totals: prefectures within regions):
its levels then include the sub-total levels, and its relations say which
levels each parent sums ("East" = a + b, "Total" = East + West); the
constraints are generated per relation. Flat dimensions have the single
relation total = all levels.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from .errors import InvalidTable

TOTAL = "Total"
Relations = tuple[tuple[int, tuple[int, ...]], ...]
# Values may differ from the sum of their parts by this much (relative to the
# largest value) before the table is refused as non-additive.
ADDITIVITY_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True, eq=False)
class LinkedTable:
    """Cells of an additive table with margins (see the module docstring).

    `lower_bounds` / `upper_bounds` are what an intruder knows a priori about
    every cell (default 0 and +inf: counts and non-negative magnitudes).
    """

    dims: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]  # per dimension, the levels without the total
    values: np.ndarray
    unsafe: np.ndarray  # bool: primary-unsafe cells
    lower_bounds: np.ndarray
    upper_bounds: np.ndarray
    total_label: str = TOTAL
    value_name: str = "value"
    # Per dimension: (parent index, child indices) pairs; None = flat table.
    relations: tuple[Relations, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Dense shape, totals included (last index of each axis)."""
        return tuple(len(lv) + 1 for lv in self.levels)

    @property
    def n_cells(self) -> int:
        return int(self.values.size)

    def multi_index(self, cell: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(cell, self.shape))

    def key(self, cell: int) -> dict[str, str]:
        """The labels of one cell, e.g. ``{"sex": "F", "region": "Total"}``."""
        return {
            dim: (levels[i] if i < len(levels) else self.total_label)
            for dim, levels, i in zip(self.dims, self.levels, self.multi_index(cell))
        }

    def dimension_relations(self) -> tuple[Relations, ...]:
        """Per dimension, which level sums which (flat: the total sums every level)."""
        if self.relations is not None:
            return self.relations
        return tuple(((m - 1, tuple(range(m - 1))),) for m in self.shape)

    @property
    def is_flat(self) -> bool:
        return all(len(r) == 1 for r in self.dimension_relations())

    def is_interior(self) -> np.ndarray:
        """True for cells with no total or sub-total in any dimension (the leaves)."""
        interior = np.ones(self.shape, dtype=bool)
        for axis, leaves in enumerate(self._leaf_indicators()):
            view = [1] * len(self.shape)
            view[axis] = -1
            interior &= leaves.reshape(view)
        return interior.ravel()

    def _leaf_indicators(self) -> list[np.ndarray]:
        out = []
        for m, relations in zip(self.shape, self.dimension_relations()):
            leaf = np.ones(m, dtype=bool)
            leaf[[parent for parent, _ in relations]] = False
            out.append(leaf)
        return out

    def aggregate(self, array: np.ndarray) -> np.ndarray:
        """Every total and sub-total recomputed as the sum of the leaf cells it covers."""
        result = np.asarray(array, dtype=float).reshape(self.shape)
        for axis, (m, relations) in enumerate(zip(self.shape, self.dimension_relations())):
            cover = _leaf_cover(m, relations)
            result = np.moveaxis(np.tensordot(cover, result, axes=([1], [axis])), 0, axis)
        return result

    def array(self) -> np.ndarray:
        """Values as the dense array (totals last on each axis)."""
        return self.values.reshape(self.shape)

    def constraints(self) -> sp.csr_matrix:
        """Additivity: one row ``total - sum(parts)`` per dimension and other-levels combination."""
        return additivity_matrix(self.shape, self.relations)

    def frame(self) -> pl.DataFrame:
        """Cells as a polars frame: dimension columns, the value, `unsafe`."""
        labels = [list(lv) + [self.total_label] for lv in self.levels]
        keys = list(itertools.product(*labels))
        columns: dict[str, object] = {
            dim: [k[d] for k in keys] for d, dim in enumerate(self.dims)
        }
        columns[self.value_name] = self.values
        columns["unsafe"] = self.unsafe
        return pl.DataFrame(columns)

    def with_values(self, values: np.ndarray) -> LinkedTable:
        return dataclasses.replace(self, values=np.asarray(values, dtype=float))

    # -- construction ---------------------------------------------------------------

    @classmethod
    def from_array(
        cls,
        values: np.ndarray,
        unsafe: np.ndarray | None = None,
        *,
        dims: Sequence[str] | None = None,
        levels: Sequence[Sequence[str]] | None = None,
        lower_bound: float | np.ndarray = 0.0,
        upper_bound: float | np.ndarray = np.inf,
        total_label: str = TOTAL,
        value_name: str = "value",
    ) -> LinkedTable:
        """From a dense array whose last index on every axis is the total (see `with_margins`)."""
        array = np.asarray(values, dtype=float)
        if array.ndim == 0 or min(array.shape) < 2:
            raise InvalidTable("a table needs at least one dimension with one level plus its total")
        dims = tuple(dims) if dims is not None else tuple(f"dim{d}" for d in range(array.ndim))
        if len(dims) != array.ndim:
            raise InvalidTable(f"{len(dims)} dimension names for a {array.ndim}-dimensional array")
        if levels is None:
            levels = [[str(i) for i in range(m - 1)] for m in array.shape]
        levels = tuple(tuple(str(x) for x in lv) for lv in levels)
        if tuple(len(lv) + 1 for lv in levels) != array.shape:
            raise InvalidTable("levels must give each axis's labels without the total")
        mask = np.zeros(array.shape, bool) if unsafe is None else np.asarray(unsafe, bool)
        if mask.shape != array.shape:
            raise InvalidTable(f"unsafe mask has shape {mask.shape}, values {array.shape}")
        table = cls(
            dims=dims,
            levels=levels,
            values=array.ravel().copy(),
            unsafe=mask.ravel().copy(),
            lower_bounds=_broadcast(lower_bound, array.size, "lower_bound"),
            upper_bounds=_broadcast(upper_bound, array.size, "upper_bound"),
            total_label=total_label,
            value_name=value_name,
        )
        table.check()
        return table

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        dims: Sequence[str],
        value: str,
        unsafe: str | np.ndarray | pl.Series | None = None,
        *,
        total_label: str = TOTAL,
        fill_missing: bool = False,
        lower_bound: float = 0.0,
        upper_bound: float = np.inf,
        null_level: str | None = None,
        hierarchies: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        grouping: str | None = None,
    ) -> LinkedTable:
        """From a frame of cells: dimension columns, a value column, an unsafe marker.

        `hierarchies` gives sub-totals of a dimension: ``{"area": {"East":
        ["a", "b"], "West": ["c", "d"]}}``; levels not listed under a parent
        are summed by the total directly (here East and West). Sub-total levels
        are rows of the frame like any other level.

        A margin row has the total label (default ``"Total"``) or null in the
        dimension it sums over; when null is a level of its own (a missing
        value of the variable), pass `null_level`, the label it gets here.
        With `fill_missing`, absent interior cells are zeros (cross-tabulations
        omit empty cells) and absent margins are the sums of their cells, both
        marked safe; otherwise an incomplete table is refused. Levels keep
        their order of first appearance.

        `grouping` names an integer column saying which rows are margins by how
        they were computed (SQL's ``GROUPING()``: bit ``k - 1 - i`` set when the
        row sums over ``dims[i]``). Labels are then never read for it: a level
        may be named like the total (the table's `total_label` is then
        bracketed, ``"[Total]"``, until no level holds it), and null is a level
        (named `null_level`, required when null occurs).
        """
        dims = tuple(dims)
        _check_columns(frame, dims, value)
        if len(dims) == 0:
            raise InvalidTable("name at least one dimension column")
        if frame.height == 0:
            raise InvalidTable("the table has no cells")
        unsafe_values = _unsafe_column(frame, unsafe)
        if grouping is None:
            labels = frame.select(
                [
                    pl.col(d).cast(pl.String).fill_null(null_level or total_label).alias(d)
                    for d in dims
                ]
            )
        else:
            labels, total_label = _labels_by_grouping(frame, dims, grouping, total_label, null_level)
        levels = tuple(
            tuple(x for x in labels[d].unique(maintain_order=True).to_list() if x != total_label)
            for d in dims
        )
        for d, lv in zip(dims, levels):
            if not lv:
                raise InvalidTable(f"dimension {d!r} has no level other than its total")
        shape = tuple(len(lv) + 1 for lv in levels)
        unknown = set(hierarchies or {}) - set(dims)
        if unknown:
            raise InvalidTable(f"hierarchies name {sorted(unknown)}, which are not dimensions")
        relations = (
            tuple(
                _relations(d, lv, (hierarchies or {}).get(d), total_label)
                for d, lv in zip(dims, levels)
            )
            if hierarchies
            else None
        )
        flat = _cell_index(labels, dims, levels, total_label)
        if len(np.unique(flat)) != len(flat):
            dup = pl.Series(flat).is_duplicated().arg_max()
            raise InvalidTable(
                f"cell {labels.row(dup, named=True)} appears more than once: give one "
                "row per cell (if null marks a missing level, not a margin, pass null_level)"
            )
        raw = frame[value].cast(pl.Float64)
        if raw.null_count() or np.isnan(raw.to_numpy()).any():
            raise InvalidTable(f"column {value!r} has missing values: every cell needs a value")
        values = np.full(int(np.prod(shape)), np.nan)
        values[flat] = raw.to_numpy()
        mask = np.zeros(values.size, bool)
        mask[flat] = unsafe_values
        table = cls(
            dims=dims,
            levels=levels,
            values=values,
            unsafe=mask,
            lower_bounds=np.full(values.size, float(lower_bound)),
            upper_bounds=np.full(values.size, float(upper_bound)),
            total_label=total_label,
            value_name=value,
            relations=relations,
        )
        missing = np.isnan(values)
        if missing.any():
            if not fill_missing:
                example = table.key(int(np.flatnonzero(missing)[0]))
                raise InvalidTable(
                    f"{int(missing.sum())} cells are missing, e.g. {example}; pass "
                    "fill_missing=True to treat absent cells as zeros and absent margins as sums"
                )
            leaves = np.where(table.is_interior(), np.nan_to_num(values, nan=0.0), 0.0)
            sums = table.aggregate(leaves).ravel()
            table = table.with_values(np.where(missing, np.where(table.is_interior(), 0.0, sums), values))
        table.check()
        return table

    def mask_from(
        self,
        frame: pl.DataFrame,
        flags: str | np.ndarray | pl.Series,
        *,
        null_level: str | None = None,
        grouping: str | None = None,
    ) -> np.ndarray:
        """A per-cell mask (in this table's cell order) from a frame of labelled rows.

        E.g. the suppression pattern of a table a researcher publishes: its
        rows carry the same dimension labels, `flags` is a boolean column or
        vector (True = suppressed). Cells absent from the frame are False;
        labels this table does not have are refused. `grouping`: margins known
        by their GROUPING bits, as in `from_frame`.
        """
        _check_columns(frame, self.dims, None)
        values = _unsafe_column(frame, flags)
        if grouping is None:
            labels = frame.select(
                pl.col(d).cast(pl.String).fill_null(null_level or self.total_label).alias(d)
                for d in self.dims
            )
        else:
            labels, total = _labels_by_grouping(frame, self.dims, grouping, self.total_label, null_level)
            if total != self.total_label:
                raise InvalidTable(f"a level of the frame is named {self.total_label!r}, the table's total")
        mask = np.zeros(self.n_cells, dtype=bool)
        mask[_cell_index(labels, self.dims, self.levels, self.total_label)] = values
        return mask

    def check(self) -> None:
        """Refuse tables that are not additive or break their own a-priori bounds."""
        if not np.isfinite(self.values).all():
            raise InvalidTable("every cell value must be a finite number")
        if (self.lower_bounds > self.upper_bounds).any():
            raise InvalidTable("a lower bound is above its upper bound")
        below = self.values < self.lower_bounds
        if below.any():
            cell = int(np.flatnonzero(below)[0])
            raise InvalidTable(
                f"cell {self.key(cell)} is below its a-priori lower bound "
                f"{self.lower_bounds[cell]}; pass lower_bound=-inf for values that can be negative"
            )
        if (self.values > self.upper_bounds).any():
            raise InvalidTable("a cell is above its a-priori upper bound")
        residual = self.constraints() @ self.values
        scale = max(1.0, float(np.abs(self.values).max()))
        worst = int(np.abs(residual).argmax())
        if abs(residual[worst]) > ADDITIVITY_TOLERANCE * scale * 10:
            raise InvalidTable(
                "the margins are not the sums of their cells (off by "
                f"{abs(residual[worst]):.6g}); protection needs an additive table: "
                "counts or sums, never means or medians"
            )


def _labels_by_grouping(
    frame: pl.DataFrame,
    dims: tuple[str, ...],
    grouping: str,
    total_label: str,
    null_level: str | None,
) -> tuple[pl.DataFrame, str]:
    """The dimension labels, margins by their GROUPING bits; and the total's label, made to differ from every level."""
    if grouping not in frame.columns or not frame[grouping].dtype.is_integer() or frame[grouping].null_count():
        raise InvalidTable(f"grouping column {grouping!r} must be integers without nulls, one per row")
    k = len(dims)
    summed = {d: (pl.col(grouping) & (1 << (k - 1 - i))) != 0 for i, d in enumerate(dims)}
    levels = frame.select(pl.when(~summed[d]).then(pl.col(d).cast(pl.String)).alias(d) for d in dims)
    missing = frame.select(pl.any_horizontal(~summed[d] & pl.col(d).is_null() for d in dims)).to_series().any()
    if missing and null_level is None:
        raise InvalidTable("null is a level of a dimension (margins are known by the grouping): pass null_level")
    taken = {v for column in levels.iter_columns() for v in column.drop_nulls()} | {null_level}
    while total_label in taken:
        total_label = f"[{total_label}]"
    labels = frame.select(
        pl.when(summed[d]).then(pl.lit(total_label)).otherwise(pl.col(d).cast(pl.String).fill_null(null_level))
        .alias(d)
        for d in dims
    )
    return labels, total_label


def with_margins(interior: np.ndarray) -> np.ndarray:
    """Append a total as the last index of every axis: ``(n1, n2) -> (n1 + 1, n2 + 1)``."""
    array = np.asarray(interior, dtype=float)
    for axis in range(array.ndim):
        array = np.concatenate([array, array.sum(axis=axis, keepdims=True)], axis=axis)
    return array


def additivity_matrix(
    shape: tuple[int, ...], relations: tuple[Relations, ...] | None = None
) -> sp.csr_matrix:
    """Rows ``parent - sum(children) == 0`` for every relation of every axis and every
    index of the other axes (flat axes: the total and all other levels)."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    data: list[np.ndarray] = []
    n_rows = 0
    for axis, m in enumerate(shape):
        moved = np.moveaxis(index, axis, -1).reshape(-1, m)  # one line per other-axes index
        k = moved.shape[0]
        axis_relations = relations[axis] if relations else ((m - 1, tuple(range(m - 1))),)
        for parent, children in axis_relations:
            members = np.array([*children, parent])
            row_ids = np.repeat(np.arange(n_rows, n_rows + k), members.size)
            coef = np.tile(np.r_[-np.ones(len(children)), 1.0], k)
            rows.append(row_ids)
            cols.append(moved[:, members].ravel())
            data.append(coef)
            n_rows += k
    return sp.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, int(np.prod(shape))),
    )


def _relations(
    dim: str,
    levels: tuple[str, ...],
    hierarchy: Mapping[str, Sequence[str]] | None,
    total_label: str,
) -> Relations:
    """Index relations of one dimension from its labels; the total sums the top levels."""
    total = len(levels)
    position = {label: i for i, label in enumerate(levels)} | {total_label: total}
    parent_of: dict[int, int] = {}
    relations: list[tuple[int, tuple[int, ...]]] = []
    for parent, children in (hierarchy or {}).items():
        names = [parent, *children]
        absent = [n for n in names if n not in position]
        if absent:
            raise InvalidTable(f"hierarchy of {dim!r} names levels {absent} the table does not have")
        kids = tuple(position[c] for c in children)
        if not kids or total in kids or position[parent] in kids:
            raise InvalidTable(f"hierarchy of {dim!r}: {parent!r} needs children other than itself and the total")
        for kid in kids:
            if kid in parent_of:
                raise InvalidTable(f"hierarchy of {dim!r}: {levels[kid]!r} has two parents")
            parent_of[kid] = position[parent]
        relations.append((position[parent], kids))
    top = tuple(i for i in range(total) if i not in parent_of)
    if total_label not in (hierarchy or {}):
        relations.append((total, top))
        parent_of.update({i: total for i in top})
    elif top:
        raise InvalidTable(f"hierarchy of {dim!r}: levels {[levels[i] for i in top]} are in no group")
    for level in range(total):
        seen, node = {level}, level
        while node != total:
            node = parent_of[node]
            if node in seen:
                raise InvalidTable(f"hierarchy of {dim!r} has a cycle through {levels[level]!r}")
            seen.add(node)
    return tuple(relations)


def _leaf_cover(m: int, relations: Relations) -> np.ndarray:
    """(m x m) 0/1 matrix: row i marks the leaf levels that level i sums (a leaf: itself)."""
    children = {parent: kids for parent, kids in relations}
    cover = np.zeros((m, m))

    def leaves(level: int) -> list[int]:
        if level not in children:
            return [level]
        return [leaf for kid in children[level] for leaf in leaves(kid)]

    for level in range(m):
        cover[level, leaves(level)] = 1.0
    return cover


def from_shadow(
    shadow_frame: pl.DataFrame,
    dims: Sequence[str],
    value: str,
    unsafe_mask: str | np.ndarray | pl.Series,
    *,
    total_label: str = TOTAL,
    fill_missing: bool = False,
    lower_bound: float = 0.0,
    upper_bound: float = np.inf,
    null_level: str | None = None,
    hierarchies: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    grouping: str | None = None,
) -> LinkedTable:
    """Adapter for shadow tables: a polars frame of cells with margins rows.

    Margin rows are those whose `grouping` bits say so (a shadow frame's
    ``sdc_grouping``; see `LinkedTable.from_frame`), or, without it, those
    holding `total_label` (or null, unless `null_level` names the level that
    null stands for) in the dimensions they sum over;
    `unsafe_mask` is a boolean column name or a boolean vector aligned with the
    frame's rows (True = primary-unsafe). Only additive statistics (counts,
    weighted counts, sums) can be protected this way.
    """
    return LinkedTable.from_frame(
        shadow_frame,
        dims,
        value,
        unsafe_mask,
        total_label=total_label,
        fill_missing=fill_missing,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
        null_level=null_level,
        hierarchies=hierarchies,
        grouping=grouping,
    )


def _broadcast(bound: float | np.ndarray, size: int, name: str) -> np.ndarray:
    array = np.asarray(bound, dtype=float)
    if array.ndim == 0:
        return np.full(size, float(array))
    if array.size != size:
        raise InvalidTable(f"{name} has {array.size} entries for {size} cells")
    return array.ravel().copy()


def _cell_index(
    labels: pl.DataFrame,
    dims: tuple[str, ...],
    levels: tuple[tuple[str, ...], ...],
    total_label: str,
) -> np.ndarray:
    """Flat cell index of every labelled row."""
    coords = []
    for dim, lv in zip(dims, levels):
        position = {label: i for i, label in enumerate(list(lv) + [total_label])}
        column = labels[dim].to_list()
        unknown = sorted({x for x in column if x not in position})
        if unknown:
            raise InvalidTable(f"{dim!r} has levels {unknown[:5]} that the table does not have")
        coords.append(np.array([position[x] for x in column], dtype=np.int64))
    return np.ravel_multi_index(coords, tuple(len(lv) + 1 for lv in levels))


def _check_columns(frame: pl.DataFrame, dims: tuple[str, ...], value: str | None) -> None:
    missing = [c for c in (*dims, value) if c is not None and c not in frame.columns]
    if missing:
        raise InvalidTable(f"columns {missing} are not in the table (it has {frame.columns})")
    if value is None:
        return
    if value in dims:
        raise InvalidTable(f"{value!r} is both a dimension and the value")
    if not frame[value].dtype.is_numeric():
        raise InvalidTable(f"value column {value!r} is {frame[value].dtype}, not numeric")


def _unsafe_column(
    frame: pl.DataFrame, unsafe: str | np.ndarray | pl.Series | None
) -> np.ndarray:
    if unsafe is None:
        return np.zeros(frame.height, bool)
    if isinstance(unsafe, str):
        if unsafe not in frame.columns:
            raise InvalidTable(f"unsafe column {unsafe!r} is not in the table")
        series = frame[unsafe]
    else:
        series = pl.Series(np.asarray(unsafe))
    if series.dtype != pl.Boolean or series.len() != frame.height or series.null_count():
        raise InvalidTable(
            "the unsafe mask must be a boolean without nulls, one entry per row of the table"
        )
    return series.to_numpy().astype(bool)
