"""Hierarchical dimensions (sub-totals): structure, audit, suppression, rounding."""
from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.protection import (
    IntervalStatus,
    InvalidTable,
    LinkedTable,
    ProtectionLevels,
    SuppressionMethod,
    audit,
    from_shadow,
    round_to_base,
    secondary_suppression,
)

from .intervals import protected

AREAS = {"East": ["a", "b"], "West": ["c", "d"]}
# region x sex; East = a + b, West = c + d, Total = East + West
ROWS = {
    "a": (3, 10), "b": (12, 7), "East": (15, 17),
    "c": (6, 9), "d": (8, 4), "West": (14, 13), "Total": (29, 30),
}


def area_frame(unsafe: set[tuple[str, str]] = frozenset({("a", "F")})) -> pl.DataFrame:
    rows = []
    for region, (f, m) in ROWS.items():
        rows += [(region, "F", f), (region, "M", m), (region, "Total", f + m)]
    frame = pl.DataFrame(rows, schema=["region", "sex", "n"], orient="row")
    flags = [(r, s) in unsafe for r, s in zip(frame["region"], frame["sex"])]
    return frame.with_columns(pl.Series("unsafe", flags))


def area_table(unsafe: set[tuple[str, str]] = frozenset({("a", "F")})) -> LinkedTable:
    return from_shadow(area_frame(unsafe), ["region", "sex"], "n", "unsafe", hierarchies={"region": AREAS})


def cells(table: LinkedTable, keys: list[tuple[str, str]]) -> np.ndarray:
    mask = np.zeros(table.n_cells, bool)
    for cell in range(table.n_cells):
        if tuple(table.key(cell).values()) in keys:
            mask[cell] = True
    return mask


def test_sub_totals_give_their_own_constraints() -> None:
    table = area_table()
    assert not table.is_flat
    # region: (East, West, Total) relations x 3 sex levels; sex: 1 relation x 7 region levels
    assert table.constraints().shape[0] == 3 * 3 + 7
    assert np.allclose(table.constraints() @ table.values, 0)
    interior = {tuple(table.key(int(c)).values()) for c in np.flatnonzero(table.is_interior())}
    assert interior == {(r, s) for r in "abcd" for s in "FM"}


def test_hand_worked_intervals_inside_one_group() -> None:
    """Suppress a/F, a/M, b/F, b/M. With East/F = 15, East/M = 17 and the row totals
    13 and 19 published: a/F = t, b/F = 15 - t, a/M = 13 - t, b/M = 4 + t, and t in
    [0, 13] from non-negativity: a/F in [0, 13], b/F in [2, 15], a/M in [0, 13],
    b/M in [4, 17]."""
    table = area_table()
    report = audit(table, cells(table, [("a", "F"), ("a", "M"), ("b", "F"), ("b", "M")]))
    got = {tuple(c.key.values()): [c.low, c.high] for c in report.intervals}
    expected = {("a", "F"): [0, 13], ("b", "F"): [2, 15], ("a", "M"): [0, 13], ("b", "M"): [4, 17]}
    assert got.keys() == expected.keys()
    for key, interval in expected.items():
        assert got[key] == pytest.approx(interval, abs=1e-9)
    assert report.verdict is Verdict.PASS


def test_a_rectangle_across_groups_is_recomputable_from_the_sub_total() -> None:
    """a/F, a/M, c/F, c/M form a rectangle, but East/F - b/F = 15 - 12 gives a/F = 3."""
    table = area_table()
    report = audit(table, cells(table, [("a", "F"), ("a", "M"), ("c", "F"), ("c", "M")]))
    assert report.verdict is Verdict.FAIL
    assert {c.status for c in report.intervals} == {IntervalStatus.RECOMPUTABLE}


