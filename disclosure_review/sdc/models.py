"""Checks for fitted models (statsmodels results): OLS, WLS, GLS, logit, probit, Poisson, GLM.

- residual degrees of freedom >= `dof_threshold` (ACRO's rule);
- parameters <= `max_parameter_ratio` x observations (DataSHIELD's test for over-saturated models:
  residual dof alone lets 7 parameters on 20 observations pass);
- every level of a categorical regressor (a 0/1 dummy column, grouped by term) and
  its reference level hold at least `threshold` observations (a coefficient on a
  level of 3 people describes those 3 people);
- binary-outcome models (logit, probit): each outcome class holds at least
  `threshold` observations.
Each result reports n. A model type not listed is sent to review.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .checks import CheckReport, CheckResult
from .enums import Verdict
from .rules import Rules

SUPPORTED_MODELS = {"OLS", "WLS", "GLS", "Logit", "Probit", "Poisson", "GLM", "NegativeBinomial"}
BINARY_OUTCOME_MODELS = {"Logit", "Probit"}
# "C(region)[T.north]" / "region[north]" -> term "C(region)", level "north"
DUMMY_NAME = re.compile(r"^(?P<term>.+)\[(?:T\.)?(?P<level>[^\]]+)\]$")


def _binary(column: np.ndarray) -> bool:
    return bool(np.isin(column, (0.0, 1.0)).all()) and not bool((column == 1).all())


def level_counts(exog: np.ndarray, names: list[str]) -> dict[str, int]:
    """Observations per categorical level: each dummy's ones, each term's reference level, 0/1 variables' groups."""
    counts: dict[str, int] = {}
    terms: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        column = exog[:, j]
        if not _binary(column):
            continue
        match = DUMMY_NAME.match(name)
        if match:
            terms.setdefault(match["term"], []).append(j)
            counts[name] = int(column.sum())
        else:  # a 0/1 variable: both of its groups are categories
            counts[f"{name}=1"] = int(column.sum())
            counts[f"{name}=0"] = int((column == 0).sum())
    for term, columns in terms.items():
        block = exog[:, columns]
        if (block.sum(axis=1) <= 1).all():  # one-hot: rows with no dummy set are the reference level
            counts[f"{term}[reference level]"] = int((block.sum(axis=1) == 0).sum())
    return counts


def check_model(result: Any, rules: Rules, *, name: str = "model") -> CheckReport:
    """Check a fitted statsmodels results object; fail > review > pass."""
    model = getattr(result, "model", None)
    kind = type(model).__name__ if model is not None else type(result).__name__
    if kind not in SUPPORTED_MODELS or getattr(model, "exog", None) is None:
        return CheckReport.from_results(name, rules.name, [CheckResult("model_type", Verdict.REVIEW, "model_type",
                                                                       {"model": kind}, {"model": kind})])
    n = int(result.nobs)
    parameters = int(np.asarray(model.exog).shape[1])
    results = [_dof_result(float(result.df_resid), n, kind, rules), _parameters_result(parameters, n, kind, rules),
               _levels_result(model, n, rules)]
    if kind in BINARY_OUTCOME_MODELS:
        results.append(_outcome_result(np.asarray(model.endog), n, rules))
    return CheckReport.from_results(name, rules.name, results)


def _dof_result(df_resid: float, n: int, kind: str, rules: Rules) -> CheckResult:
    parameters = {"model": kind, "n": n, "df_resid": df_resid, "dof_threshold": rules.dof_threshold}
    if rules.dof_threshold is None:
        return CheckResult("residual_dof", Verdict.REVIEW, "residual_dof_unset",
                           {"preset": rules.name, "n": n, "df_resid": df_resid}, parameters)
    ok = df_resid >= rules.dof_threshold
    args = {"model": kind, "n": n, "df_resid": df_resid, "threshold": rules.dof_threshold}
    return CheckResult("residual_dof", Verdict.PASS if ok else Verdict.FAIL,
                       "residual_dof_pass" if ok else "residual_dof_fail", args, parameters)


def _parameters_result(parameters: int, n: int, kind: str, rules: Rules) -> CheckResult:
    """Fail a model with more than max_parameter_ratio x n parameters (columns of its design matrix)."""
    ratio = rules.max_parameter_ratio
    facts = {"model": kind, "n": n, "parameters": parameters, "max_parameter_ratio": ratio}
    if ratio is None:
        return CheckResult("parameters", Verdict.REVIEW, "parameters_unset", {"preset": rules.name, "n": n,
                                                                           "parameters": parameters}, facts)
    ok = parameters <= ratio * n
    return CheckResult("parameters", Verdict.PASS if ok else Verdict.FAIL, "parameters_pass" if ok else "parameters_fail",
                       {"model": kind, "n": n, "parameters": parameters, "ratio": ratio,
                        "limit": math.floor(ratio * n)}, facts)


def _levels_result(model: Any, n: int, rules: Rules) -> CheckResult:
    counts = level_counts(np.asarray(model.exog, dtype=float), list(model.exog_names))
    parameters: dict[str, Any] = {"n": n, "threshold": rules.threshold, "levels": counts}
    if not counts:
        return CheckResult("categorical_levels", Verdict.PASS, "levels_none", {}, parameters)
    if rules.threshold is None:
        return CheckResult("categorical_levels", Verdict.REVIEW, "levels_unset", {"preset": rules.name}, parameters)
    small = {level: c for level, c in counts.items() if c < rules.threshold}
    if not small:
        return CheckResult("categorical_levels", Verdict.PASS, "levels_pass", {"threshold": rules.threshold},
                           parameters)
    listed = [f"{level} ({c})" for level, c in sorted(small.items())]
    return CheckResult("categorical_levels", Verdict.FAIL, "levels_fail",
                       {"threshold": rules.threshold, "levels": listed}, parameters,
                       tuple((level,) for level in sorted(small)))


def _outcome_result(endog: np.ndarray, n: int, rules: Rules) -> CheckResult:
    classes = {"outcome=1": int((endog == 1).sum()), "outcome=0": int((endog == 0).sum())}
    parameters: dict[str, Any] = {"n": n, "threshold": rules.threshold, "classes": classes}
    if rules.threshold is None:
        return CheckResult("outcome_classes", Verdict.REVIEW, "outcome_unset", {"preset": rules.name}, parameters)
    small = [c for c, count in classes.items() if count < rules.threshold]
    if not small:
        return CheckResult("outcome_classes", Verdict.PASS, "outcome_pass", {"threshold": rules.threshold},
                           parameters)
    return CheckResult("outcome_classes", Verdict.FAIL, "outcome_fail",
                       {"threshold": rules.threshold, "classes": [f"{c} ({classes[c]})" for c in small]}, parameters,
                       tuple((c,) for c in small))
