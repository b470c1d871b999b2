"""A table and its protection, computed the same way by the kernel and the review service.

`evaluate_table(con, spec, rules)` computes the shadow statistics, runs the
checks and, when the spec names a protection (`TableSpec.protection`),
applies it to those cells:

- suppress: every cell a check fails is a primary cell; secondary cells are
  chosen by `sdc.protection.secondary_suppression` so that the margins do not
  give the primary ones away, and the pattern is audited (feasible intervals,
  秘匿インターバル). Frequency tables use threshold protection levels, sums the
  p% levels; with `Rules.interval_audit` off only exact recomputation fails.
- round: interior cells rounded to the base, margins summed from them. A cell
  a check failed is not made safe by rounding alone: it goes to review.
- delete_records: the records of every failing cell are deleted from the
  query's result and the table recomputed, so margins exclude them (ACRO
  issue #198); the deleted cells are released blank. Unlike suppression this
  changes the totals.

A check's flagged cells that are released blank no longer count against it.
The protected cells (`ProtectedTable.cells`) are what is released.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import polars as pl

from .checks import CheckReport, CheckResult, check_table
from .enums import ProtectionMethod, SecondaryMethod, Statistic, TableKind, Verdict
from .messages import MESSAGES, msg
from .rules import Rules
from .shadow import GROUPING, MARGIN_LABEL, NEGATIVE, RECORDS, TOP, VALUE, ShadowTable, compute_shadow
from .spec import InvalidSpec, TableSpec, quote_identifier

if TYPE_CHECKING:  # the protection library (scipy, HiGHS) is imported only when a table is protected
    from .protection import AuditReport, LinkedTable

NULL_LEVEL = "(missing)"  # the label a missing level (NULL) gets inside the protection library
MAX_DELETION_ROUNDS = 5
OPTIMAL_TIME_LIMIT_S = 60.0


@dataclasses.dataclass(frozen=True)
class ProtectedTable:
    """A table as it will be released: its cells (blank where not published), checks, protection facts."""

    shadow: ShadowTable
    report: CheckReport
    cells: pl.DataFrame
    protection: dict[str, Any] | None = None  # method, parameters, suppressed/deleted cells, interval audit
    # The finest cells (raw levels) whose records no released cell holds (redacted, deleted), and per cell (frame
    # order) how many records its released value holds (None: the shadow's count; redact-then-round margins: those
    # of the cells shown). Differencing compares these, not the cells as computed: a margin with the redacted
    # records would hide them from it.
    left_out: pl.DataFrame | None = None
    held_records: np.ndarray | None = None

    @property
    def verdict(self) -> Verdict:
        return self.report.verdict

    def report_dict(self) -> dict[str, Any]:
        """The check report as JSON, with the protection facts under "protection"."""
        return self.report.to_dict() | ({"protection": self.protection} if self.protection else {})


def evaluate_table(con: duckdb.DuckDBPyConnection, spec: TableSpec, rules: Rules) -> ProtectedTable:
    """Shadow statistics, checks and the spec's protection, all computed on `con`."""
    shadow = compute_shadow(con, spec, top_n=rules.top_n)
    report = check_table(shadow, rules)
    protection = spec.protection
    if protection is None:
        return ProtectedTable(shadow, report, shadow.released_view())
    if protection.method is ProtectionMethod.SUPPRESS:
        return _suppress(shadow, report, rules, protection.secondary)
    if protection.method.rounds:
        return _round(shadow, report, rules, protection.base, redact=protection.method is ProtectionMethod.REDACT_ROUND)
    return _delete_records(con, shadow, report, rules)


# -- shared ---------------------------------------------------------------------------


def failing_mask(shadow: ShadowTable, report: CheckReport) -> np.ndarray:
    """True for every cell (frame order) that some check fails."""
    failing = {cell for cell, verdict in report.cell_verdicts().items() if verdict is Verdict.FAIL}
    return np.array([label in failing for label in shadow.labels()], dtype=bool)


def wrapped(result: CheckResult, code: str, **args: Any) -> CheckResult:
    """`result` whose message is now message `code` around its own (as argument "message")."""
    inner = msg(result.code, **result.args) if result.code in MESSAGES else result.message  # stored: its text
    return dataclasses.replace(result, code=code, args={"message": inner, **args})


