"""k-anonymity on subsets of the key variables (sdcMicro's `combs`): the measure against pairwise
counting (reference.brute_force_fk), local suppression against sdcMicro's
tests/testthat/test_localSuppression.R (v5.8.1), and the property that every requested subset, the
full key set included when its size is, reaches k."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_examples import examples
from reference import brute_force_fk
from test_suppression import KEYS, age_groups, r_sample_data

from disclosure_review.sdc.microdata import (
    InvalidMicrodataInput,
    SuppressionMethod,
    local_suppression,
    subset_k_anonymity,
)


def subset_fk(df: pl.DataFrame, keys: list[str]) -> np.ndarray:
    return brute_force_fk([tuple(r) for r in df.select(keys).iter_rows()])


def assert_k_on_subsets(df: pl.DataFrame, keys: list[str], combs: list[int], ks: list[int]) -> None:
    for size, k in zip(combs, ks):
        for subset in itertools.combinations(keys, size):
            assert subset_fk(df, list(subset)).min() >= k, (subset, k)


def test_sdcmicro_combs_3_2_reference():
    """localSuppression(sample_Data, keyVars=paste0('Var', 3:5), k=2, importance=c(3,2,1), combs=c(3:2)):
    sum(totalSupps) == 11 (set.seed(3) data).

    sdcMicro's data.frame method indexes the importance by the key variables' column numbers in the
    data (importance[kV] with kV = 3:5, R/localSuppression.R), so on every subset it applies
    rank(c(1, NA, NA)) = 1, 2, 3 (and 1, 2 on the pairs), not c(3,2,1): importance=[1, 2, 3] here is
    what it computes with."""
    keys = ["Var3", "Var4", "Var5"]
    res = local_suppression(r_sample_data(), keys, k=2, importance=[1, 2, 3], combs=[3, 2])
    assert res.changed_values == 11
    assert res.details["combs"] == [3, 2] and res.details["subsets"] == 4 and res.details["passes"] == 1
    assert_k_on_subsets(res.data, keys, [3, 2], [2, 2])


def test_sdcmicro_combs_1_2_reference():
    """localSuppression(sample_Data, keyVars=paste0('Var', 4:5), k=2, importance=NULL, combs=c(1:2)):
    sum(totalSupps) == 2; the importance it applies is rank(c(NA, NA)) = 1, 2 (see above)."""
    keys = ["Var4", "Var5"]
    res = local_suppression(r_sample_data(), keys, k=2, importance=[1, 2], combs=[1, 2])
    assert res.changed_values == 2
    assert_k_on_subsets(res.data, keys, [1, 2], [2, 2])


def test_sdcmicro_combs_too_large():
    """localSuppression(sample_Data, keyVars=paste0('Var', 4:5), k=2, combs=c(3:2)): an error
    ("at least one element of 'combs' is to large!")."""
    with pytest.raises(InvalidMicrodataInput, match="subset size 3 in combs is larger than the number of key"):
        local_suppression(r_sample_data(), ["Var4", "Var5"], k=2, combs=[3, 2])
    with pytest.raises(InvalidMicrodataInput, match="larger than the number of key"):
        subset_k_anonymity(r_sample_data(), ["Var4", "Var5"], combs=[3])


def test_testdata2_k_per_subset_size(testdata2):
    """createSdcObj(testdata2, keyVars=c('urbrur','roof','walls')); localSuppression(sdc, k=c(10,20),
    combs=3:2) (sdcMicro's test expects suppressions; it publishes no count): 10-anonymity on the three
    keys and 20-anonymity on every pair afterwards, and the measure agrees."""
    keys = ["urbrur", "roof", "walls"]
    before = subset_k_anonymity(testdata2, keys, combs=[3, 2], k=[10, 20])
    assert not before.anonymous and before.records_below_k > 0
    res = local_suppression(testdata2, keys, k=[10, 20], combs=[3, 2])
    assert res.changed_values > 0 and res.details["k"] == [10, 20]
    assert_k_on_subsets(res.data, keys, [3, 2], [10, 20])
    after = subset_k_anonymity(res.data, keys, combs=[3, 2], k=[10, 20])
    assert after.anonymous and after.records_below_k == 0 and len(after.subsets) == 4


def test_testdata2_manual_example(testdata2):
    """The localSuppression manual's example: k=c(10, 20, 30), combs=5:3 on the seven key variables
    of testdata2 (91 subsets); every subset reaches its k, checked by the measure."""
    res = local_suppression(testdata2, KEYS, k=[10, 20, 30], combs=[5, 4, 3])
    check = subset_k_anonymity(res.data, KEYS, combs=[5, 4, 3], k=[10, 20, 30])
    assert len(check.subsets) == 21 + 35 + 35 and check.anonymous
    assert_k_on_subsets(res.data, KEYS[:5], [5], [10])  # one subset counted pairwise as well


def test_strata_and_subsets(testdata2):
    """localSuppression(testdata2, keyVars=c('urbrur','roof','walls'), k=3, combs=3, strataVars='ageG')
    (sdcMicro's test expects suppressions): k within every stratum on every subset."""
    data = testdata2.with_columns(ageG=pl.Series(age_groups(testdata2["age"].to_numpy().astype(float))))
    keys = ["urbrur", "roof", "walls"]
    res = local_suppression(data, keys, k=3, combs=[3, 2], strata=["ageG"])
    assert res.changed_values > 0
    for _, stratum in res.data.group_by("ageG"):
        assert_k_on_subsets(stratum, keys, [3, 2], [3, 3])
    assert subset_k_anonymity(res.data, keys, combs=[3, 2], k=3, strata=["ageG"]).anonymous
    with pytest.raises(InvalidMicrodataInput, match="in a stratum"):  # sdcMicro: k=10 with these strata fails
        local_suppression(data, keys, k=10, combs=[3], strata=["ageG"])


def test_reaches_k_where_a_single_pass_does_not():
    """sdcMicro runs suppSubset once per subset: here suppressing b of (NA, 0, 0) for subset (b, c)
    leaves that record with a and b missing, and a record whose subset values are all missing no
    longer matches complete ones (freqCalc), so (0, 0) falls back to f_k = 1 on (a, b). The single
    pass is rebuilt with local_suppression on each subset in turn (without combs it is suppSubset)."""
    keys = ["a", "b", "c"]
    data = pl.DataFrame([[0, 0, 1], [0, 1, 1], [1, 1, 0], [None, 0, 0], [None, 1, 0]],
                        schema={c: pl.Int64 for c in keys}, orient="row")
    single_pass = data
    for size in (2, 1):
        for subset in itertools.combinations(range(3), size):
            ranks = (np.argsort(np.argsort(subset)) + 1).tolist()  # importance 1, 2, 3 restricted to the subset
            single_pass = local_suppression(single_pass, [keys[j] for j in subset], k=2, importance=ranks).data
    assert subset_fk(single_pass, ["a", "b"]).min() == 1
    res = local_suppression(data, keys, k=2, combs=[2, 1], importance=[1, 2, 3])
    assert res.details["passes"] == 2
    assert_k_on_subsets(res.data, keys, [2, 1], [2, 2])


def test_measure_names_the_violating_subsets():
    data = pl.DataFrame({"a": [1, 1, 1, 2], "b": [1, 1, 2, 2], "c": [5, 5, 5, 5]})
    res = subset_k_anonymity(data, ["a", "b", "c"], combs=[1, 2], k=2)
    assert [s.keys for s in res.violating] == [("a",), ("a", "b"), ("a", "c")]
    by_keys = {s.keys: s for s in res.subsets}
    assert by_keys[("a",)].records_below_k == 1 and by_keys[("a", "b")].records_below_k == 2
    assert by_keys[("c",)].level == 4 and by_keys[("b", "c")].records_below_k == 0
    np.testing.assert_array_equal(res.below, [False, False, True, True])
    assert res.to_dict()["subsets"][0] == {"keys": ["a"], "k": 2, "records_below_k": 1, "level": 1.0}


rows_strategy = st.integers(1, 4).flatmap(
    lambda p: st.lists(st.tuples(*[st.one_of(st.none(), st.integers(0, 3))] * p), min_size=5, max_size=25)
)


@settings(max_examples=examples(40), deadline=None)
@given(rows_strategy, st.data())
def test_measure_matches_pairwise_counting(rows, draw):
    p = len(rows[0])
    keys = [f"v{j}" for j in range(p)]
    combs = draw.draw(st.lists(st.integers(1, p), min_size=1, max_size=p, unique=True))
    ks = draw.draw(st.lists(st.integers(1, 5), min_size=len(combs), max_size=len(combs)))
    data = pl.DataFrame([list(r) for r in rows], schema={c: pl.Int64 for c in keys}, orient="row")
    res = subset_k_anonymity(data, keys, combs=combs, k=ks)
    expected_below = np.zeros(len(rows), dtype=bool)
    subsets = [(s, k) for size, k in zip(combs, ks) for s in itertools.combinations(range(p), size)]
    assert [r.keys for r in res.subsets] == [tuple(keys[j] for j in s) for s, _ in subsets]
    for result, (subset, k) in zip(res.subsets, subsets):
        fk = brute_force_fk([tuple(r[j] for j in subset) for r in rows])
        assert result.records_below_k == int((fk < k).sum()) and result.level == fk.min()
        expected_below |= fk < k
    np.testing.assert_array_equal(res.below, expected_below)


@settings(max_examples=examples(40), deadline=None)
@given(rows_strategy, st.data(), st.sampled_from(list(SuppressionMethod)))
def test_suppression_always_reaches_k_on_every_subset(rows, draw, method):
    p = len(rows[0])
    keys = [f"v{j}" for j in range(p)]
    combs = draw.draw(st.lists(st.integers(1, p), min_size=1, max_size=p, unique=True))
    ks = draw.draw(st.lists(st.integers(1, 5), min_size=len(combs), max_size=len(combs)))
    importance = draw.draw(st.permutations(list(range(1, p + 1))))
    data = pl.DataFrame([list(r) for r in rows], schema={c: pl.Int64 for c in keys}, orient="row")
    res = local_suppression(data, keys, k=ks, combs=combs, importance=importance, method=method)
    assert_k_on_subsets(res.data, keys, combs, ks)  # includes the full key set when p is in combs
    before, after = data.select(keys).to_numpy(), res.data.select(keys).to_numpy()
    changed = ~((before == after) | (pd.isna(before) & pd.isna(after)))
    assert pd.isna(after[changed]).all()  # only suppressions
    assert res.changed_values == int(changed.sum())


def test_bad_input(testdata2):
    keys = ["urbrur", "roof", "walls"]
    for call in (local_suppression, subset_k_anonymity):
        with pytest.raises(InvalidMicrodataInput, match="'nokey'"):
            call(testdata2, [*keys, "nokey"], combs=[2], k=2)
        with pytest.raises(InvalidMicrodataInput, match="at least 1"):
            call(testdata2, keys, combs=[0, 2], k=2)
        with pytest.raises(InvalidMicrodataInput, match="whole numbers"):
            call(testdata2, keys, combs=[1.5], k=2)
        with pytest.raises(InvalidMicrodataInput, match="combs is empty"):
            call(testdata2, keys, combs=[], k=2)
        with pytest.raises(InvalidMicrodataInput, match="one k for every subset size"):
            call(testdata2, keys, combs=[3, 2], k=[2, 3, 4])
        with pytest.raises(InvalidMicrodataInput, match="k must be at least 1"):
            call(testdata2, keys, combs=[3, 2], k=[2, 0])
        with pytest.raises(InvalidMicrodataInput, match="repeated"):
            call(testdata2, ["roof", "roof"], combs=[1], k=2)
    with pytest.raises(InvalidMicrodataInput, match="give the subset sizes"):
        local_suppression(testdata2, keys, k=[2, 3])
    with pytest.raises(InvalidMicrodataInput, match="larger than the number of records"):
        local_suppression(testdata2, keys, k=[2, 94], combs=[3, 2])
    with pytest.raises(InvalidMicrodataInput, match="no records"):
        subset_k_anonymity(testdata2.head(0), keys, combs=[2])
    many = pl.DataFrame({f"v{j}": [1, 2] for j in range(40)})
    with pytest.raises(InvalidMicrodataInput, match="subsets"):
        subset_k_anonymity(many, many.columns, combs=[20])
