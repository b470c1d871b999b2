"""Local suppression: suppression counts against sdcMicro's tests/testthat/test_localSuppression.R
(v5.8.1), and the property that k-anonymity on the full key set is always reached, checked by
counting pairwise (reference.brute_force_fk), for both heuristics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_examples import examples
from r_rng import RRandom
from reference import brute_force_fk

from disclosure_review.sdc.microdata import InvalidMicrodataInput, SuppressionMethod, local_suppression

KEYS = ["urbrur", "roof", "walls", "water", "electcon", "relat", "sex"]


def age_groups(age: np.ndarray) -> np.ndarray:
    """R's cut(age, 5, labels=paste0('AG', 1:5)): equal-width breaks, range widened by 1/1000, (a, b]."""
    lo, hi = float(age.min()), float(age.max())
    breaks = lo + np.arange(6) * ((hi - lo) / 5)
    breaks[0], breaks[5] = lo - (hi - lo) / 1000, hi + (hi - lo) / 1000
    return pd.cut(age, bins=breaks, right=True, labels=[f"AG{i}" for i in range(1, 6)]).astype(str)


def test_testdata2_no_strata(testdata2):
    """localSuppression(testdata2[, keyVars], keyVars=1:7)$newSupps == 97 (k=2, default importance)."""
    res = local_suppression(testdata2, KEYS, k=2)
    assert res.changed_values == 97
    assert res.details["methods"] == ["sdcmicro"]


def test_testdata2_with_strata(testdata2):
    """kAnon(inp, keyVars=1:7, strataVars=8)$newSupps == 109, strata ageG = cut(age, 5)."""
    data = testdata2.with_columns(ageG=pl.Series(age_groups(testdata2["age"].to_numpy().astype(float))))
    assert local_suppression(data, KEYS, k=2, strata=["ageG"]).changed_values == 109


def r_sample_data() -> pl.DataFrame:
    rng = RRandom(3)
    x = rng.runif(30, 1, 100)  # array(dim=c(10,3)): Var3 is the third column
    return pl.DataFrame({"Var3": x[20:30], "Var4": np.round(rng.runif(10, 1, 3)),
                         "Var5": np.round(rng.runif(10, 1, 2)), "Var6": np.round(rng.runif(10, 1, 4))})


def test_r_sample_data():
    """test_localSuppression.R on set.seed(3) data: sum(totalSupps) == 2 (Var4:5, k=2) and
    == 10 (Var3:5, k=2, importance=c(3,2,1))."""
    data = r_sample_data()
    assert local_suppression(data, ["Var4", "Var5"], k=2).changed_values == 2
    assert local_suppression(data, ["Var3", "Var4", "Var5"], k=2, importance=[3, 2, 1]).changed_values == 10


def full_fk(df: pl.DataFrame, keys: list[str]) -> np.ndarray:
    return brute_force_fk([tuple(r) for r in df.select(keys).iter_rows()])


def test_sdcmicro_issue_225_example_reaches_k():
    data = pl.DataFrame({"Region": ["A"] * 5, "Status": ["Single", "Married", "Married", "Single", "Widow"],
                         "Age_group": ["30-49"] * 5})
    res = local_suppression(data, data.columns, k=2)
    assert full_fk(res.data, data.columns).min() >= 2
    assert res.changed_values == 1 and res.data["Status"].null_count() == 1


def test_sdcmicro_issue_352_example_reaches_k_on_all_keys():
    data = pl.DataFrame({
        "province": ["2", "3", "3", "2", "4", "2", "4", "2", "2", "3"],
        "activity": ["A", "A", "A", "A", "B", "B", "B", "B", "A", "A"],
        "sex": ["Female", "Female", "Female", "Male", "Female", "Female", "Female", "Female", "Male", "Male"],
        "income": ["high", "low", "low", "low", "high", "medium", "high", "low", "high", "medium"],
    })
    for method in (SuppressionMethod.SDCMICRO, SuppressionMethod.FAST):
        res = local_suppression(data, data.columns, k=3, method=method)
        assert full_fk(res.data, data.columns).min() >= 3


@settings(max_examples=examples(40), deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda p: st.tuples(
            st.lists(st.tuples(*[st.one_of(st.none(), st.integers(0, 3))] * p), min_size=5, max_size=30),
            st.permutations(list(range(1, p + 1))),
        )
    ),
    st.integers(1, 5),
    st.sampled_from(list(SuppressionMethod)),
)
def test_always_reaches_k(rows_and_importance, k, method):
    rows, importance = rows_and_importance
    p = len(rows[0])
    keys = [f"v{j}" for j in range(p)]
    data = pl.DataFrame([list(r) for r in rows], schema={c: pl.Int64 for c in keys}, orient="row")
    res = local_suppression(data, keys, k=k, importance=importance, method=method)
    assert full_fk(res.data, keys).min() >= k
    before = data.select(keys).to_numpy()
    after = res.data.select(keys).to_numpy()
    # only suppressions: every changed value became missing, counted in `changed`
    changed = ~((before == after) | (pd.isna(before) & pd.isna(after)))
    assert pd.isna(after[changed]).all()
    assert res.changed_values == int(changed.sum())


def test_bad_input(testdata2):
    with pytest.raises(InvalidMicrodataInput, match="k must be at least 1"):
        local_suppression(testdata2, KEYS, k=0)
    with pytest.raises(InvalidMicrodataInput, match="'nokey'"):
        local_suppression(testdata2, ["nokey"], k=2)
    with pytest.raises(InvalidMicrodataInput, match="importance"):
        local_suppression(testdata2, KEYS, importance=[1, 2, 3])
    with pytest.raises(InvalidMicrodataInput, match="importance"):
        local_suppression(testdata2, KEYS, importance=[0, 1, 2, 3, 4, 5, 6])
    with pytest.raises(InvalidMicrodataInput, match="larger than the number of records"):
        local_suppression(testdata2, KEYS, k=94)