def excuse_blank_cells(report: CheckReport, blank: set[tuple], how: str) -> CheckReport:
    """Each check without the cells released blank (`how`: "suppressed", "deleted" or "redacted"); a check left with none
    of its cells passes."""
    results = []
    for result in report.results:
        kept = tuple(c for c in result.cells if c not in blank)
        if len(kept) == len(result.cells):
            results.append(result)
        elif kept:
            excused = wrapped(result, f"excused_some_{how}", excused=len(result.cells) - len(kept))
            results.append(dataclasses.replace(excused, cells=kept))
        else:
            excused = wrapped(result, f"excused_all_{how}")
            results.append(dataclasses.replace(excused, verdict=Verdict.PASS, cells=()))
    return CheckReport.from_results(report.output, report.preset, results)


def _blanked(shadow: ShadowTable, blank: np.ndarray) -> pl.DataFrame:
    view = shadow.released_view()
    column = shadow.value_column
    return view.with_columns(pl.when(pl.Series(blank)).then(None).otherwise(pl.col(column)).alias(column))


@dataclasses.dataclass(frozen=True)
class _Linked:
    """A shadow table as the protection library's `LinkedTable`, and which frame row each cell is.

    The table has one axis for the row variables together and one for the column
    variables together: its margins are then exactly those the shadow computes
    and publishes (row and column totals, grand total). A dimension per variable
    would also need the sub-totals of one row variable within another, which a
    table with two row variables neither has nor releases.
    """

    table: LinkedTable
    positions: np.ndarray  # per frame row, its cell index in `table`
    cell_labels: list[tuple[str | None, ...]]  # per cell of `table`, its released labels (None: missing level)
    dimensions: tuple[str, ...]

    def label(self, cell: int) -> tuple[str | None, ...]:
        return self.cell_labels[cell]

    def key(self, cell: int) -> dict[str, str]:
        """Released labels of a cell by variable, a missing level named NULL_LEVEL (as the audit shows it)."""
        return {dim: NULL_LEVEL if v is None else v for dim, v in zip(self.dimensions, self.label(cell))}

    def audit_facts(self, report: AuditReport) -> dict[str, Any]:
        """The audit as JSON, cells keyed by the table's variables."""
        facts = report.to_dict()
        facts["cells"] = [c | {"key": self.key(i.cell)} for c, i in zip(facts["cells"], report.intervals)]
        by_axis_key = {tuple(self.table.key(cell).values()): cell for cell in range(self.table.n_cells)}
        facts["published_unsafe"] = [self.key(by_axis_key[tuple(k.values())]) for k in report.published_unsafe]
        return facts


def _axis_labels(labels: list[tuple], grouping: np.ndarray, positions: range, k: int) -> list[str]:
    """One axis's label per frame row: the levels of its variables as JSON, or MARGIN_LABEL in its margin."""
    bits = sum(1 << (k - 1 - i) for i in positions)
    summed = grouping & bits
    if not np.isin(summed, (0, bits)).all():
        raise InvalidSpec("the table has a margin over only some of its row or column variables: "
                          "it cannot be protected")
    return [MARGIN_LABEL if s else json.dumps([label[i] for i in positions]) for label, s in zip(labels, summed)]


def _linked(shadow: ShadowTable, unsafe: np.ndarray) -> _Linked:
    from .protection import from_shadow  # heavy: scipy and HiGHS load only when a table is protected

    spec = shadow.spec
    if spec.statistic not in (Statistic.COUNT, Statistic.SUM):
        raise InvalidSpec("only counts and sums can be protected")
    k, r = len(spec.dimensions), len(spec.rows)
    labels = shadow.labels()
    grouping = shadow.frame.get_column(GROUPING).to_numpy()
    axes = {"rows": _axis_labels(labels, grouping, range(r), k)}
    if spec.columns:
        axes["columns"] = _axis_labels(labels, grouping, range(r, k), k)
    frame = pl.DataFrame(axes | {VALUE: shadow.frame.get_column(VALUE).fill_null(0.0)})
    negative = shadow.frame.get_column(NEGATIVE).sum() > 0
    table = from_shadow(frame, tuple(axes), VALUE, unsafe, total_label=MARGIN_LABEL,
                        lower_bound=-math.inf if negative else 0.0)
    coords = []
    for axis, levels in zip(axes.values(), table.levels):
        index = {level: i for i, level in enumerate((*levels, MARGIN_LABEL))}
        coords.append(np.array([index[label] for label in axis], dtype=np.int64))
    positions = np.ravel_multi_index(coords, table.shape)
    cell_labels = [labels[row] for row in np.argsort(positions)]  # from_shadow refused gaps and repeats
    return _Linked(table, positions, cell_labels, spec.dimensions)


# -- suppression ----------------------------------------------------------------------


