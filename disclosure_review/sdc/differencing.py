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

Sums of cells, one level (`sum_findings`): a cell minus the populations of one
or two other outputs (a region's total minus "under 50" and "50 to 89" released
apart). Each output offers one *part*: its released grand total, or, when that
is blank, the sum of the cells it shows. The IBLT is linear, so a cell minus its
parts is the XOR of their tables; it is judged like a pair, by the same tests.
The search is bounded: one part per output, at most two parts, one of the three
from the new table, candidates first narrowed by record counts.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .enums import Verdict
from .messages import msg
from .records import (
    DamagedState,
    RecordState,
    differences,
    distinct_records,
    peel_many,
    shared_hashes,
    sketch_apart,
    sketch_entries,
    sketch_meets,
)
from .results import CellKey, CheckResult
from .rules import Rules
from .shadow import MARGIN_LABEL

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


def _counts_near(new: RecordState, other: RecordState, threshold: int, a_cells: np.ndarray,
                 b_cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of `a_cells` (of `new`) and `b_cells` (of `other`), both non-empty, not both under `threshold` records
    (each such cell fails the threshold rule itself), whose counts are less than `threshold` apart."""
    a_cells, b_cells = a_cells[new.counts[a_cells] > 0], b_cells[other.counts[b_cells] > 0]
    order = b_cells[np.argsort(other.counts[b_cells], kind="stable")]
    sorted_counts = other.counts[order]
    lo = np.searchsorted(sorted_counts, new.counts[a_cells] - threshold, side="right")
    hi = np.searchsorted(sorted_counts, new.counts[a_cells] + threshold, side="left")
    small = new.counts[a_cells] < threshold
    lo = np.where(small, np.maximum(lo, np.searchsorted(sorted_counts, threshold, side="left")), lo)
    sizes = np.maximum(hi - lo, 0)
    a = np.repeat(a_cells, sizes)
    starts = np.repeat(lo - np.cumsum(np.concatenate(([0], sizes[:-1]))), sizes)
    b = order[starts + np.arange(sizes.sum())] if sizes.sum() else np.empty(0, dtype=np.int64)
    return a, b


def _sketch_near(new: RecordState, other: RecordState, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of `_counts_near` whose bottom-k sketches (of `threshold` hashes or more) do not prove them
    `threshold` records apart.

    Two cells that differ on fewer than `threshold` records, not both under `threshold` records, hold some record
    alike, and the smallest hash of those is among the first `threshold` hashes of each cell's sketch
    (docs/explanation/differencing.md): the pairs are found by joining the two tables' first `threshold` hashes
    of each cell (few meet: a record is in a few cells). Then the hashes each pair shares are counted, and
    `sketch_apart` proves more of them apart."""
    n = len(other.counts)
    met_a, met_b = sketch_meets(new.sketch_index(threshold), sketch_entries(other.sketch, other.sketch_sizes, threshold))
    ca, cb = new.counts[met_a], other.counts[met_b]
    near = (ca > 0) & (cb > 0) & (np.abs(ca - cb) < threshold) & ((ca >= threshold) | (cb >= threshold))
    keys = np.unique(met_a[near] * n + met_b[near])
    a, b = keys // n, keys % n
    k = new.sketch.shape[1]
    shared = shared_hashes(new.sketch[a], np.minimum(new.sketch_sizes[a], k), other.sketch[b],
                           np.minimum(other.sketch_sizes[b], k))
    near = ~sketch_apart(shared, new.sketch_sizes[a], other.sketch_sizes[b], k, threshold)
    return a[near], b[near]


def candidate_pairs(new: RecordState, other: RecordState, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (new cell, other cell), both shown and non-empty, not both under `threshold` records (each such cell
    fails the threshold rule itself), whose counts are less than `threshold` apart, whose bottom-k sketches do not
    prove them `threshold` records apart (when both states have sketches), and whose difference is neither empty nor
    fills every slot of a sub-table."""
    if (new.sketch is not None and other.sketch is not None and new.sketch.shape[1] == other.sketch.shape[1]
            and threshold <= new.sketch.shape[1]):
        a, b = _sketch_near(new, other, threshold)
    else:
        a, b = _counts_near(new, other, threshold, np.arange(len(new.counts)), np.arange(len(other.counts)))
    keep_a, keep_b = [], []
    for start in range(0, len(a), CHUNK):
        pa, pb = a[start:start + CHUNK], b[start:start + CHUNK]
        differ = (new.elements[pa] ^ other.elements[pb]) != 0
        set_slots = differ.reshape(len(pa), new.slots // new.width, new.width).sum(axis=2)  # per sub-table
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
    a, b = candidate_pairs(new, state, threshold)
    records, exact, shared = differences(new.elements[a] ^ state.elements[b], new.checks[a] ^ state.checks[b],
                                         new.counts[a], state.counts[b], new.width, threshold)
    # not: the same contributions, or disjoint cells (nothing to subtract)
    flagged = (records < threshold) & ~(exact & ((records == 0) | (shared < 1)))
    return [Finding(new.labels[i], other.name, state.labels[j], int(n), bool(x))
            for i, j, n, x in zip(a[flagged], b[flagged], records[flagged], exact[flagged])]


def _findings(new: RecordState, table: str, others: Sequence[OtherOutput], threshold: int) -> list:
    findings: list = []
    for other in others:
        findings += findings_between(new, other, threshold)
    return findings + sum_findings(new, table, others, threshold)


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
    traced = [other for other in others if other.name not in untraced]
    try:
        findings = _findings(new, table, traced, int(rules.threshold))
    except DamagedState:  # a stored state read only in part until now: the unreadable ones are not compared
        if not new.readable():
            return CheckResult(RULE, Verdict.REVIEW, "differencing_untraced", {"others": names}, parameters)
        untraced += [other.name for other in traced if not other.state.readable()]
        traced = [other for other in traced if other.name not in untraced]
        findings = _findings(new, table, traced, int(rules.threshold))
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


# ---------------------------------------------------------------- sums of cells (one level)


@dataclasses.dataclass(frozen=True)
class Part:
    """What one output releases of its whole population: its grand total, or (total blank) its shown cells' sum."""

    output: str
    elements: np.ndarray
    checks: np.ndarray
    count: int
    summed: bool


def released_population(output: str, state: RecordState) -> Part | None:
    """The output's part (None when it shows neither its total nor any cell)."""
    k = state.dimensions
    if state.grouping is not None:  # margins by how they were computed: a category named "Total" is a cell
        grand, fine = state.grouping == (1 << k) - 1, state.grouping == 0
    else:  # states stored before the grouping was kept: by their label
        labels = np.empty((len(state.labels), k), dtype=object)
        labels[:] = list(state.labels)
        margins = (labels == MARGIN_LABEL).astype(bool)
        grand, fine = margins.all(axis=1), ~margins.any(axis=1)
    total = np.flatnonzero(grand)
    if len(total) and state.counts[total[0]] >= 0:
        i = total[0]
        return Part(output, state.elements[i], state.checks[i], int(state.counts[i]), False)
    finest = np.flatnonzero(fine & (state.counts >= 0)) if k else np.empty(0, dtype=np.int64)
    if not len(finest):
        return None
    return Part(output, np.bitwise_xor.reduce(state.elements[finest], axis=0),
                np.bitwise_xor.reduce(state.checks[finest], axis=0), int(state.counts[finest].sum()), True)


@dataclasses.dataclass(frozen=True)
class SumFinding:
    """Cell `other_cell` of output `whole` minus the parts of `parts` leaves `records` records (`exact`), or may
    leave fewer than the threshold (not `exact`). `cell`: the new table's cell involved (its total for a part)."""

    cell: CellKey
    whole: str
    other_cell: CellKey
    parts: tuple[Part, ...]
    records: int
    exact: bool

    @property
    def other(self) -> str:
        return self.whole

    def message(self, table: str) -> dict:
        parts = [msg("differencing_part_shown" if p.summed else "differencing_part_total",
                     output=table if p.output == _NEW else p.output) for p in self.parts]
        whole = table if self.whole == _NEW else self.whole
        code = "differencing_sum" if self.exact else "differencing_sum_undecided"
        return msg(code, cell=_label(self.other_cell), whole=whole, parts=parts, records=self.records)


_NEW = "\0new"  # the new table's own name in parts and wholes (named by the check's `table`)


def sums_left(xored_elements: np.ndarray, xored_checks: np.ndarray, whole_counts: np.ndarray,
              parts_counts: np.ndarray, parts: np.ndarray, width: int, threshold: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell minus its parts (the XOR of their tables, the cell's count, the parts' counts and number): whether
    fewer than `threshold` records may be left (flagged), how many, and whether that is exact.

    Elements left an even number of times cancel in the XOR; the counts bound them: with D elements listed and
    the cell's count minus the parts' counts S, at most (D - S) / 2 elements cancel. When peeling sticks, every
    slot left holds two or more elements and a record is at most 1 + parts of them.
    """
    # a row stops once its elements listed are `threshold` records or more, however they group into records
    rows, found, left = peel_many(xored_elements, xored_checks, width, (1 + int(parts.max())) * (threshold - 1) + 1)
    records, _ = distinct_records(rows, found, len(left))
    listed = np.bincount(rows, minlength=len(left))
    surplus = listed - (whole_counts - parts_counts)
    shared = whole_counts + parts_counts - listed
    stuck = left > 0
    lower = np.maximum(records, -(-left // (2 * (1 + parts))))
    exact = ~stuck & (surplus >= 0) & (surplus % 2 == 0) & (records + surplus // 2 < threshold)
    # not: the parts make the cell exactly, or share nothing with it
    flagged = np.where(stuck, lower < threshold, (records > 0) & (shared > 0) & (records < threshold))
    return flagged, np.where(stuck, lower, records), exact & flagged


def _full_subtable(xored: np.ndarray, width: int) -> np.ndarray:
    """Per row: some sub-table has every slot set (a difference of at least `threshold` records)."""
    return ((xored != 0).reshape(len(xored), -1, width).sum(axis=2) >= width).any(axis=1)


def _wholes_near(state: RecordState, totals: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (cell of `state`, index into `totals`): shown non-empty cells whose count is less than `threshold`
    from the total."""
    cells = np.flatnonzero(state.counts > 0)
    order = cells[np.argsort(state.counts[cells], kind="stable")]
    counts = state.counts[order]
    lo = np.searchsorted(counts, totals - threshold, side="right")
    hi = np.searchsorted(counts, totals + threshold, side="left")
    sizes = np.maximum(hi - lo, 0)
    combo = np.repeat(np.arange(len(totals)), sizes)
    starts = np.repeat(lo - np.cumsum(np.concatenate(([0], sizes[:-1]))), sizes)
    return (order[starts + np.arange(sizes.sum())] if sizes.sum() else np.empty(0, dtype=np.int64)), combo


def _stack(parts: list[Part]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts' counts and tables as arrays, with a last row of zeros (index -1: no part)."""
    if not parts:
        return np.zeros(1, dtype=np.int64), np.zeros((1, 0), dtype=np.uint64), np.zeros((1, 0), dtype=np.uint32)
    return (np.array([p.count for p in parts] + [0], dtype=np.int64),
            np.stack([p.elements for p in parts] + [np.zeros_like(parts[0].elements)]),
            np.stack([p.checks for p in parts] + [np.zeros_like(parts[0].checks)]))


def _search(whole: RecordState, whole_name: str, parts: list[Part], stacked: tuple[np.ndarray, np.ndarray, np.ndarray],
            combos: np.ndarray, new_cell, threshold: int) -> list[SumFinding]:
    """Cells of `whole` minus the parts of each combination (`combos`: rows of two indices into `parts`, -1 for
    none; `stacked`: `_stack(parts)`); the parts' tables are XOR-ed only for the cells whose counts come near."""
    if not len(combos) or not parts:
        return []
    counts, part_elements, part_checks = stacked
    first, second = combos[:, 0], combos[:, 1]
    totals = counts[first] + counts[second]
    sizes = (first >= 0).astype(np.int64) + (second >= 0)
    cells, which = _wholes_near(whole, totals, threshold)
    found = []
    for start in range(0, len(cells), CHUNK):
        c, w = cells[start:start + CHUNK], which[start:start + CHUNK]
        xored = whole.elements[c] ^ part_elements[first[w]] ^ part_elements[second[w]]
        keep = ~_full_subtable(xored, whole.width)
        c, w = c[keep], w[keep]
        if not len(c):
            continue
        flagged, records, exact = sums_left(xored[keep], whole.checks[c] ^ part_checks[first[w]] ^ part_checks[second[w]],
                                            whole.counts[c], totals[w], sizes[w], whole.width, threshold)
        for i, j, n, x in zip(c[flagged], w[flagged], records[flagged], exact[flagged]):
            combo = tuple(parts[k] for k in combos[j] if k >= 0)
            found.append(SumFinding(new_cell(i, combo), whole_name, whole.labels[i], combo, int(n), bool(x)))
    return found


def _combos(singles: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Rows of two indices of parts (-1: none): each of `singles` alone, then `pairs` (rows of two)."""
    singles = np.asarray(singles, dtype=np.int64)
    return np.concatenate([np.stack([singles, np.full(len(singles), -1)], axis=1),
                           np.asarray(pairs, dtype=np.int64).reshape(-1, 2)])


def _grand_total(state: RecordState) -> CellKey:
    """The label of the table's grand total (how findings name the new table's part)."""
    k = state.dimensions
    if state.grouping is None or not len(state.grouping):
        return (MARGIN_LABEL,) * k
    return state.labels[int(np.argmax(state.grouping))]


def sum_findings(new: RecordState, table: str, others: Sequence[OtherOutput], threshold: int) -> list[SumFinding]:
    """Cells of any output minus one or two other outputs' parts, one of the three the new table, that leave 1 to
    `threshold` - 1 records (or may). A single part is searched only when it is a sum of shown cells (a released
    total is compared as a cell, pair by pair)."""
    own = released_population(_NEW, new)
    parts = [p for p in (released_population(o.name, o.state) for o in others) if p is not None]
    total = _grand_total(new)
    # the new table's cells minus others' parts
    n = len(parts)
    combos = _combos(np.flatnonzero([p.summed for p in parts]), np.stack(np.triu_indices(n, 1), axis=1))
    found = _search(new, _NEW, parts, _stack(parts), combos, lambda i, combo: new.labels[i], threshold)
    if own is None:
        return found
    # others' cells minus the new table's part (and another output's): `own` is part 0 here
    with_own = [own, *parts]
    stacked = _stack(with_own)
    outputs, own_part = np.array([p.output for p in parts], dtype=object), np.arange(1, n + 1)
    for other in others:
        others_parts = own_part[outputs != other.name]
        combos = _combos([0] if own.summed else [], np.stack([np.zeros_like(others_parts), others_parts], axis=1))
        found += _search(other.state, other.name, with_own, stacked, combos, lambda i, combo: total, threshold)
    return found