@pytest.mark.parametrize(
    ("hierarchy", "message"),
    [
        ({"East": ["a", "b"], "West": ["b", "c", "d"]}, "two parents"),
        ({"East": ["a", "x"]}, "does not have"),
        ({"East": ["a", "b"], "a": ["East"]}, "cycle"),
        ({"Total": ["East"], "East": ["a", "b"], "West": ["c", "d"]}, "in no group"),
        ({"East": []}, "children"),
    ],
)
def test_bad_hierarchies_are_refused(hierarchy: dict, message: str) -> None:
    with pytest.raises(InvalidTable, match=message):
        from_shadow(area_frame(), ["region", "sex"], "n", "unsafe", hierarchies={"region": hierarchy})


def test_wrong_sub_total_values_are_refused() -> None:
    frame = area_frame().with_columns(
        pl.when((pl.col("region") == "East") & (pl.col("sex") == "F")).then(16).otherwise(pl.col("n")).alias("n")
    )
    with pytest.raises(InvalidTable, match="not the sums"):
        from_shadow(frame, ["region", "sex"], "n", "unsafe", hierarchies={"region": AREAS})


def test_rounding_recomputes_sub_totals_from_rounded_cells() -> None:
    table = round_to_base(area_table(), 5)
    value = {tuple(table.key(c).values()): table.values[c] for c in range(table.n_cells)}
    # a/F 3 -> 5, b/F 12 -> 10: East/F = 15; c/F 6 -> 5, d/F 8 -> 10: West/F = 15
    assert (value[("East", "F")], value[("West", "F")], value[("Total", "F")]) == (15, 15, 30)
    assert np.allclose(table.constraints() @ table.values, 0)


def reference_protected(table: LinkedTable, mask: np.ndarray, levels: ProtectionLevels) -> bool:
    return protected(table, mask, levels.lower, levels.upper, levels.sliding, rows=label_rows(table))


def label_rows(table: LinkedTable) -> np.ndarray:
    """Constraint rows written from the labels: region sub-totals and totals, sex totals."""
    index = {tuple(table.key(c).values()): c for c in range(table.n_cells)}
    regions = [*table.levels[0], table.total_label]
    groups = {"East": ["a", "b"], "West": ["c", "d"], "Total": ["East", "West"]}
    rows = []
    for sex in ["F", "M", "Total"]:
        for parent, children in groups.items():
            row = np.zeros(table.n_cells)
            row[index[(parent, sex)]] = 1
            for child in children:
                row[index[(child, sex)]] = -1
            rows.append(row)
    for region in regions:
        row = np.zeros(table.n_cells)
        row[index[(region, "Total")]] = 1
        row[index[(region, "F")]] = row[index[(region, "M")]] = -1
        rows.append(row)
    return np.array(rows)


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 20), min_size=8, max_size=8),
    st.lists(st.sampled_from(list(itertools.product(list(ROWS), ["F", "M", "Total"]))), min_size=1, max_size=3, unique=True),
    st.sampled_from(list(SuppressionMethod)),
)
def test_suppression_protects_hierarchical_tables(
    counts: list[int], unsafe: list[tuple[str, str]], method: SuppressionMethod
) -> None:
    leaves = dict(zip(itertools.product("abcd", "FM"), counts))
    value = dict(leaves)
    for sex in "FM":
        value[("East", sex)] = leaves[("a", sex)] + leaves[("b", sex)]
        value[("West", sex)] = leaves[("c", sex)] + leaves[("d", sex)]
        value[("Total", sex)] = value[("East", sex)] + value[("West", sex)]
    rows = [(r, s, value[(r, s)]) for r in ROWS for s in "FM"]
    rows += [(r, "Total", value[(r, "F")] + value[(r, "M")]) for r in ROWS]
    frame = pl.DataFrame(rows, schema=["region", "sex", "n"], orient="row")
    flags = pl.Series([(r, s) in unsafe for r, s in zip(frame["region"], frame["sex"])])
    table = from_shadow(frame, ["region", "sex"], "n", flags, hierarchies={"region": AREAS})
    levels = ProtectionLevels.fraction(table, 0.5)
    result = secondary_suppression(table, levels, method)
    assert result.audit.passed
    assert reference_protected(table, result.suppressed, levels)
