"""l-diversity: distinct values against sdcMicro's tests/testthat/test_ldiversity.R (v5.8.1);
entropy and recursive l-diversity have no published numbers, so they are checked
against a plain pandas implementation written from sdcMicro's Measure_Risk.h formulas."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from disclosure_review.sdc.microdata import InvalidMicrodataInput, l_diversity


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


def _pandas_ldiversity(df: pd.DataFrame, keys: list[str], s: str, c: float) -> pd.DataFrame:
    out = []
    for _, g in df.groupby(keys, dropna=False, sort=False):
        counts = g[s].value_counts(dropna=True).sort_values(ascending=False).tolist()
        n_missing = int(g[s].isna().sum())
        size = len(g)
        parts = counts + ([n_missing] if counts and n_missing else [])
        distinct = len(parts)
        entropy = math.exp(-sum(x / size * math.log(x / size) for x in parts))
        rec = 0 if not counts else 1
        for l in range(2, len(counts) + 1):
            if counts[0] < c * sum(counts[l - 1 :]):
                rec = l
        out.append(pd.DataFrame({"idx": g.index, "distinct": distinct, "entropy": entropy, "recursive": rec}))
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
