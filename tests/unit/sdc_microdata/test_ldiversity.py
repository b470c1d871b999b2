"""l-diversity: distinct values against sdcMicro's tests/testthat/test_ldiversity.R (v5.8.1);
entropy, recursive and multi-attribute l-diversity have no published numbers, so they are checked
against a plain pandas implementation written from sdcMicro's Measure_Risk.h formulas (for the
multi measures, Compute_Multi_LDiversity; v5.8.1 leaves their per-part values uninitialised, so the
definition is that of the version before commit 1083fe0, which computed them)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc.microdata import InvalidMicrodataInput, l_diversity, multi_l_diversity


def test_distinct_reference_with_missing_keys():
    """ldiversity(test_data, keyVars=1:3, ldiv_index=4): distinct 3,3,3,2,2,2,2."""
    data = pl.DataFrame(
        {
            "sex": ["female", "female", "female", "male", "male", "female", "female"],
            "occupation": [None, None, None, "teacher", "teacher", "nurse", "nurse"],
            "ethnicity": ["other", "other", "other", "other", "other", "majority", "majority"],
            "sensitive": [1, 0, 2, 1, 0, 0, 1],
        }
    )
    res = l_diversity(data, ["sex", "occupation", "ethnicity"], "sensitive")["sensitive"]
    np.testing.assert_array_equal(res.distinct, [3, 3, 3, 2, 2, 2, 2])


def test_distinct_reference_multiple_sensitive():
    """ldiversity(multi_data, keyVars='key', ldiv_index=c('sens1','sens2')): 2 and 3."""
    data = pl.DataFrame({"key": [1, 1, 1], "sens1": ["A", "B", "A"], "sens2": ["X", "Y", "Z"]})
    res = l_diversity(data, ["key"], ["sens1", "sens2"])
    assert res["sens1"].distinct[0] == 2 and res["sens2"].distinct[0] == 3


def _plain_measures(values: pd.Series, c: float) -> tuple[int, float, int]:
    """Distinct, entropy and recursive (c, l) l-diversity of one group's values (NaN = missing)."""
    counts = values.value_counts(dropna=True).sort_values(ascending=False).tolist()
    n_missing = int(values.isna().sum())
    parts = counts + ([n_missing] if counts and n_missing else [])
    entropy = math.exp(-sum(x / len(values) * math.log(x / len(values)) for x in parts))
    rec = 0 if not counts else 1
    for l in range(2, len(counts) + 1):
        if counts[0] < c * sum(counts[l - 1 :]):
            rec = l
    return len(parts), entropy, rec


def _pandas_ldiversity(df: pd.DataFrame, keys: list[str], s: str, c: float) -> pd.DataFrame:
    out = []
    for _, g in df.groupby(keys, dropna=False, sort=False):
        distinct, entropy, rec = _plain_measures(g[s], c)
        out.append(pd.DataFrame({"idx": g.index, "distinct": distinct, "entropy": entropy, "recursive": rec}))
    return pd.concat(out).set_index("idx").sort_index()


def _plain_multi(df: pd.DataFrame, keys: list[str], sensitive: list[str], c: float) -> pd.DataFrame:
    """sdcMicro's Compute_Multi_LDiversity: per key group the smallest entropy/recursive l-diversity of
    each sensitive variable within the parts of equal other sensitive values (missing a value)."""
    out = []
    for _, g in df.groupby(keys, dropna=False, sort=False):
        entropy, rec = math.inf, math.inf
        for s in sensitive:
            others = [o for o in sensitive if o != s]
            for _, part in g.groupby(others, dropna=False, sort=False):
                _, e, r = _plain_measures(part[s], c)
                entropy, rec = min(entropy, e), min(rec, r)
        out.append(pd.DataFrame({"idx": g.index, "entropy": entropy, "recursive": rec}))
    return pd.concat(out).set_index("idx").sort_index()


@pytest.mark.parametrize("c", [2.0, 3.0])
def test_entropy_and_recursive_match_pandas(testdata, c):
    keys, s = ["urbrur", "roof", "sex"], "water"
    data = testdata.with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 0).then(None).otherwise(pl.col(s)).alias(s),
        pl.when(pl.int_range(pl.len()) % 29 == 0).then(None).otherwise(pl.col("roof")).alias("roof"),
    )
    ours = l_diversity(data, keys, s, c=c)[s]
    expected = _pandas_ldiversity(data.to_pandas(), keys, s, c)
    np.testing.assert_array_equal(ours.distinct, expected["distinct"].to_numpy())
    np.testing.assert_allclose(ours.entropy, expected["entropy"].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours.recursive, expected["recursive"].to_numpy())
    assert ours.violations(2) == int((expected["distinct"] < 2).sum()) > 0


