"""Differencing: a table against every other output of the project, by the records its cells hold.

Two cells — of any two outputs — whose records differ in fewer than `threshold`
records (which records they hold, or the value one of them contributes) can be
subtracted to reveal those few records. Cells are compared by their record state
(`records.RecordState`), never by their labels: cells over unrelated populations
differ on many records and are never flagged, whatever their labels. A cell
released blank shows nothing to subtract; an empty cell's difference with
another is that other cell, which the table's own checks judge.

Cheap tests first, exact ones last: record counts apart by `threshold` or more
differ on at least that many records; a difference filling every slot of the
IBLT is at least `threshold` records; an empty difference is none. The few pairs
left are peeled, which lists the differing records exactly. When peeling cannot
settle a pair, the verdict is `review` (the safe side), never `pass`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .enums import Verdict
from .messages import msg
from .records import RecordState, difference
from .results import CellKey, CheckResult
from .rules import Rules

RULE = "differencing"
SHOWN_FINDINGS = 20
CHUNK = 4096  # candidate pairs compared at once


@dataclasses.dataclass(frozen=True)
class OtherOutput:
    """An output of the project the new table is compared with: how findings name it, and its record state.

    `state` is None when its records could not be traced (the comparison is then left to a reviewer).
    """

    name: str
    state: RecordState | None


@dataclasses.dataclass(frozen=True)
class Finding:
    """Two cells that differ on `records` records (`exact`), or possibly fewer than the threshold (not `exact`)."""

    cell: CellKey
    other: str
    other_cell: CellKey
    records: int
    exact: bool

    def message(self, table: str) -> dict:
        code = "differencing_cells" if self.exact else "differencing_undecided"
        return msg(code, cell=_label(self.cell), table=table, other_cell=_label(self.other_cell), other=self.other,
                   records=self.records)


def _label(cell: CellKey) -> str:
    return " / ".join("(missing)" if v is None else str(v) for v in cell)


def candidate_pairs(new: RecordState, other: RecordState, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (new cell, other cell), both shown and non-empty, whose counts are less than `threshold` apart and
    whose difference is neither empty nor fills every slot of a sub-table."""
    a_cells = np.flatnonzero(new.counts > 0)
    b_cells = np.flatnonzero(other.counts > 0)
    order = b_cells[np.argsort(other.counts[b_cells], kind="stable")]
    sorted_counts = other.counts[order]
    lo = np.searchsorted(sorted_counts, new.counts[a_cells] - threshold, side="right")
    hi = np.searchsorted(sorted_counts, new.counts[a_cells] + threshold, side="left")
    sizes = hi - lo
    a = np.repeat(a_cells, sizes)
    starts = np.repeat(lo - np.cumsum(np.concatenate(([0], sizes[:-1]))), sizes)
    b = order[starts + np.arange(sizes.sum())] if sizes.sum() else np.empty(0, dtype=np.int64)
    keep_a, keep_b = [], []
    for start in range(0, len(a), CHUNK):
        pa, pb = a[start:start + CHUNK], b[start:start + CHUNK]
        differ = (new.elements[pa] ^ other.elements[pb]) != 0
        set_slots = differ.reshape(len(pa), -1, new.width).sum(axis=2)  # per sub-table
        # Fewer than `threshold` records are fewer than `width` elements: no sub-table can be full.
        kept = differ.any(axis=1) & (set_slots < new.width).all(axis=1)
        keep_a.append(pa[kept])
        keep_b.append(pb[kept])
    if not keep_a:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(keep_a), np.concatenate(keep_b)


def findings_between(new: RecordState, other: OtherOutput, threshold: int) -> list[Finding]:
    """Cells of `new` and `other` that differ on at least 1 and fewer than `threshold` records (or may)."""
    state = other.state
    found = []
    for i, j in zip(*candidate_pairs(new, state, threshold)):
        diff = difference(new.elements[i], new.checks[i], int(new.counts[i]), state.elements[j], state.checks[j],
                          int(state.counts[j]), new.width)
        if diff.records >= threshold:
            continue
        if diff.exact and (diff.records == 0 or diff.shared < 1):
            continue  # the same contributions, or disjoint cells: nothing to subtract
        found.append(Finding(new.labels[i], other.name, state.labels[j], diff.records, diff.exact))
    return found


def check_differencing(new: RecordState | None, table: str, others: Sequence[OtherOutput], rules: Rules) -> CheckResult:
    """Compare the table `table` (its record state `new`) with the project's other outputs `others`."""
    names = [o.name for o in others]
    parameters = {"threshold": rules.threshold, "compared": names, "verdict": rules.differencing_verdict.value}
    if not others:
        return CheckResult(RULE, Verdict.PASS, "differencing_nothing_else", {}, parameters)
    if rules.threshold is None:
        return CheckResult(RULE, Verdict.REVIEW, "differencing_no_threshold", {"preset": rules.name, "others": names},
                           parameters)
    untraced = [o.name for o in others if o.state is None or (new is not None and o.state.width != new.width)]
    if new is None:
        return CheckResult(RULE, Verdict.REVIEW, "differencing_untraced", {"others": names}, parameters)
    findings: list[Finding] = []
    for other in others:
        if other.name not in untraced:
            findings += findings_between(new, other, int(rules.threshold))
    findings.sort(key=lambda f: (not f.exact, f.records, f.other))  # the most revealing first
    if not findings and not untraced:
        return CheckResult(RULE, Verdict.PASS, "differencing_pass", {"others": names, "threshold": rules.threshold},
                           parameters)
    shown = [f.message(table) for f in findings[:SHOWN_FINDINGS]]
    if len(findings) > SHOWN_FINDINGS:
        shown.append(msg("more", n=len(findings) - SHOWN_FINDINGS))
    if untraced:
        shown.append(msg("differencing_not_compared", others=untraced))
    verdict = rules.differencing_verdict if any(f.exact for f in findings) else Verdict.REVIEW
    cells = tuple(dict.fromkeys(f.cell for f in findings))
    return CheckResult(RULE, verdict, "differencing_fail", {"threshold": rules.threshold, "findings": shown},
                       parameters, cells)
