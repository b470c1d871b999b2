"""Checks: pure functions (shadow statistics, rules) -> CheckResult, registered by name.

Each result cites its rule, the numbers it used and the cells it flagged (by their
released labels). A check that lacks a number or a statistic it needs says
`review`, never `pass`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from .enums import Statistic, TableKind, Verdict
from .messages import msg
from .results import REPORT_VERSION, CellKey, CheckReport, CheckResult  # noqa: F401 (this module's API)
from .rules import Rules
from .shadow import GROUPING, MISSING, MODE_UNITS, NEGATIVE, RECORDS, SUM, TOP, UNITS, VALUES, ZERO, ShadowTable

TableCheck = Callable[[ShadowTable, Rules], CheckResult]
CHECKS: dict[str, TableCheck] = {}


def register_check(name: str) -> Callable[[TableCheck], TableCheck]:
    def decorate(function: TableCheck) -> TableCheck:
        CHECKS[name] = function
        return function

    return decorate


def checks_for(shadow: ShadowTable) -> list[str]:
    """Names of the checks that apply to a table, in the order they run."""
    spec = shadow.spec
    if spec.is_histogram:
        return ["threshold", "empty_bins", "extreme_edges"]  # registered by .histogram
    if spec.kind is TableKind.FREQUENCY:
        names = ["threshold", "zeros", "class_disclosure"]
    elif spec.statistic.is_dominance:
        names = ["threshold", "zeros", "nk_dominance", "p_percent", "negatives"]
    elif spec.statistic.is_single_unit_value:
        names = ["threshold", "zeros", "single_unit"]
    else:  # std, var
        names = ["degrees_of_freedom"]
    if spec.kind is TableKind.MAGNITUDE or spec.weight:
        names.append("missing")
    return names


def check_table(shadow: ShadowTable, rules: Rules) -> CheckReport:
    """Run every applicable check; the verdict is fail > review > pass (no result: review).

    Differencing against the project's other outputs (`differencing`) needs their record
    states: the review service adds it.
    """
    results = [CHECKS[name](shadow, rules) for name in checks_for(shadow)]
    return CheckReport.from_results(shadow.spec.name, rules.name, results)


# -- helpers -------------------------------------------------------------------------


def flagged_cells(shadow: ShadowTable, mask: pl.Expr) -> tuple[CellKey, ...]:
    return tuple(tuple(r) for r in shadow.frame.filter(mask).select(shadow.label_exprs()).iter_rows())


def unset(rule: str, rules: Rules, *names: str) -> CheckResult | None:
    """A review result when the preset sets none of the numbers the rule needs."""
    missing = [n for n in names if getattr(rules, n) is None]
    if not missing:
        return None
    return CheckResult(rule, Verdict.REVIEW, "rule_unset", {"preset": rules.name, "missing": ", ".join(missing)},
                       {n: None for n in missing})


def flag(rule: str, shadow: ShadowTable, mask: pl.Expr, verdict: Verdict, code: str, args: Mapping[str, Any],
         parameters: Mapping[str, Any], clean: str) -> CheckResult:
    """`verdict` with the cells matching `mask` (message `code`, which also gets `flagged` of `cells`),
    or pass with message `clean` (same `args`) when none do."""
    cells = flagged_cells(shadow, mask)
    if not cells:
        return CheckResult(rule, Verdict.PASS, clean, args, parameters)
    counts = {"flagged": len(cells), "cells": shadow.frame.height}
    return CheckResult(rule, verdict, code, {**args, **counts}, parameters, cells)


def assessable() -> pl.Expr:
    """Cells whose dominance can be judged: some contribution, none negative, positive total."""
    return (pl.col(VALUES) > 0) & (pl.col(NEGATIVE) == 0) & (pl.col(SUM) > 0)


# -- table checks ----------------------------------------------------------------------


@register_check("threshold")
def check_threshold(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Fail non-empty cells with fewer than `threshold` contributors (units when declared)."""
    if (result := unset("threshold", rules, "threshold")) is not None:
        return result
    who = "units" if shadow.spec.unit else "records"
    return flag(
        "threshold", shadow, (pl.col(RECORDS) > 0) & (pl.col(UNITS) < rules.threshold), Verdict.FAIL,
        "threshold_fail", {"threshold": rules.threshold, "who": msg(who)},
        {"threshold": rules.threshold, "counted": who}, "threshold_pass",
    )


