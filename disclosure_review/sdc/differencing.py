"""Differencing: a new table against tables already released from the same project.

Two tables over nested populations (all households vs. all but one prefecture's
over-80s) can be subtracted: the difference of their counts is the size of a
small group that neither table shows. For each released table, both tables are
summed to the variables they share (the grand total when none) and every group
whose record counts differ by more than 0 and less than `threshold` is flagged,
naming both tables.
"""
from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from .results import CellKey, CheckResult
from .enums import Verdict
from .messages import msg
from .rules import Rules
from .shadow import GROUPING, MARGIN_LABEL, RECORDS, ShadowTable

RULE = "differencing"
SHOWN_FINDINGS = 20


def _counts_by(shadow: ShadowTable, common: list[str]) -> pl.DataFrame:
    finest = shadow.frame.filter(pl.col(GROUPING) == 0)
    keyed = finest.select(*(pl.col(d).cast(pl.String) for d in common), pl.col(RECORDS))
    if not common:
        return keyed.select(pl.col(RECORDS).sum())
    return keyed.group_by(common).agg(pl.col(RECORDS).sum())


def check_differencing(new: ShadowTable, released: Sequence[ShadowTable], rules: Rules) -> CheckResult:
    """Flag groups where `new` and a released table differ by 0 < n < threshold records."""
    names = [t.spec.name for t in released]
    parameters = {"threshold": rules.threshold, "released": names, "verdict": rules.differencing_verdict.value}
    if not released:
        return CheckResult(RULE, Verdict.PASS, "differencing_nothing_released", {}, parameters)
    if rules.threshold is None:
        return CheckResult(RULE, Verdict.REVIEW, "differencing_no_threshold", {"preset": rules.name, "released": names},
                           parameters)
    findings: list[dict] = []
    cells: list[CellKey] = []
    for old in released:
        common = [d for d in new.dimensions if d in old.dimensions]
        joined = (
            _counts_by(new, common).join(_counts_by(old, common), on=common or None, how="full", coalesce=True,
                                         suffix="_released")
            if common else pl.concat([_counts_by(new, []), _counts_by(old, []).rename({RECORDS: f"{RECORDS}_released"})],
                                     how="horizontal")
        ).with_columns(pl.col(RECORDS).fill_null(0), pl.col(f"{RECORDS}_released").fill_null(0))
        difference = (pl.col(RECORDS) - pl.col(f"{RECORDS}_released")).abs()
        # Smallest differences first (the most revealing), then by group: the same findings listed every run.
        small = (joined.filter((difference > 0) & (difference < rules.threshold)).with_columns(difference.alias("_d"))
                 .sort(["_d", *common], nulls_last=True))
        for row in small.iter_rows(named=True):
            group = ", ".join(f"{d}={row[d]}" for d in common) or msg("grand_total")
            findings.append(msg("differencing_group", group=group, records=row["_d"], table=new.spec.name,
                                released=old.spec.name))
            cells.append(tuple(row[d] if d in common else MARGIN_LABEL for d in new.dimensions))
    if not findings:
        return CheckResult(RULE, Verdict.PASS, "differencing_pass", {"released": names, "threshold": rules.threshold},
                           parameters)
    shown = findings[:SHOWN_FINDINGS]
    if len(findings) > SHOWN_FINDINGS:
        shown.append(msg("more", n=len(findings) - SHOWN_FINDINGS))
    return CheckResult(RULE, rules.differencing_verdict, "differencing_fail",
                       {"threshold": rules.threshold, "findings": shown}, parameters, tuple(dict.fromkeys(cells)))
