"""Secondary cell suppression + feasible-interval audit of a 50x50 frequency table with margins.

The table: 50 x 50 counts (Poisson with lognormal row and column effects,
fixed seed) plus row, column and grand totals, 2,601 cells. Cells with
0 < n < 10 are primary-unsafe (threshold 10, as in the ACRO defaults); their
protection levels come from `ProtectionLevels.threshold` (the interval must
reach 10 upwards and move 1 downwards).

- ours: `suppress_optimal` (MILP with attacker cuts, HiGHS) and
  `suppress_hypercube` (heuristic), each including its final interval audit.
- peer: the simple heuristic checkers apply by hand, "every row and column
  with a suppressed cell gets a second one" (the smallest published cell of
  the line, repeated until no line has exactly one suppressed cell). No
  Python package does secondary suppression (sdcTable and tau-Argus are R
  and Java); the note gives the number of cells each suppresses and whether
  the peer's pattern passes our interval audit.
"""
from __future__ import annotations

import numpy as np

from bench import Case, Context
from disclosure_review.sdc.protection import (
    CostFunction,
    LinkedTable,
    ProtectionLevels,
    audit,
    suppress_hypercube,
    suppress_optimal,
    with_margins,
)

SIZE = 50
THRESHOLD = 10


def make_table(seed: int, size: int = SIZE) -> tuple[LinkedTable, ProtectionLevels]:
    rng = np.random.default_rng(seed)
    rows = rng.lognormal(0.0, 0.8, size)
    cols = rng.lognormal(0.0, 0.8, size)
    interior = rng.poisson(150.0 * np.outer(rows, cols) / (rows.mean() * cols.mean()))
    values = with_margins(interior)
    unsafe = np.zeros(values.shape, bool)
    unsafe[:size, :size] = (interior > 0) & (interior < THRESHOLD)
    table = LinkedTable.from_array(values, unsafe)
    return table, ProtectionLevels.threshold(table, THRESHOLD)


def two_per_line(table: LinkedTable) -> np.ndarray:
    """The peer: until no sum (row/column, margins included) has exactly one suppressed cell,
    suppress the smallest published cell of such a line."""
    lines = table.constraints().tocsr()
    suppressed = table.unsafe.copy()
    changed = True
    while changed:
        changed = False
        for r in range(lines.shape[0]):
            members = lines.indices[lines.indptr[r] : lines.indptr[r + 1]]
            if suppressed[members].sum() == 1:
                published = members[~suppressed[members]]
                suppressed[published[np.argmin(table.values[published])]] = True
                changed = True
    return suppressed


def cases(ctx: Context) -> list[Case]:
    table, levels = make_table(ctx.seed)
    optimal = suppress_optimal(table, levels, cost=CostFunction.CELLS, time_limit=300)
    heuristic = suppress_hypercube(table, levels, cost=CostFunction.CELLS)
    peer_pattern = two_per_line(table)
    peer_audit = audit(table, peer_pattern, levels)
    primary = int(table.unsafe.sum())
    peer_note = (
        f"peer suppresses {int(peer_pattern.sum())} cells, its audit: {peer_audit.summary()}"
    )
    return [
        Case(
            name=f"suppression {SIZE}x{SIZE} optimal + audit",
            ours=lambda: suppress_optimal(table, levels, cost=CostFunction.CELLS, time_limit=300),
            peer_name="two-per-line heuristic",
            peer=lambda: two_per_line(table),
            repeat=3,
            note=(
                f"{primary} primary; ours suppresses {int(optimal.suppressed.sum())} cells "
                f"(optimal={optimal.optimal}, audit {optimal.audit.verdict.value}); {peer_note}"
            ),
        ),
        Case(
            name=f"suppression {SIZE}x{SIZE} hypercube + audit",
            ours=lambda: suppress_hypercube(table, levels, cost=CostFunction.CELLS),
            peer_name="two-per-line heuristic",
            peer=lambda: two_per_line(table),
            repeat=3,
            note=(
                f"{primary} primary; ours suppresses {int(heuristic.suppressed.sum())} cells "
                f"(audit {heuristic.audit.verdict.value}); {peer_note}"
            ),
        ),
        Case(
            name=f"interval audit {SIZE}x{SIZE}, optimal pattern",
            ours=lambda: audit(table, optimal.suppressed, levels),
            peer_name="two-per-line heuristic",
            peer=lambda: two_per_line(table),
            repeat=3,
            note=f"{int(optimal.suppressed.sum())} intervals, 2 LPs each",
        ),
    ]
