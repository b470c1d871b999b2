"""Category merging (global recoding of one dimension of a table).

A level whose margin (the total over every other dimension) is below
`threshold` is merged with others until every level of the dimension,
merged ones included, reaches the threshold:

* unordered dimensions: all small levels go into one combined level; while
  it is still below the threshold, the smallest remaining level joins it;
* ordered dimensions (age bands, income classes): the smallest level below
  the threshold merges with its smaller neighbour, repeatedly, so merged
  levels stay contiguous ranges labelled ``"first–last"``.

Only additive values (counts, sums) can be merged by adding cells; margins
do not change. The merged table must be checked again: merging makes cells
larger, not necessarily safe. Apply the returned mapping to the query (a
CASE expression) when the table is recomputed from microdata.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import polars as pl

from .errors import InvalidTable
from .table import TOTAL, LinkedTable, with_margins

RANGE_SEPARATOR = "–"


@dataclasses.dataclass(frozen=True, eq=False)
class Recoding:
    """The merged table and how old levels map to new ones (kept levels map to themselves)."""

    dimension: str
    mapping: dict[str, str]
    table: LinkedTable

    def frame(self) -> pl.DataFrame:
        return self.table.frame().drop("unsafe")

    @property
    def merged(self) -> dict[str, list[str]]:
        """New level -> the old levels it combines (only levels that combine several)."""
        groups: dict[str, list[str]] = {}
        for old, new in self.mapping.items():
            groups.setdefault(new, []).append(old)
        return {new: olds for new, olds in groups.items() if len(olds) > 1}


def merge_small_categories(
    frame: pl.DataFrame,
    dims: Sequence[str],
    value: str,
    dimension: str,
    threshold: float,
    *,
    ordered: bool = False,
    merged_label: str = "Other",
    total_label: str = TOTAL,
    fill_missing: bool = False,
    null_level: str | None = None,
    grouping: str | None = None,
) -> Recoding:
    """Merge the levels of `dimension` whose margin is below `threshold` (see the module docstring).

    Margins are read as `LinkedTable.from_frame` reads them: by `grouping` when given, else by `total_label`."""
    if dimension not in dims:
        raise InvalidTable(f"{dimension!r} is not one of the table's dimensions {list(dims)}")
    if not np.isfinite(threshold) or threshold <= 0:
        raise InvalidTable("threshold must be a positive number")
    table = LinkedTable.from_frame(
        frame, dims, value, total_label=total_label, fill_missing=fill_missing, null_level=null_level,
        grouping=grouping,
    )
    axis = table.dims.index(dimension)
    levels = list(table.levels[axis])
    if merged_label in levels and not ordered:
        raise InvalidTable(f"{merged_label!r} is already a level of {dimension!r}: pick merged_label")
    array = table.array()
    interior = array[tuple(slice(0, m - 1) for m in table.shape)]
    other_axes = tuple(a for a in range(interior.ndim) if a != axis)
    margins = interior.sum(axis=other_axes)
    groups = (
        _merge_ordered(margins, threshold)
        if ordered
        else _merge_unordered(margins, threshold)
    )
    labels = [_label(levels, g, ordered, merged_label) for g in groups]
    mapping = {levels[i]: label for g, label in zip(groups, labels) for i in g}
    merged = np.stack([interior.take(g, axis=axis).sum(axis=axis) for g in groups], axis=axis)
    new_levels = list(table.levels)
    new_levels[axis] = tuple(labels)
    result = LinkedTable.from_array(
        with_margins(merged),
        dims=table.dims,
        levels=new_levels,
        lower_bound=-np.inf,
        total_label=table.total_label,
        value_name=value,
    )
    return Recoding(dimension=dimension, mapping=mapping, table=result)


def _merge_unordered(margins: np.ndarray, threshold: float) -> list[list[int]]:
    small = [i for i in range(len(margins)) if margins[i] < threshold]
    if not small:
        return [[i] for i in range(len(margins))]
    rest = sorted((i for i in range(len(margins)) if i not in small), key=lambda i: margins[i])
    group = list(small)
    while (len(group) < 2 or margins[group].sum() < threshold) and rest:
        group.append(rest.pop(0))
    kept = sorted(rest)
    # The combined level goes last, where "other" categories usually stand.
    return [[i] for i in kept] + [sorted(group)]


def _merge_ordered(margins: np.ndarray, threshold: float) -> list[list[int]]:
    groups = [[i] for i in range(len(margins))]
    sums = list(margins.astype(float))
    while len(groups) > 1:
        small = [k for k in range(len(groups)) if sums[k] < threshold]
        if not small:
            break
        k = min(small, key=lambda j: sums[j])
        if k == 0:
            neighbour = 1
        elif k == len(groups) - 1:
            neighbour = k - 1
        else:
            neighbour = k - 1 if sums[k - 1] <= sums[k + 1] else k + 1
        first, second = sorted((k, neighbour))
        groups[first:second + 1] = [groups[first] + groups[second]]
        sums[first:second + 1] = [sums[first] + sums[second]]
    return groups


def _label(levels: list[str], group: list[int], ordered: bool, merged_label: str) -> str:
    if len(group) == 1:
        return levels[group[0]]
    if ordered:
        return f"{levels[group[0]]}{RANGE_SEPARATOR}{levels[group[-1]]}"
    return merged_label