@register_check("zeros")
def check_zeros(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Empty cells, and magnitude cells whose contributions are all zero, fail when zeros are disclosive."""
    if shadow.spec.kind is TableKind.FREQUENCY:
        mask, what = pl.col(RECORDS) == 0, msg("zero_count")
    else:
        mask = (pl.col(RECORDS) == 0) | ((pl.col(VALUES) > 0) & (pl.col(ZERO) == pl.col(VALUES)))
        what = msg("zero_contributions")
    parameters = {"zeros_disclosive": rules.zeros_disclosive}
    if not rules.zeros_disclosive:
        count = shadow.frame.filter(mask).height
        return CheckResult("zeros", Verdict.PASS, "zeros_allowed", {"count": count, "what": what, "preset": rules.name},
                           parameters)
    return flag("zeros", shadow, mask, Verdict.FAIL, "zeros_fail", {"what": what}, parameters, "zeros_pass")


@register_check("nk_dominance")
def check_nk_dominance(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Fail cells whose `nk_n` largest contributions are >= `nk_k` of the cell total."""
    if (result := unset("nk_dominance", rules, "nk_n", "nk_k")) is not None:
        return result
    n, k = rules.nk_n, rules.nk_k
    parameters = {"n": n, "k": k, "contributions": "per unit" if shadow.spec.unit else "per record"}
    if shadow.top_n < n:
        return CheckResult("nk_dominance", Verdict.REVIEW, "nk_top_n", {"top_n": shadow.top_n, "n": n}, parameters)
    share = pl.col(TOP).list.head(n).list.sum() / pl.col(SUM)
    return flag("nk_dominance", shadow, assessable() & (share >= k), Verdict.FAIL, "nk_fail", {"n": n, "k": k},
                parameters, "nk_pass")


@register_check("p_percent")
def check_p_percent(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Fail cells where the second-largest contributor could estimate the largest within p %.

    (total - largest - second) / largest < p fails; exactly p passes. All-zero cells pass
    (nobody's value can be estimated beyond what the zeros check already judges).
    """
    if (result := unset("p_percent", rules, "p_ratio")) is not None:
        return result
    p = rules.p_ratio
    top1 = pl.col(TOP).list.get(0, null_on_oob=True)
    top2 = pl.col(TOP).list.get(1, null_on_oob=True).fill_null(0.0)
    remainder = (pl.col(SUM) - top1 - top2) / top1
    return flag(
        "p_percent", shadow, assessable() & (remainder < p), Verdict.FAIL, "p_percent_fail", {"p": p},
        {"p": p, "contributions": "per unit" if shadow.spec.unit else "per record"}, "p_percent_pass",
    )


@register_check("negatives")
def check_negatives(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Cells with negative values go to review: dominance is not defined for them."""
    return flag("negatives", shadow, pl.col(NEGATIVE) > 0, Verdict.REVIEW, "negatives_review", {}, {},
                "negatives_pass")


@register_check("missing")
def check_missing(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Cells where the value or weight is missing for some records go to review (when the preset says so)."""
    parameters = {"check_missing": rules.check_missing}
    if not rules.check_missing:
        return CheckResult("missing", Verdict.PASS, "missing_unchecked", {"preset": rules.name}, parameters)
    return flag("missing", shadow, pl.col(MISSING) > 0, Verdict.REVIEW, "missing_review", {}, parameters,
                "missing_pass")


@register_check("single_unit")
def check_single_unit(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Min and max are one unit's own value: every non-empty cell is flagged (ACRO lets them pass).

    Median and percentiles are flagged when fewer than `threshold` units contribute
    (the value may then be one unit's); a mode when fewer than `threshold` units hold
    the modal value (all values distinct: the mode is one unit's own value, however
    many contribute). Every non-empty cell is flagged when the preset sets no threshold.
    """
    statistic = shadow.spec.statistic
    verdict = rules.single_unit_stats_verdict
    limit = rules.threshold
    if statistic in (Statistic.MIN, Statistic.MAX):
        mask, why = pl.col(VALUES) > 0, "single_unit_own"
    elif limit is None:
        mask, why = pl.col(VALUES) > 0, "single_unit_no_threshold"
    elif statistic is Statistic.MODE:  # held by fewer units than contribute, so this covers too few contributors
        mask, why = (pl.col(VALUES) > 0) & (pl.col(MODE_UNITS) < limit), "single_unit_mode_few"
    else:
        mask, why = (pl.col(VALUES) > 0) & (pl.col(UNITS) < limit), "single_unit_few"
    return flag("single_unit", shadow, mask, verdict, why,
                {"statistic": msg(f"statistic_{statistic.value}"), "threshold": limit},
                {"statistic": statistic.value, "verdict": verdict.value, "threshold": limit}, "single_unit_pass")


@register_check("degrees_of_freedom")
def check_degrees_of_freedom(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """Standard deviation / variance: fail cells with n - 1 < dof_threshold (n contributors with a value).

    Empty cells too (n - 1 = -1), as ACRO: a spread over nobody is no safe number, and the cell
    would otherwise face no check at all (std tables have no threshold or zeros check).
    """
    if (result := unset("degrees_of_freedom", rules, "dof_threshold")) is not None:
        return result
    t = rules.dof_threshold
    return flag("degrees_of_freedom", shadow, pl.col(VALUES) - 1 < t, Verdict.FAIL,
                "dof_fail", {"threshold": t}, {"dof_threshold": t}, "dof_pass")


@register_check("class_disclosure")
def check_class_disclosure(shadow: ShadowTable, rules: Rules) -> CheckResult:
    """All of a row group in one column category (or a column group in one row category).

    Revealing that everybody with some row attributes shares one column attribute is
    group attribute disclosure, whatever the count. Needs row and column variables.
    """
    spec = shadow.spec
    verdict = rules.class_disclosure_verdict
    if not spec.rows or not spec.columns:
        return CheckResult("class_disclosure", Verdict.PASS, "class_no_structure")
    inner = shadow.frame.with_row_index("_cell").filter(pl.col(GROUPING) == 0)
    hits: set[int] = set()
    for fixed, varying in ((spec.rows, spec.columns), (spec.columns, spec.rows)):
        groups = inner.group_by(list(fixed)).agg(
            pl.len().alias("_levels"), (pl.col(RECORDS) > 0).sum().alias("_non_empty"),
            pl.col("_cell").filter(pl.col(RECORDS) > 0).alias("_cells"),
        ).filter((pl.col("_levels") > 1) & (pl.col("_non_empty") == 1))
        hits.update(groups.get_column("_cells").explode().to_list())
    mask = pl.int_range(pl.len()).is_in(sorted(hits))
    return flag("class_disclosure", shadow, mask, verdict, "class_fail", {}, {"verdict": verdict.value}, "class_pass")
