"""Release-time check of a record-level output (an extract, an anonymised file, a list of records).

Fail when a rule is broken, pass only when every configured rule was evaluated
and holds, review whenever the check cannot decide (no key variables in the
output, unusable weights, no records, an error while computing).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.messages import Described

from ._data import InvalidMicrodataInput, _columns_of
from ._params import check_k, number_in, whole_number
from .report import RiskReport, risk_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordLevelRules:
    """Thresholds of the record-level check (from the project's preset); None switches a rule off."""

    k: int | None = 3  # every record's key combination has f_k >= k
    weighted_k: float | None = None  # every record's F_k >= weighted_k (needs a weight)
    max_individual_risk: float | None = 0.1  # no record's re-identification risk above this
    max_global_risk: float | None = None  # expected re-identifications / records
    max_household_risk: float | None = None  # household-level global risk (needs a household id)
    l_diversity: int | None = None  # distinct l-diversity of every sensitive variable

    def __post_init__(self) -> None:
        """Refuse numbers no rule can use (k = 0 or 2.5, a risk of NaN), naming the rule."""
        if self.k is not None:
            check_k(self.k)
        if self.weighted_k is not None:
            check_k(self.weighted_k, weighted=True)
        if self.l_diversity is not None:
            whole_number(self.l_diversity, "l_diversity")
        for name in ("max_individual_risk", "max_global_risk", "max_household_risk"):
            if getattr(self, name) is not None:
                number_in(getattr(self, name), name, 0.0, 1.0)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RecordLevelRules:
        """Rules from a preset's `record_level:` mapping; unknown names are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InvalidMicrodataInput(f"unknown record-level rule(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(values))


@dataclass(frozen=True)
class RecordLevelFinding(Described):
    """One rule's verdict, its message `code` (sdc.messages) with `args`; `to_dict()` has the shape of
    sdc.checks.CheckResult.to_dict()."""

    rule: str
    verdict: Verdict
    code: str
    args: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "verdict": self.verdict.value, "message": self.message, "code": self.code,
                "args": dict(self.args), "parameters": dict(self.parameters), "cells": []}


@dataclass(frozen=True)
class RecordLevelCheck:
    verdict: Verdict
    findings: tuple[RecordLevelFinding, ...]
    report: RiskReport | None  # None when the check could not compute it

    def reasons(self) -> list[str]:
        return [f"{f.rule} ({f.verdict.value}): {f.message}" for f in self.findings if f.verdict is not Verdict.PASS]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "findings": [f.to_dict() for f in self.findings],
                "report": None if self.report is None else self.report.to_dict()}


def _review(rule: str, code: str, **args: Any) -> RecordLevelCheck:
    finding = RecordLevelFinding(rule, Verdict.REVIEW, code, args)
    return RecordLevelCheck(Verdict.REVIEW, (finding,), None)


def check_record_level(
    data: Any,
    *,
    keys: Sequence[str],
    weight: str | None = None,
    household: str | None = None,
    sensitive: Sequence[str] = (),
    rules: RecordLevelRules = RecordLevelRules(),
    progress: bool = False,
) -> RecordLevelCheck:
    """Check a record-level output against `rules` on the dataset's declared variables.

    Declared key variables missing from the output are left out (an extract
    without them cannot be matched on them); if none is left the verdict is
    review. Without the weight in the output the risk is computed unweighted
    (1/f_k, the larger); rules that need a missing weight or household id say review.
    """
    if all(getattr(rules, f.name) is None for f in fields(rules)):
        return _review("rules", "record_rules_none")
    try:
        columns = _columns_of(data)
    except InvalidMicrodataInput as err:
        return _review("input", "input_unusable", error=str(err))
    present = [k for k in keys if k in columns]
    if not present:
        return _review("key_variables", "key_variables_none")
    notes: list[RecordLevelFinding] = []
    if weight and weight not in columns:  # unweighted risk 1/f_k is the larger, so the safe side
        notes.append(RecordLevelFinding("weight", Verdict.PASS, "weight_absent", {"weight": weight}))
        weight = None
    if household and household not in columns:  # a household rule then says review
        notes.append(RecordLevelFinding("household", Verdict.PASS, "household_absent", {"household": household}))
        household = None
    absent = [s for s in sensitive if s not in columns]
    sensitive = [s for s in sensitive if s in columns]
    k = rules.k or 3  # the report's k when the k rule is off
    try:
        report = risk_report(data, keys=present, weight=weight, household=household, sensitive=sensitive, k=k,
                             progress=progress)
    except InvalidMicrodataInput as err:
        return _review("input", "risk_not_computed", error=str(err))
    except Exception:  # a check that cannot decide says review, never pass
        log.exception("record-level check failed")
        return _review("error", "risk_failed")
    findings: list[RecordLevelFinding] = notes

    def rule(name: str, broken: bool, args: Mapping[str, Any], **parameters: Any) -> None:
        findings.append(RecordLevelFinding(name, Verdict.FAIL if broken else Verdict.PASS, name, args, parameters))

    if len(present) < len(keys):
        findings.append(RecordLevelFinding(
            "key_variables", Verdict.PASS, "key_variables_some", {"present": len(present), "declared": len(keys)},
            {"missing": [k for k in keys if k not in present]}))
    if rules.k is not None:
        below = report.k_violations[rules.k]
        rule("k_anonymity", below > 0, {"records": below, "k": rules.k},
             k=rules.k, records=below, combinations=report.combinations_below_k)
    if rules.weighted_k is not None:
        if weight is None:
            findings.append(RecordLevelFinding("weighted_k_anonymity", Verdict.REVIEW, "no_weight"))
        else:
            below = report.records_below_weighted_k(rules.weighted_k)
            rule("weighted_k_anonymity", below > 0, {"records": below, "weighted_k": rules.weighted_k},
                 weighted_k=rules.weighted_k, records=below)
    if rules.max_individual_risk is not None:
        above = report.records_above_risk(rules.max_individual_risk)
        rule("individual_risk", above > 0, {"records": above, "threshold": rules.max_individual_risk},
             threshold=rules.max_individual_risk, records=above, max_risk=report.max_risk)
    if rules.max_global_risk is not None:
        g = report.global_risk.global_risk
        rule("global_risk", g > rules.max_global_risk, {"risk": g, "threshold": rules.max_global_risk},
             threshold=rules.max_global_risk, global_risk=g)
    if rules.max_household_risk is not None:
        h = report.global_risk.household_risk
        if h is None:
            findings.append(RecordLevelFinding("household_risk", Verdict.REVIEW, "no_household"))
        else:
            rule("household_risk", h > rules.max_household_risk, {"risk": h, "threshold": rules.max_household_risk},
                 threshold=rules.max_household_risk, household_risk=h)
    if rules.l_diversity is not None:
        for s in absent:
            findings.append(RecordLevelFinding("l_diversity", Verdict.PASS, "sensitive_absent", {"variable": s}))
        for s, ld in report.l_diversity.items():
            rule("l_diversity", ld["min_distinct"] < rules.l_diversity,
                 {"variable": s, "min_distinct": ld["min_distinct"]}, variable=s, l=rules.l_diversity)
    return RecordLevelCheck(Verdict.combine(f.verdict for f in findings), tuple(findings), report)
