"""Rounding to a base and category merging."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc.protection import (
    InvalidTable,
    LinkedTable,
    RoundingMode,
    controlled_round,
    merge_small_categories,
    round_to_base,
    with_margins,
)

from .intervals import additivity_rows


def test_round_to_base_recomputes_margins_from_rounded_cells() -> None:
    """Cells 3 7 2 / 5 9 1 round (base 5, halves up) to 5 5 0 / 5 10 0.

    Row totals are then 10 and 15, column totals 10 15 0, grand total 25,
    although the true grand total 27 would round to 25 and the true column
    total 3 (c) would round to 5: margins are sums of the rounded cells.
    """
    table = LinkedTable.from_array(with_margins(np.array([[3, 7, 2], [5, 9, 1]])))
    rounded = round_to_base(table, 5)
    assert rounded.array().tolist() == [[5, 5, 0, 10], [5, 10, 0, 15], [10, 15, 0, 25]]
    up = round_to_base(table, 5, RoundingMode.UP)
    assert up.array()[:2, :3].tolist() == [[5, 10, 5], [5, 10, 5]]
    with pytest.raises(ValueError, match="positive"):
        round_to_base(table, 0)


@settings(max_examples=examples(15), deadline=None)
@given(
    st.integers(2, 5),
    st.integers(2, 5),
    st.lists(st.integers(0, 40), min_size=25, max_size=25),
    st.sampled_from([3, 5, 10]),
)
def test_controlled_rounding_is_additive_and_adjacent(
    rows: int, cols: int, numbers: list[int], base: int
) -> None:
    """2-D tables always have a controlled rounding (Cox 1987): check its three properties."""
    interior = np.array(numbers[: rows * cols]).reshape(rows, cols)
    table = LinkedTable.from_array(with_margins(interior))
    rounded = controlled_round(table, base).values
    assert np.allclose(additivity_rows(table.shape) @ rounded, 0)  # additive, margins included
    assert np.allclose(rounded % base, 0)  # multiples of the base
    assert (np.abs(rounded - table.values) < base).all()  # adjacent multiple
    multiples = table.values % base == 0
    assert np.array_equal(rounded[multiples], table.values[multiples])  # multiples unchanged


def cells(levels: dict[str, int]) -> pl.DataFrame:
    """One-dimension-plus-sex frame: level -> count for F; M has count 1 everywhere."""
    rows = []
    for level, n in levels.items():
        rows += [("F", level, n), ("M", level, 1)]
    frame = pl.DataFrame(rows, schema=["sex", "age", "n"], orient="row")
    return frame


def test_merge_unordered_small_levels_into_other() -> None:
    # margins (F + M): a 9, b 21, c 3, d 31
    recoding = merge_small_categories(
        cells({"a": 8, "b": 20, "c": 2, "d": 30}), ["sex", "age"], "n", "age", 10, fill_missing=True
    )
    assert recoding.mapping == {"a": "Other", "b": "b", "c": "Other", "d": "d"}
    table = recoding.table
    assert table.levels[1] == ("b", "d", "Other")
    assert table.array().tolist() == [[20, 30, 10, 60], [1, 1, 2, 4], [21, 31, 12, 64]]


def test_merge_unordered_adds_the_smallest_kept_level_when_needed() -> None:
    # a (margin 3) is the only small level: the smallest other level, b (21), joins it
    recoding = merge_small_categories(
        cells({"a": 2, "b": 20, "c": 40}), ["sex", "age"], "n", "age", 10, fill_missing=True
    )
    assert recoding.merged == {"Other": ["a", "b"]}


def test_merge_ordered_levels_stay_contiguous() -> None:
    # margins: 0-9 21, 10-19 3, 20-29 5, 30+ 41
    recoding = merge_small_categories(
        cells({"0-9": 20, "10-19": 2, "20-29": 4, "30+": 40}),
        ["sex", "age"],
        "n",
        "age",
        10,
        ordered=True,
        fill_missing=True,
    )
    # 10-19 (3) merges with its smaller neighbour 20-29 (5): 8, still small;
    # then with 0-9 (21) rather than 30+ (41).
    assert recoding.mapping == {"0-9": "0-9–20-29", "10-19": "0-9–20-29", "20-29": "0-9–20-29", "30+": "30+"}


def test_merge_refuses_an_unknown_dimension() -> None:
    with pytest.raises(InvalidTable, match="not one of"):
        merge_small_categories(cells({"a": 1, "b": 2}), ["sex", "age"], "n", "region", 10, fill_missing=True)


def test_merge_reads_margins_by_grouping_so_a_level_named_total_is_merged_like_any_other() -> None:
    # regions N 12, Total 3 (a real category), missing 8: the margin row is known by its GROUPING bit
    frame = pl.DataFrame({"region": ["N", "Total", None, None], "n": [12, 3, 8, 23], "g": [0, 0, 0, 1]})
    recoding = merge_small_categories(frame, ["region"], "n", "region", 10, null_level="(missing)", grouping="g")
    assert recoding.merged == {"Other": ["Total", "(missing)"]}
    assert recoding.table.levels == (("N", "Other"),) and recoding.table.total_label == "[Total]"
    assert recoding.table.array().tolist() == [12, 11, 23]
