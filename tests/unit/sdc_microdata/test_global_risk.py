"""Global risk against sdcMicro's tests/testthat/test_calcRisks.R (v5.8.1), whose data come
from R's set.seed(3)/runif (rebuilt with r_rng.RRandom); household risk against a plain
pandas implementation of sdcMicro's measure_risk (fast_hier): 1 − ∏(1 − r_j) per household."""
from __future__ import annotations

import numpy as np
import polars as pl
from r_rng import RRandom

from disclosure_review.sdc.microdata import frequencies, global_risk, individual_risk


def calc_risks(data: pl.DataFrame, keys: list[str]):
    """calcRisks(createSdcObj(data, keyVars=keys)) without weights: r = 1/f_k."""
    freq = frequencies(data, keys)
    risk = individual_risk(freq, survey=False)
    return freq, risk, global_risk(risk)


def test_calcrisks_without_missing():
    rng = RRandom(3)
    rng.runif(30, 1, 100)
    keys = {"Var4": np.round(rng.runif(10, 1, 4)), "Var5": np.round(rng.runif(10, 1, 6)), "Var6": np.round(rng.runif(10, 1, 3))}
    freq, risk, g = calc_risks(pl.DataFrame(keys), list(keys))
    np.testing.assert_allclose(risk, [0.5, 1.0, 0.5, 1.0, 1.0, 0.5, 1.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(freq.fk, [2, 1, 2, 1, 1, 2, 1, 2, 1, 1])
    assert (g.global_risk, g.expected_reidentifications, g.global_risk_pct) == (0.8, 8.0, 80.0)


def test_calcrisks_with_missing():
    rng = RRandom(3)
    rng.runif(20, 1, 100)
    highs = [2, 4, 6, 3, 5, 2]
    cols = {f"Var{6 + j}": np.round(rng.runif(4, 1, h)) for j, h in enumerate(highs)}
    na_rows = {"Var6": [0, 2, 3], "Var7": [1, 2], "Var8": [2], "Var9": [0, 2], "Var10": [1, 2], "Var11": [2]}
    for name, rows in na_rows.items():
        cols[name][rows] = np.nan
    data = pl.DataFrame(cols)  # NaN in a float column is a missing value
    freq, risk, g = calc_risks(data, list(cols))
    np.testing.assert_allclose(risk, [0.5, 0.5, 0.25, 0.5])
    np.testing.assert_allclose(freq.fk, [2, 2, 4, 2])
    assert (g.global_risk, g.expected_reidentifications, g.global_risk_pct) == (0.4375, 1.75, 43.75)


def test_household_risk_matches_pandas(testdata):
    keys = ["urbrur", "roof", "walls", "water", "electcon", "relat", "sex"]
    freq = frequencies(testdata, keys, weight="sampling_weight")
    risk = individual_risk(freq)
    g = global_risk(risk, household=testdata["ori_hid"].to_numpy())
    df = testdata.to_pandas().assign(r=risk)
    per_hh = df.groupby("ori_hid")["r"].apply(lambda r: 1 - np.prod(1 - r.to_numpy()))
    expected = df["ori_hid"].map(per_hh).sum()
    assert abs(g.household_expected_reidentifications - expected) < 1e-9
    assert abs(g.household_risk - expected / len(df)) < 1e-12
    assert abs(g.expected_reidentifications - risk.sum()) < 1e-12
    # risky: r > median + 2·MAD(1.4826) and r > 0.1 (sdcMicro print of an sdcMicroObj)
    med = np.median(risk)
    bound = med + 2 * 1.4826 * np.median(np.abs(risk - med))
    assert g.risky_records == int(((risk > bound) & (risk > 0.1)).sum())