def _suppress(shadow: ShadowTable, report: CheckReport, rules: Rules, secondary: SecondaryMethod) -> ProtectedTable:
    from .protection import ProtectionLevels, SuppressionMethod, audit, secondary_suppression  # heavy: scipy and HiGHS load only when a table is protected

    unsafe = failing_mask(shadow, report)
    linked = _linked(shadow, unsafe)
    table, positions = linked.table, linked.positions
    if shadow.spec.kind is TableKind.FREQUENCY and rules.threshold:
        levels = ProtectionLevels.threshold(table, rules.threshold)
        level_rule, level_text = f"threshold {rules.threshold}", msg("levels_threshold", threshold=rules.threshold)
    elif shadow.spec.kind is TableKind.MAGNITUDE and rules.p_ratio:
        top = shadow.frame.get_column(TOP).to_list()
        largest, second = np.zeros(table.n_cells), np.zeros(table.n_cells)
        for row, contributions in enumerate(top):
            largest[positions[row]] = contributions[0] if contributions else 0.0
            second[positions[row]] = contributions[1] if len(contributions) > 1 else 0.0
        levels = ProtectionLevels.p_percent(table, largest, second, rules.p_ratio * 100)
        level_rule, level_text = f"p% rule, p = {rules.p_ratio:g}", msg("levels_p_percent", p=rules.p_ratio)
    else:
        levels = ProtectionLevels.explicit(table)
        level_rule = "none set by the preset: only exact recomputation is refused"
        level_text = msg("levels_explicit")
    method = SuppressionMethod(secondary.value)
    options: dict[str, Any] = {"time_limit": OPTIMAL_TIME_LIMIT_S} if method is SuppressionMethod.OPTIMAL else {}
    result = secondary_suppression(table, levels, method, **options)
    checked = result.audit if rules.interval_audit else audit(table, result.suppressed)
    blank = result.suppressed[positions]
    labels = shadow.labels()
    blank_labels = {label for label, b in zip(labels, blank) if b}
    excused = excuse_blank_cells(report, blank_labels, "suppressed")
    interval = CheckResult(
        "interval_audit", checked.verdict, "interval_audit",
        _audit_args(checked, level_text if rules.interval_audit else msg("levels_not_required")),
        {"interval_audit": rules.interval_audit, "levels": level_rule, "secondary": secondary.value},
        tuple(linked.label(c.cell) for c in checked.failing()),
    )
    protected_report = CheckReport.from_results(report.output, report.preset, [*excused.results, interval])
    facts = {
        "method": ProtectionMethod.SUPPRESS.value,
        "secondary": secondary.value,
        "primary": int(unsafe.sum()),
        "secondary_cells": int(blank.sum() - unsafe.sum()),
        "levels": level_rule,
        "audit": linked.audit_facts(checked),
    }
    return ProtectedTable(shadow, protected_report, _blanked(shadow, blank), facts)


def _audit_args(checked: AuditReport, levels: dict[str, Any]) -> dict[str, Any]:
    """The interval audit's summary (AuditReport.summary) as message arguments."""
    from .protection import IntervalStatus  # heavy: scipy and HiGHS load only when a table is protected

    counts = Counter(c.status for c in checked.intervals)
    statuses = [msg("interval_status", n=counts[s], status=msg(f"interval_{s.value}")) for s in IntervalStatus if counts[s]]
    unsafe = msg("unsafe_published", n=len(checked.published_unsafe)) if checked.published_unsafe else ""
    return {"verdict": msg(f"verdict_{checked.verdict.value}"), "suppressed": len(checked.intervals),
            "statuses": statuses or [msg("interval_none")], "unsafe": unsafe, "levels": levels}


# -- rounding --------------------------------------------------------------------------


