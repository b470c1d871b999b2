"""Model checks on real statsmodels fits."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from disclosure_review.sdc import Verdict, load_preset
from disclosure_review.sdc.models import check_model, level_counts

ACRO = load_preset("acro-default")


def data(n: int, rare: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = ["rare"] * rare + list(rng.choice(["a", "b"], n - rare))
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": groups})
    frame["y"] = 2 * frame.x + rng.normal(size=n)
    frame["event"] = (frame.y > 0).astype(int)
    frame["visits"] = rng.poisson(2, n)
    return frame


@pytest.mark.parametrize(("n", "verdict"), [(13, Verdict.FAIL), (14, Verdict.PASS)])
def test_residual_dof_boundary(n: int, verdict: Verdict) -> None:
    # y ~ x + C(g) with 3 levels: 4 parameters; n = 14 -> 10 residual dof (passes), 13 -> 9 (fails)
    frame = data(n, rare=0)
    frame.loc[: n // 3, "g"] = "c"
    report = check_model(smf.ols("y ~ x + C(g)", frame).fit(), ACRO.replace(threshold=1))
    assert report.result("residual_dof").verdict is verdict
    assert report.result("residual_dof").parameters["df_resid"] == n - 4


def test_small_categorical_level_fails_and_counts_are_exact() -> None:
    frame = data(200, rare=9)
    result = smf.ols("y ~ x + C(g)", frame).fit()
    report = check_model(result, ACRO)
    levels = report.result("categorical_levels")
    assert levels.verdict is Verdict.FAIL and levels.cells == (("C(g)[T.rare]",),)
    expected = frame.g.value_counts()
    assert levels.parameters["levels"] == {"C(g)[T.b]": expected["b"], "C(g)[T.rare]": 9,
                                           "C(g)[reference level]": expected["a"]}
    assert report.verdict is Verdict.FAIL
    assert check_model(smf.ols("y ~ x + C(g)", data(200, rare=10)).fit(), ACRO).verdict is Verdict.PASS


def test_reference_level_is_counted() -> None:
    frame = data(200, rare=0)
    frame.loc[:4, "g"] = "0"  # sorts and appears first: the reference level, 5 observations
    levels = check_model(smf.ols("y ~ C(g)", frame).fit(), ACRO).result("categorical_levels")
    assert levels.cells == (("C(g)[reference level]",),)


@pytest.mark.parametrize("fit", [
    lambda f: smf.logit("event ~ x + C(g)", f).fit(disp=0),
    lambda f: smf.probit("event ~ x + C(g)", f).fit(disp=0),
    lambda f: smf.poisson("visits ~ x + C(g)", f).fit(disp=0),
])
def test_glm_family_models(fit) -> None:
    report = check_model(fit(data(300, rare=12)), ACRO)
    assert report.verdict is Verdict.PASS
    assert report.result("residual_dof").parameters["n"] == 300


def test_logit_with_few_events_fails() -> None:
    frame = data(300, rare=0)
    frame["event"] = 0
    frame.loc[:4, "event"] = 1
    report = check_model(smf.logit("event ~ x", frame).fit(disp=0), ACRO)
    assert report.result("outcome_classes").cells == (("outcome=1",),)


def test_array_interface_and_plain_binary_variable() -> None:
    frame = data(100, rare=0)
    exog = sm.add_constant(pd.DataFrame({"x": frame.x, "treated": [1] * 4 + [0] * 96}))
    assert level_counts(exog.to_numpy(float), list(exog.columns)) == {"treated=1": 4, "treated=0": 96}
    report = check_model(sm.OLS(frame.y, exog).fit(), ACRO)
    assert report.result("categorical_levels").cells == (("treated=1",),)


def test_unknown_models_go_to_review() -> None:
    class Fake:
        model = object()

    assert check_model(Fake(), ACRO).verdict is Verdict.REVIEW


def test_unset_numbers_review() -> None:
    report = check_model(smf.ols("y ~ x", data(100, rare=0)).fit(), load_preset("sdc-handbook"))
    assert report.verdict is Verdict.REVIEW
