"""The feasible-interval audit on hand-worked examples and against an independent LP."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.protection import (
    IntervalSolver,
    IntervalStatus,
    LinkedTable,
    ProtectionLevels,
    audit,
    with_margins,
)
from disclosure_review.sdc.protection.audit import Direction

from .intervals import reference_intervals

# Rows r1..r3, columns c1..c3 (interior cells; margins appended).
HAND_TABLE = np.array([[20, 50, 10], [8, 19, 22], [17, 32, 12]])


def hand_table(unsafe_cells: list[tuple[int, int]] = ((0, 0),)) -> LinkedTable:
    values = with_margins(HAND_TABLE)
    unsafe = np.zeros(values.shape, bool)
    for cell in unsafe_cells:
        unsafe[cell] = True
    return LinkedTable.from_array(
        values, unsafe, dims=("row", "col"), levels=[["r1", "r2", "r3"], ["c1", "c2", "c3"]]
    )


def pattern(table: LinkedTable, cells: list[tuple[int, ...]]) -> np.ndarray:
    mask = np.zeros(table.shape, bool)
    for cell in cells:
        mask[cell] = True
    return mask.ravel()


RECTANGLE = [(0, 0), (0, 2), (1, 0), (1, 2)]


def test_hand_worked_rectangle_gives_the_exact_intervals() -> None:
    """Suppress the rectangle r1c1=20, r1c3=10, r2c1=8, r2c3=22 of

                c1   c2   c3 | Total
        r1      20   50   10 |   80
        r2       8   19   22 |   49
        r3      17   32   12 |   61
        Total   45  101   44 |  190

    From the published cells: r1c1 + r1c3 = 80 - 50 = 30, r2c1 + r2c3 = 49 - 19
    = 30, r1c1 + r2c1 = 45 - 17 = 28, r1c3 + r2c3 = 44 - 12 = 32. With r1c1 = t:
    r1c3 = 30 - t, r2c1 = 28 - t, r2c3 = 2 + t, and all >= 0 gives 0 <= t <= 28.
    So r1c1 in [0, 28], r1c3 in [2, 30], r2c1 in [0, 28], r2c3 in [2, 30].
    """
    table = hand_table()
    report = audit(table, pattern(table, RECTANGLE))
    got = {c.key["row"] + c.key["col"]: [c.low, c.high] for c in report.intervals}
    expected = {"r1c1": [0, 28], "r1c3": [2, 30], "r2c1": [0, 28], "r2c3": [2, 30]}
    assert got.keys() == expected.keys()
    for key, interval in expected.items():
        assert got[key] == pytest.approx(interval, abs=1e-9)
    assert report.verdict is Verdict.PASS
    frame = report.frame()
    assert frame.columns[:2] == ["row", "col"]
    assert frame.filter(frame["primary"])["high"].to_list() == pytest.approx([28.0])


def test_protection_level_boundary_on_the_hand_example() -> None:
    """r1c1 = 20 can reach 28: an upper level of 8 is met exactly, 8.5 is not."""
    table = hand_table()
    mask = pattern(table, RECTANGLE)
    met = audit(table, mask, ProtectionLevels.explicit(table, upper=8.0, lower=20.0))
    assert met.verdict is Verdict.PASS
    short = audit(table, mask, ProtectionLevels.explicit(table, upper=8.5))
    assert short.verdict is Verdict.FAIL
    [primary] = [c for c in short.intervals if c.primary]
    assert primary.status is IntervalStatus.TOO_NARROW
    # Width requirement (sliding): the interval is 28 wide.
    assert audit(table, mask, ProtectionLevels.explicit(table, sliding=28.0)).passed
    assert not audit(table, mask, ProtectionLevels.explicit(table, sliding=28.5)).passed


def test_lower_level_is_capped_by_the_lower_bound() -> None:
    """r2c1 = 8 can reach 0, its lower bound: a lower level of 50 cannot ask for more."""
    table = hand_table([(1, 0)])
    report = audit(table, pattern(table, RECTANGLE), ProtectionLevels.explicit(table, lower=50.0))
    assert report.verdict is Verdict.PASS


def test_primary_suppression_alone_in_a_2x2_table_is_detected() -> None:
    """Only the unsafe cell suppressed: row total minus the other cell gives it back."""
    values = with_margins(np.array([[3, 7], [5, 9]]))
    unsafe = np.zeros(values.shape, bool)
    unsafe[0, 0] = True
    table = LinkedTable.from_array(values, unsafe)
    report = audit(table, unsafe.ravel(), ProtectionLevels.fraction(table, 0.5))
    assert report.verdict is Verdict.FAIL
    [cell] = report.intervals
    assert cell.status is IntervalStatus.RECOMPUTABLE
    assert (cell.low, cell.high) == pytest.approx((3.0, 3.0))


def test_a_published_unsafe_cell_fails() -> None:
    table = hand_table([(2, 2)])
    report = audit(table, pattern(table, RECTANGLE))
    assert report.verdict is Verdict.FAIL
    assert report.published_unsafe == ({"row": "r3", "col": "c3"},)


def test_unbounded_cells_have_infinite_intervals() -> None:
    """Suppressing a whole row with its margin and the grand total leaves no upper limit."""
    table = hand_table()
    cells = [(0, 0), (0, 1), (0, 2), (0, 3), (3, 0), (3, 1), (3, 2), (3, 3)]
    report = audit(table, pattern(table, cells), ProtectionLevels.explicit(table, upper=1e9))
    assert all(np.isinf(c.high) for c in report.intervals)
    assert report.passed


def test_pattern_of_wrong_size_is_refused() -> None:
    table = hand_table()
    with pytest.raises(ValueError, match="16 cells"):
        audit(table, np.ones(5, bool))


@st.composite
def table_and_pattern(draw: st.DrawFn) -> tuple[LinkedTable, np.ndarray]:
    shape = tuple(draw(st.lists(st.integers(2, 4), min_size=2, max_size=3)))
    size = int(np.prod(shape))
    interior = np.array(draw(st.lists(st.integers(0, 30), min_size=size, max_size=size)))
    table = LinkedTable.from_array(with_margins(interior.reshape(shape)))
    flags = draw(st.lists(st.booleans(), min_size=table.n_cells, max_size=table.n_cells))
    return table, np.array(flags)


@settings(max_examples=examples(25), deadline=None)
@given(table_and_pattern())
def test_intervals_agree_with_an_independent_lp(case: tuple[LinkedTable, np.ndarray]) -> None:
    """Our reduced deviation LP against scipy's linprog on the plain cell-value formulation."""
    table, mask = case
    report = audit(table, mask)
    expected = reference_intervals(table, mask)
    for cell in report.intervals:
        low, high = expected[cell.cell]
        assert cell.low == pytest.approx(low, abs=1e-6)
        assert cell.high == pytest.approx(high, abs=1e-6)


@settings(max_examples=examples(20), deadline=None)
@given(table_and_pattern())
def test_cut_coefficients_reproduce_the_move_by_duality(
    case: tuple[LinkedTable, np.ndarray],
) -> None:
    """Strong duality: sum of cut coefficients over the suppressed cells = the optimal move."""
    table, mask = case
    solver = IntervalSolver(table)
    solver.set_pattern(mask)
    for cell in np.flatnonzero(mask):
        for direction in Direction:
            move, reduced = solver.extreme(int(cell), direction)
            if reduced is None:
                assert move == np.inf
                continue
            coef = solver.cut_coefficients(reduced)
            assert coef[mask].sum() == pytest.approx(move, abs=1e-6)


def test_report_serialises_to_json_with_unbounded_ends_as_null() -> None:
    import json

    table = hand_table()
    cells = [(0, 0), (0, 1), (0, 2), (0, 3), (3, 0), (3, 1), (3, 2), (3, 3)]
    data = json.loads(json.dumps(audit(table, pattern(table, cells)).to_dict()))
    assert data["verdict"] == "pass"
    first = data["cells"][0]
    assert first["key"] == {"row": "r1", "col": "c1"}
    assert (first["low"], first["high"], first["status"]) == (0.0, None, "protected")