def _round(shadow: ShadowTable, report: CheckReport, rules: Rules, base: int | None, *,
           redact: bool = False) -> ProtectedTable:
    """Interior cells rounded to `base`, margins the sums of the rounded cells.

    `redact` (redact-then-round, as OpenSAFELY releases): the cells some check fails are blank first
    and count 0 in the margins, so no margin minus the cells shown gives a redacted cell back; differencing
    compares the margins by the records of the cells shown (`ProtectedTable.left_out`, `held_records`).
    """
    from .protection import round_to_base  # heavy: scipy and HiGHS load only when a table is protected

    base = base or rules.round_base
    if base is None:
        raise InvalidSpec(f"preset {rules.name!r} sets no round_base: give the rounding base (base=...)")
    blank = failing_mask(shadow, report) if redact else np.zeros(shadow.frame.height, bool)
    linked = _linked(shadow, blank)
    shown = linked.table.values.copy()
    shown[linked.positions[blank]] = 0.0  # margins recomputed from interior cells only: blank margins too
    rounded = round_to_base(linked.table.with_values(shown), base).values[linked.positions]
    column = shadow.value_column
    view = shadow.released_view()
    dtype = view.schema[column]
    cells = view.with_columns(pl.when(pl.Series(blank)).then(None).otherwise(pl.Series(column, rounded))
                              .cast(dtype).alias(column))
    left_out = held = None
    if redact:
        finest = shadow.frame.get_column(GROUPING).to_numpy() == 0
        shown_cells = finest & ~blank
        leaves = np.zeros(linked.table.n_cells)  # each margin holds the records of the cells it shows
        leaves[linked.positions[shown_cells]] = shadow.frame.get_column(RECORDS).to_numpy()[shown_cells]
        held = linked.table.aggregate(leaves).ravel()[linked.positions].astype(np.int64)
        left_out = shadow.frame.filter(pl.Series(blank & finest)).select(shadow.dimensions)
        report = excuse_blank_cells(report, {label for label, b in zip(shadow.labels(), blank) if b}, "redacted")
    results = []
    for result in report.results:  # rounding blurs a failing cell; whether that is enough, a person judges
        if result.verdict is Verdict.FAIL and result.cells:
            result = dataclasses.replace(wrapped(result, "rounded", base=base), verdict=Verdict.REVIEW)
        results.append(result)
    facts = {"method": ProtectionMethod.ROUND.value, "base": base, "note": "totals are sums of the rounded cells"}
    if redact:
        facts = {"method": ProtectionMethod.REDACT_ROUND.value, "base": base, "redacted": int(blank.sum()),
                 "note": "cells failing a check are blank; totals are sums of the rounded cells shown"}
    return ProtectedTable(shadow, CheckReport.from_results(report.output, report.preset, results), cells, facts,
                          left_out, held)


# -- record deletion -------------------------------------------------------------------


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidSpec("record deletion cannot name a cell whose level is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    raise InvalidSpec(f"record deletion supports text, number, boolean and date variables, not {type(value).__name__}")


def deletion_query(spec: TableSpec, cells: Sequence[tuple[Any, ...]]) -> str:
    """The spec's query without the records of `cells` (raw levels of every dimension, None = missing)."""
    if not cells:
        return spec.query
    conditions = []
    for cell in cells:
        terms = [f"{quote_identifier(dim)} IS NOT DISTINCT FROM {_literal(v)}" for dim, v in zip(spec.dimensions, cell)]
        conditions.append("(" + " AND ".join(terms) + ")")
    return f"SELECT * FROM (\n{spec.query}\n) AS deleting WHERE NOT ({' OR '.join(conditions)})"


def _delete_records(con: duckdb.DuckDBPyConnection, shadow: ShadowTable, report: CheckReport,
                    rules: Rules) -> ProtectedTable:
    spec = shadow.spec
    if spec.is_histogram:
        raise InvalidSpec("record deletion is not offered for histograms: choose other bin edges")
    original = spec
    deleted: list[tuple[Any, ...]] = []
    deleted_labels: set[tuple] = set()
    for _ in range(MAX_DELETION_ROUNDS):
        interior = shadow.frame.get_column(GROUPING).to_numpy() == 0
        failing = failing_mask(shadow, report) & interior
        labels = shadow.labels()
        new = [(row, label) for row, label in enumerate(labels) if failing[row] and label not in deleted_labels]
        if not new:
            break
        raw = shadow.frame.select(spec.dimensions)
        for row, label in new:
            deleted.append(tuple(raw.row(row)))
            deleted_labels.add(label)
        spec = dataclasses.replace(original, query=deletion_query(original, deleted), protection=None)
        shadow = compute_shadow(con, spec, top_n=rules.top_n)
        report = check_table(shadow, rules)
    # Report and release under the researcher's spec; the deleted cells are blank.
    shadow = dataclasses.replace(shadow, spec=original)
    labels = shadow.labels()
    blank = np.array([label in deleted_labels for label in labels], dtype=bool)
    report = excuse_blank_cells(report, deleted_labels, "deleted")
    facts = {"method": ProtectionMethod.DELETE_RECORDS.value,
             "deleted_cells": sorted([list(label) for label in deleted_labels], key=str),
             "note": "totals exclude the records of the deleted cells"}
    left_out = pl.DataFrame(deleted, schema=shadow.frame.select(spec.dimensions).schema, orient="row")
    return ProtectedTable(shadow, report, _blanked(shadow, blank), facts, left_out)
