"""Secondary suppression of large hierarchical tables (hierarchical.py): the flows, the certified audit as
a judge (checked against the exact audit, and attacked with forged and broken certificates)."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.protection import (
    CostFunction,
    IntervalStatus,
    LinkedTable,
    ProtectionLevels,
    SuppressionMethod,
    audit,
    secondary_suppression,
    with_margins,
)
from disclosure_review.sdc.protection.hierarchical import (
    Hypercube,
    certified_audit,
    dimension_flows,
    feasible_moves,
    hypercube,
)
from disclosure_review.sdc.protection.suppression import requirements, suppress_hierarchical

AREA = {"East": ["e1", "e2", "e3"], "West": ["w1", "w2"], "North": ["n1", "n2", "n3"]}
INDUSTRY = {"A": ["A01", "A02"], "B": ["B05", "B06", "B07"]}
SIZES = ["1-4", "5-9", "10+"]


def levels_of(hierarchy: dict[str, list[str]]) -> list[str]:
    return [leaf for kids in hierarchy.values() for leaf in kids] + list(hierarchy)


def business_table(seed: int, mean: float = 12.0, threshold: int = 10) -> LinkedTable:
    """area (3 regions > 8 municipalities) x industry (2 sections > 5 divisions) x size, counts with every
    total and sub-total; cells 0 < n < threshold unsafe."""
    rng = np.random.default_rng(seed)
    leaves = {
        (a, i, s): int(rng.poisson(mean * rng.lognormal(0, 0.7)))
        for a in itertools.chain(*AREA.values()) for i in itertools.chain(*INDUSTRY.values()) for s in SIZES
    }

    def members(label: str, hierarchy: dict[str, list[str]]) -> list[str]:
        if label == "Total":
            return list(itertools.chain(*hierarchy.values()))
        return hierarchy.get(label, [label])

    rows = []
    for a in [*levels_of(AREA), "Total"]:
        for i in [*levels_of(INDUSTRY), "Total"]:
            for s in [*SIZES, "Total"]:
                n = sum(leaves[(x, y, z)] for x in members(a, AREA) for y in members(i, INDUSTRY)
                        for z in (SIZES if s == "Total" else [s]))
                rows.append((a, i, s, n))
    frame = pl.DataFrame(rows, schema=["area", "industry", "size", "n"], orient="row")
    frame = frame.with_columns(unsafe=(pl.col("n") > 0) & (pl.col("n") < threshold))
    return LinkedTable.from_frame(frame, ["area", "industry", "size"], "n", "unsafe",
                                  hierarchies={"area": AREA, "industry": INDUSTRY})


def test_every_flow_keeps_every_sum_of_its_dimension() -> None:
    table = business_table(0)
    for d, (per_level, relations) in enumerate(zip(dimension_flows(table), table.dimension_relations())):
        for level, flows in enumerate(per_level):
            assert flows, f"no flow through level {level} of {table.dims[d]}"
            for cells, signs in flows:
                vector = np.zeros(table.shape[d])
                vector[cells] = signs
                assert vector[level] == 1.0
                for parent, kids in relations:
                    assert vector[parent] == vector[list(kids)].sum()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pattern_passes_the_exact_audit_and_certified_intervals_lie_inside_the_exact_ones(seed: int) -> None:
    table = business_table(seed)
    levels = ProtectionLevels.threshold(table, 10)
    assert table.unsafe.sum() > 10
    result = suppress_hierarchical(table, levels, cost=CostFunction.CELLS)
    assert result.audit.passed and result.method is SuppressionMethod.HIERARCHICAL
    assert result.suppressed[table.unsafe].all()
    exact = audit(table, result.suppressed, levels)
    assert exact.passed
    exact_by_cell = {c.cell: c for c in exact.intervals}
    for certified in result.audit.intervals:
        truth = exact_by_cell[certified.cell]
        assert truth.low <= certified.low + 1e-9 and certified.high <= truth.high + 1e-9


def cube_of(table: LinkedTable, cells: list[int], signs: list[float]) -> Hypercube:
    return hypercube(table, np.array(cells), np.array(signs))


def single_cube_table() -> tuple[LinkedTable, ProtectionLevels, np.ndarray, Hypercube]:
    """3 x 3 with margins; cell (0, 0) unsafe, protected only by the cube (0,0) (0,1) (1,0) (1,1)."""
    values = with_margins(np.array([[3, 20, 30], [25, 40, 35], [30, 45, 50]]))
    unsafe = np.zeros(values.shape, bool)
    unsafe[0, 0] = True
    table = LinkedTable.from_array(values, unsafe)
    levels = ProtectionLevels.threshold(table, 10)
    index = np.arange(table.n_cells).reshape(table.shape)
    corners = [index[0, 0], index[0, 1], index[1, 0], index[1, 1]]
    suppressed = np.zeros(table.n_cells, bool)
    suppressed[corners] = True
    return table, levels, suppressed, cube_of(table, corners, [1, -1, -1, 1])


def test_a_valid_certificate_passes() -> None:
    table, levels, suppressed, cube = single_cube_table()
    report = certified_audit(table, suppressed, requirements(table, levels), [cube])
    assert report.verdict is Verdict.PASS
    assert audit(table, suppressed, levels).verdict is Verdict.PASS


def test_publishing_a_corner_is_caught() -> None:
    table, levels, suppressed, cube = single_cube_table()
    suppressed[cube.cells[3]] = False  # the certificate now moves a published cell
    assert not feasible_moves(table, [cube], suppressed).any()
    report = certified_audit(table, suppressed, requirements(table, levels), [cube])
    assert report.verdict is Verdict.FAIL
    assert {c.status for c in report.intervals} == {IntervalStatus.RECOMPUTABLE}


def test_a_forged_certificate_is_not_believed() -> None:
    """A claimed move that breaks a sum (two cells of different rows and columns) proves nothing."""
    table, levels, suppressed, _ = single_cube_table()
    index = np.arange(table.n_cells).reshape(table.shape)
    suppressed[:] = False
    suppressed[[index[0, 0], index[1, 1]]] = True
    forged = cube_of(table, [index[0, 0], index[1, 1]], [1, -1])
    assert not feasible_moves(table, [forged], suppressed).any()
    report = certified_audit(table, suppressed, requirements(table, levels), [forged])
    assert report.verdict is Verdict.FAIL


def test_a_certificate_claiming_more_room_than_the_bounds_allow_is_recomputed() -> None:
    table, levels, suppressed, cube = single_cube_table()
    bragging = dataclasses.replace(cube, up=1e9, down=1e9)
    tight = dataclasses.replace(table, upper_bounds=table.values.copy())  # nothing can move up
    report = certified_audit(tight, suppressed, requirements(tight, levels), [bragging])
    assert report.verdict is Verdict.FAIL


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.sampled_from([6.0, 12.0, 30.0]))
def test_hierarchical_patterns_pass_the_exact_audit(seed: int, mean: float) -> None:
    table = business_table(seed, mean)
    if not table.unsafe.any():
        return
    levels = ProtectionLevels.threshold(table, 10)
    result = secondary_suppression(table, levels, SuppressionMethod.HIERARCHICAL)
    assert result.audit.passed
    assert audit(table, result.suppressed, levels).passed
