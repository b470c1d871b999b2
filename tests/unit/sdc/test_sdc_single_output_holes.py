"""Holes of the single-output checks found in issue 12, each closed: empty cells of standard-deviation
tables, models with too few observations per parameter (redact-then-round: test_sdc_protect.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from disclosure_review.sdc import (
    InvalidPreset, InvalidSpec, Statistic, TableKind, TableSpec, Verdict, check_table, load_preset, preset_names,
    shadow_from_frame,
)
from disclosure_review.sdc.models import check_model

ACRO = load_preset("acro-default")


# -- standard deviations: the degrees-of-freedom check reaches empty cells -----------------------------


def std_table(frame: pd.DataFrame, statistic: Statistic = Statistic.STD):
    spec = TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("r",), columns=("c",), value="v",
                     statistic=statistic)
    return check_table(shadow_from_frame(frame, spec), ACRO)


@pytest.mark.parametrize("statistic", [Statistic.STD, Statistic.VAR])
def test_an_empty_spread_cell_fails_degrees_of_freedom(statistic):
    """(a, y) has no record: its n - 1 = -1 < 10. It passed before (only non-empty cells were checked), so a
    std table with an empty cell passed although ACRO fails it."""
    frame = pd.DataFrame({"r": ["a"] * 12 + ["b"] * 24, "c": ["x"] * 24 + ["y"] * 12,
                          "v": [float(i) for i in range(36)]})
    report = std_table(frame, statistic)
    dof = report.result("degrees_of_freedom")
    assert dof.verdict is Verdict.FAIL and dof.cells == (("a", "y"),)
    assert report.verdict is Verdict.FAIL


def test_a_spread_cell_whose_values_are_all_missing_fails_degrees_of_freedom():
    frame = pd.DataFrame({"r": ["a"] * 12 + ["b"] * 12, "c": ["x"] * 24,
                          "v": [np.nan] * 12 + [float(i) for i in range(12)]})
    assert std_table(frame).result("degrees_of_freedom").cells == (("a", "x"), ("a", "Total"))  # its margin too


def test_full_spread_cells_still_pass():
    frame = pd.DataFrame({"r": ["a"] * 12 + ["b"] * 12, "c": ["x"] * 24, "v": [float(i) for i in range(24)]})
    assert std_table(frame).result("degrees_of_freedom").verdict is Verdict.PASS


# -- models: observations per parameter -------------------------------------------------------------


def twenty_observations(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=20) for c in "abcdef"})
    frame["visits"] = rng.poisson(3, 20)
    frame["y"] = frame.a + rng.normal(size=20)
    return frame


def test_a_glm_of_20_observations_and_7_parameters_fails():
    """Residual dof 13 >= 10 passed it before; 7 parameters > 0.33 x 20 (DataSHIELD's nfilter.glm) fails."""
    fit = smf.glm("visits ~ a + b + c + d + e + f", twenty_observations(), family=sm.families.Poisson()).fit()
    report = check_model(fit, ACRO)
    assert report.result("residual_dof").verdict is Verdict.PASS
    parameters = report.result("parameters")
    assert parameters.verdict is Verdict.FAIL
    assert parameters.parameters == {"model": "GLM", "n": 20, "parameters": 7, "max_parameter_ratio": 0.33}
    assert "too few observations per parameter" in parameters.message
    assert report.verdict is Verdict.FAIL


@pytest.mark.parametrize(("formula", "verdict"), [("y ~ a + b + c + d + e", Verdict.PASS),  # 6 <= 6.6
                                                  ("y ~ a + b + c + d + e + f", Verdict.FAIL)])  # 7 > 6.6
def test_parameter_ratio_boundary(formula, verdict):
    report = check_model(smf.ols(formula, twenty_observations()).fit(), ACRO.replace(dof_threshold=1))
    assert report.result("parameters").verdict is verdict


def test_a_preset_without_a_parameter_ratio_sends_models_to_review():
    fit = smf.ols("y ~ a", twenty_observations()).fit()
    result = check_model(fit, ACRO.replace(max_parameter_ratio=None)).result("parameters")
    assert result.verdict is Verdict.REVIEW and result.code == "parameters_unset"


@pytest.mark.parametrize("ratio", [0, 1.5, float("nan"), True, "0.33"])
def test_parameter_ratio_must_be_a_fraction(ratio):
    with pytest.raises(InvalidPreset, match="max_parameter_ratio"):
        ACRO.replace(max_parameter_ratio=ratio)


def test_every_jurisdiction_preset_sets_or_omits_the_new_rules_explicitly():
    """A preset names every rule number it leaves out (`omitted`); the new one is no exception."""
    import yaml
    from importlib import resources

    for name in preset_names():
        document = yaml.safe_load((resources.files("disclosure_review.sdc") / "presets" / f"{name}.yaml").read_text())
        assert "max_parameter_ratio" in document["rules"] or "max_parameter_ratio" in document.get("omitted", []), name
    assert load_preset("acro-default").max_parameter_ratio == 0.33
    assert load_preset("jp-onsite").max_parameter_ratio == 0.33


# -- neighbouring parameters --------------------------------------------------------------------


@pytest.mark.parametrize("bins", [True, 2.5, 0, "3"])
def test_histogram_bins_are_a_whole_number(bins):
    """bins=True made one bin whose upper edge was the int 1 (a bool is an int in Python)."""
    from disclosure_review.sdc import equal_width_edges

    with pytest.raises(InvalidSpec, match="bins must be a whole number"):
        equal_width_edges(0.0, 1.0, bins)