def test_sensitive_key_refused():
    with pytest.raises(InvalidMicrodataInput, match="cannot be a key"):
        l_diversity(pl.DataFrame({"a": [1], "b": [2]}), ["a", "b"], "b")


@pytest.mark.parametrize("c", [2.0, 3.0])
def test_multi_matches_plain_implementation(testdata, c):
    """ldiversity(testdata, keyVars=c('urbrur','roof'), ldiv_index=c('sex','electcon'), l_recurs_c=c)
    with some sex missing: MultiEntropy_Ldiversity and MultiRecursive_Ldiversity by their definition."""
    keys, sensitive = ["urbrur", "roof"], ["sex", "electcon"]
    data = testdata.with_columns(pl.when(pl.int_range(pl.len()) % 13 == 0).then(None).otherwise(pl.col("sex")).alias("sex"))
    ours = multi_l_diversity(data, keys, sensitive, c=c)
    expected = _plain_multi(data.to_pandas(), keys, sensitive, c)
    np.testing.assert_allclose(ours.entropy, expected["entropy"].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours.recursive, expected["recursive"].to_numpy())
    assert len(np.unique(ours.entropy)) > 3 and ours.violations(1.5) > 0
    # never above the single-variable measures: a part is a subset of its group
    single = l_diversity(data, keys, sensitive, c=c)
    for s in sensitive:
        assert (ours.entropy <= single[s].entropy + 1e-12).all() and (ours.recursive <= single[s].recursive).all()


@settings(max_examples=examples(60), deadline=None)
@given(
    st.integers(2, 3).flatmap(lambda m: st.lists(
        st.tuples(st.integers(0, 2), *[st.one_of(st.none(), st.integers(0, 2))] * m), min_size=1, max_size=40)),
    st.sampled_from([0.5, 1.0, 2.0, 3.0]),
)
def test_multi_matches_plain_implementation_random(rows, c):
    sensitive = [f"s{j}" for j in range(len(rows[0]) - 1)]
    data = pl.DataFrame([list(r) for r in rows], schema={c: pl.Int64 for c in ["key", *sensitive]}, orient="row")
    ours = multi_l_diversity(data, ["key"], sensitive, c=c)
    expected = _plain_multi(data.to_pandas(), ["key"], sensitive, c)
    np.testing.assert_allclose(ours.entropy, expected["entropy"].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours.recursive, expected["recursive"].to_numpy())


def test_multi_small_example():
    """Key 1: s1 within s2 = X is A, A (entropy 1); key 2: s2 within s1 = x is u (1); key 3: every
    part has two equally frequent values, so entropy 2 and recursive 2 (c = 2: 1 < 2·1)."""
    data = pl.DataFrame({
        "key": [1, 1, 1, 2, 2, 3, 3, 3, 3],
        "s1": ["A", "A", "B", "x", "y", "p", "q", "p", "q"],
        "s2": ["X", "X", "Y", "u", "u", "m", "m", "n", "n"],
    })
    res = multi_l_diversity(data, ["key"], ["s1", "s2"])
    np.testing.assert_allclose(res.entropy, [1, 1, 1, 1, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(res.recursive, [1, 1, 1, 1, 1, 2, 2, 2, 2])


def test_multi_bad_input(testdata):
    with pytest.raises(InvalidMicrodataInput, match="at least two sensitive"):
        multi_l_diversity(testdata, ["urbrur"], ["water"])
    with pytest.raises(InvalidMicrodataInput, match="'nothere'"):
        multi_l_diversity(testdata, ["urbrur"], ["water", "nothere"])
    with pytest.raises(InvalidMicrodataInput, match="cannot be a key"):
        multi_l_diversity(testdata, ["urbrur", "water"], ["water", "roof"])
    with pytest.raises(InvalidMicrodataInput, match="repeated"):
        multi_l_diversity(testdata, ["urbrur"], ["water", "water"])
    with pytest.raises(InvalidMicrodataInput, match="no records"):
        multi_l_diversity(testdata.head(0), ["urbrur"], ["water", "roof"])
