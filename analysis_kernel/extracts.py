"""Record-level outputs (extracts) in the notebook: the query, its record-level check at once.

    e = outputs.extract_output(db, "SELECT prefecture, sex, age_group, income FROM lfs_demo")
    e                      # verdict, risk summary, riskiest key combinations (never the records)
    request_release([e], title=..., purpose=...)

Like a table, an extract is declarative: the review service re-runs the query
under the project's grants, takes the key variables from the datasets'
metadata itself, checks the records with the preset's record-level rules and
writes the released CSV from its own re-run. What is shown here is feedback.
"""
from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from typing import Any

import duckdb

from analysis_kernel.verdicts import badge
from dataplane.sql import tables_read
from disclosure_review import wire
from disclosure_review.queries import tracker_check
from disclosure_review.sdc import InvalidPreset, InvalidSpec, Verdict
from disclosure_review.sdc.microdata import (
    DeclaredRoles,
    ExtractCheck,
    ExtractSpec,
    RecordLevelCheck,
    check_extract,
    record_level_rules,
)
from disclosure_review.sdc.size import extract_cells
from disclosure_review.sdc.tracker import RULE as TRACKER, with_check

SUMMARY_FIGURES = ("records", "expected_reidentifications", "max_individual_risk")


@dataclasses.dataclass(frozen=True, eq=False)
class ExtractOutput:
    """A declarative record-level output: spec (query and variables), the roles used and the check."""

    spec: ExtractSpec
    checked: ExtractCheck  # the same sdc check the review service runs
    records: int
    columns: int = 0

    @property
    def cells(self) -> int:
        """Records times columns (what the output limits count)."""
        return self.records * self.columns

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def roles(self) -> DeclaredRoles:
        return self.checked.roles

    @property
    def check(self) -> RecordLevelCheck:
        return self.checked.check

    @property
    def verdict(self) -> Verdict:
        return self.checked.verdict

    @property
    def risk(self) -> dict[str, Any] | None:
        """The risk report as a dict (records, k-anonymity, expected re-identifications, …)."""
        return None if self.check.report is None else self.check.report.to_dict()

    def reasons(self) -> list[str]:
        reasons = self.check.reasons()
        if self.roles.undeclared:
            reasons.append(f"undeclared_variables (review): {', '.join(self.roles.undeclared)} are no declared "
                           "variable of the source datasets")
        return reasons + [f"{f.rule} ({f.verdict.value}): {f.message}" for f in self.checked.findings
                          if f.rule == TRACKER and f.verdict is not Verdict.PASS]

    def to_request(self) -> wire.ExtractPayload:
        """The extract as the review service receives it: the spec it re-runs, and the check here as a claim."""
        risk = self.risk or {}
        claimed = {"verdict": self.verdict.value,
                   "risk": {"records": self.records, **{k: risk.get(k) for k in SUMMARY_FIGURES[1:]}}}
        return wire.ExtractPayload(name=self.name, spec=self.spec, claimed=claimed)

    def __repr__(self) -> str:
        reasons = "".join(f"\n  - {r}" for r in self.reasons())
        text = self.check.report.to_text() if self.check.report is not None else ""
        return (f"<ExtractOutput {self.name!r}: {self.verdict.value}, {self.records:,} records, key variables "
                f"{', '.join(self.roles.keys) or 'none'}{reasons}>\n{text}")

    def _repr_html_(self) -> str:
        esc = html.escape
        items = "".join(f"<li>{esc(r)}</li>" for r in self.reasons())
        report = self.check.report
        summary = f"<pre>{esc(report.to_text())}</pre>" if report is not None else ""
        return (f"<div><b>{esc(self.name)}</b> — {badge(self.verdict)} record-level extract, "
                f"{self.records:,} records; key variables: {esc(', '.join(self.roles.keys) or 'none')}"
                f"<ul>{items}</ul>{summary}</div>")


def build_extract(db: Any, sql: str, *, name: str, keys: Sequence[str] | None, error: type[Exception]) -> ExtractOutput:
    """Run `sql` (already checked to read only granted datasets) and check its records."""
    try:
        spec = ExtractSpec(query=sql, name=name, keys=tuple(keys or ()))
    except InvalidSpec as exc:
        raise error(str(exc)) from None
    try:
        rules = record_level_rules(db.preset)
    except InvalidPreset as exc:
        raise error(f"the project's rule preset cannot be used: {exc}") from None
    try:  # counted first: an extract past the output limit is refused before its records are read
        wire.check_limit("output_cells", extract_cells(db.duckdb, spec), wire.MAX_CELLS_PER_OUTPUT, name=spec.name)
        table = db.duckdb.sql(spec.query).to_arrow_table()
    except wire.LimitExceeded as exc:
        raise error(exc.text(db.manifest.language)) from None
    except duckdb.Error as exc:
        raise error(f"the query failed: {exc}") from None
    unknown = [k for k in spec.keys if k not in table.column_names]
    if unknown:
        raise error(f"key variable(s) {unknown} are not columns of the result: {', '.join(table.column_names)}")
    metadata = [db.metadata(d) for d in sorted(tables_read(spec.query) & set(db.dataset_ids))]
    tracker = tracker_check(db.duckdb, spec.query, db.dataset_ids)  # as the review service does
    checked = with_check(check_extract(table, metadata, spec.keys, rules), tracker)
    roles = checked.roles
    spec = dataclasses.replace(spec, weight=roles.weight, household=roles.household, sensitive=roles.sensitive,
                               keys=roles.keys)
    return ExtractOutput(spec, checked, table.num_rows, table.num_columns)
