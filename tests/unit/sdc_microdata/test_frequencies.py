"""f_k / F_k against sdcMicro's tests/testthat/test_freqCalc.R and test_indivRisk.R (v5.8.1).

R builds the data with array(c(...), dim=c(8,3)): column-major, so each
column below is a slice of that vector. Expected numbers are copied from those tests.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from disclosure_review.sdc.microdata import InvalidMicrodataInput, RiskMethod, frequencies, individual_risk, k_anonymity

NA = None
W = [18.0, 45.5, 39.0, 17.0, 92.0, 8.0, 123.5, 51]


def frame(values: list, ncol: int, weight: list[float] = W) -> pl.DataFrame:
    nrow = len(values) // ncol
    cols = {chr(ord("A") + j): values[j * nrow : (j + 1) * nrow] for j in range(ncol)}
    return pl.DataFrame({**cols, "weight": weight}, schema_overrides={c: pl.Float64 for c in cols})


COMPLETE = [2, 3, 2, 2, 3, 3, 1, 2, 3, 3, 3, 3, 3, 3, 4, 3, 1, 3, 1, 2, 1, 1, 1, 1]
WITH_NA = [2, 3, 2, 2, 3, 3, 1, 2, 3, 3, 3, 3, 3, 3, 4, 3, 1, 3, NA, 2, 1, 1, NA, 1]
COLUMN_AND_ROW_NA = [2, 3, NA, 2, 3, 3, 1, 2, 3, 3, NA, 3, 3, 3, 4, 3] + [NA] * 8

# (data, ncol, weight, weighted Fk, fk, n1, n2) from test_freqCalc.R
CASES = [
    ("no NA", frame(COMPLETE, 3), [108.0, 45.5, 108.0, 17.0, 100.0, 100.0, 123.5, 108.0], [3, 1, 3, 1, 2, 2, 1, 3], 3, 2),
    ("NA", frame(WITH_NA, 3), [108.0, 45.5, 125.0, 56.0, 100.0, 100.0, 123.5, 108.0], [3, 1, 4, 2, 2, 2, 1, 3], 2, 3),
    ("NA column and row", frame(COLUMN_AND_ROW_NA, 3), [125.0, 184.5, 394.0, 125.0, 184.5, 184.5, 162.5, 125.0], [4, 4, 8, 4, 4, 4, 2, 4], 0, 1),
    ("one key with NA", frame([2, 3, NA, 2, 1, NA, 1, 2], 1), [133.0, 92.5, 394.0, 133.0, 262.5, 394.0, 262.5, 133.0], [5, 3, 8, 5, 4, 8, 4, 5], 0, 0),
    ("more keys than records", frame([2, 3, NA, 2, 3, 3, 1, NA, 3, 3, NA, 3, 3, 2, 2, 3, NA, NA, 1, 2, NA, NA, 4, 4], 8, [18.0, 45.5, 122]), [18.0, 167.5, 167.5], [1, 2, 2], 1, 2),
]


@pytest.mark.parametrize("name,data,Fk,fk,n1,n2", CASES, ids=[c[0] for c in CASES])
def test_freqcalc_reference(name, data, Fk, fk, n1, n2):
    keys = [c for c in data.columns if c != "weight"]
    weighted = frequencies(data, keys, weight="weight")  # freqCalc(x, keyVars, w=weight)
    np.testing.assert_allclose(weighted.Fk, Fk, rtol=1e-9)
    np.testing.assert_allclose(weighted.fk, fk)
    assert (weighted.n1, weighted.n2) == (n1, n2)
    unweighted = frequencies(data, keys)  # freqCalc(x, keyVars): Fk == fk
    np.testing.assert_allclose(unweighted.Fk, fk)
    np.testing.assert_allclose(unweighted.fk, fk)


def test_same_result_from_relation_pandas_and_polars():
    data = frame(WITH_NA, 3)
    con = duckdb.connect()
    rel = con.from_arrow(data.to_arrow())
    expected = frequencies(data, ["A", "B", "C"], weight="weight").Fk
    for source in (rel, data.to_pandas(), data.lazy(), data.to_arrow()):
        np.testing.assert_allclose(frequencies(source, ["A", "B", "C"], weight="weight").Fk, expected)


def test_pandas_nan_is_missing():
    data = frame(WITH_NA, 3).to_pandas()
    assert data["C"].isna().sum() == 2 and isinstance(data, pd.DataFrame)
    np.testing.assert_allclose(frequencies(data, ["A", "B", "C"]).fk, [3, 1, 4, 2, 2, 2, 1, 3])


IR_COMPLETE = {
    (RiskMethod.APPROX, 1): [0.01369863, 0.08579129, 0.01369863, 0.17707583, 0.01877883, 0.01877883, 0.03931625, 0.01369863],
    (RiskMethod.APPROX, 2): [0.02739726, 0.17158258, 0.02739726, 0.35415167, 0.03755767, 0.03755767, 0.07863251, 0.02739726],
    (RiskMethod.EXACT, 1): [0.01355297, 0.08579129, 0.01355297, 0.17707583, 0.01877883, 0.01877883, 0.03931625, 0.01355297],
    (RiskMethod.EXACT, 2): [0.02710594, 0.17158258, 0.02710594, 0.35415167, 0.03755767, 0.03755767, 0.07863251, 0.02710594],
}
IR_NA = {
    (RiskMethod.APPROX, 1): [0.013698630, 0.085791288, 0.010554090, 0.032466112, 0.009836066, 0.009836066, 0.039316254, 0.005973716],
    (RiskMethod.APPROX, 2): [0.02739726, 0.17158258, 0.02110818, 0.06493222, 0.01967213, 0.01967213, 0.07863251, 0.01194743],
    (RiskMethod.EXACT, 1): [0.013552968, 0.085791288, 0.010504889, 0.032466112, 0.009756889, 0.009756889, 0.039316254, 0.005962551],
    (RiskMethod.EXACT, 2): [0.02710594, 0.17158258, 0.02100978, 0.06493222, 0.01951378, 0.01951378, 0.07863251, 0.01192510],
}
# test_indivRisk.R's "with missing" data: A has an NA in row 8 too
IR_NA_DATA = [2, 3, 2, 2, 3, 3, 1, NA, 3, 3, 3, 3, 3, 3, 4, 3, 1, 3, NA, 2, 1, 1, NA, 1]


@pytest.mark.parametrize("values,expected", [(COMPLETE, IR_COMPLETE), (IR_NA_DATA, IR_NA)], ids=["complete", "NA"])
@pytest.mark.parametrize("method,qual", list(IR_COMPLETE))
def test_indivrisk_reference(values, expected, method, qual):
    """indivRisk(freqCalc(x, keyVars=1:3, w=4), method, qual, survey=TRUE); values given to 8 digits."""
    freq = frequencies(frame(values, 3), ["A", "B", "C"], weight="weight")
    np.testing.assert_allclose(individual_risk(freq, method=method, qual=qual), expected[(method, qual)], rtol=1e-6, atol=5e-9)


def test_indivrisk_without_survey_is_inverse_fk():
    """indivRisk(..., survey=FALSE) and unweighted survey=TRUE: 1/fk (test_indivRisk.R, rounded to 5 digits)."""
    freq = frequencies(frame(IR_NA_DATA, 3), ["A", "B", "C"], weight="weight")
    np.testing.assert_allclose(individual_risk(freq, survey=False), [1 / 3, 1, 0.25, 0.5, 1 / 3, 1 / 3, 1, 0.2])
    unweighted = frequencies(frame(IR_NA_DATA, 3), ["A", "B", "C"])
    np.testing.assert_allclose(individual_risk(unweighted, qual=2), [2 / 3, 2, 0.5, 1, 2 / 3, 2 / 3, 2, 0.4])


def test_bad_input_is_refused():
    data = frame(COMPLETE, 3)
    with pytest.raises(InvalidMicrodataInput, match="'D'.*not in the data"):
        frequencies(data, ["A", "D"])
    with pytest.raises(InvalidMicrodataInput, match="positive"):
        frequencies(data.with_columns(weight=pl.lit(0.0)), ["A"], weight="weight")
    with pytest.raises(InvalidMicrodataInput, match="positive"):
        frequencies(data.with_columns(weight=-pl.col("weight")), ["A"], weight="weight")
    with pytest.raises(InvalidMicrodataInput, match="no records"):
        frequencies(data.head(0), ["A"])
    with pytest.raises(InvalidMicrodataInput, match="k must be at least 1"):
        frequencies(data, ["A"]).violations(0)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from property_examples import examples  # noqa: E402
from reference import brute_force_fk  # noqa: E402


@settings(max_examples=examples(40), deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda p: st.lists(st.tuples(*[st.one_of(st.none(), st.integers(0, 2))] * p), min_size=1, max_size=30)
    ),
    st.sampled_from([1.0, 0.5, 0.0]),
)
def test_frequencies_match_pairwise_definition(rows, alpha):
    p = len(rows[0])
    data = pl.DataFrame([list(r) for r in rows], schema={f"v{j}": pl.Int64 for j in range(p)}, orient="row")
    np.testing.assert_allclose(frequencies(data, data.columns, alpha=alpha).fk, brute_force_fk(rows, alpha))


def test_k_anonymity_in_sql_equals_frequencies(testdata):
    """k_anonymity on a relation runs in DuckDB; with missing keys it falls back to frequencies()."""
    from disclosure_review.sdc.microdata import k_anonymity

    keys = ["urbrur", "roof", "walls", "water", "electcon", "relat", "sex"]
    con = duckdb.connect()
    freq = frequencies(testdata, keys)
    for k in (2, 3, 5):
        res = k_anonymity(con.from_arrow(testdata.to_arrow()), keys, k=k)
        assert (res.level, res.records_below_k) == (int(freq.fk.min()), freq.violations(k))
    with_na = testdata.with_columns(pl.when(pl.col("roof") == 9).then(None).otherwise(pl.col("roof")).alias("roof"))
    res = k_anonymity(con.from_arrow(with_na.to_arrow()), keys, k=3)
    assert res.records_below_k == frequencies(with_na, keys).violations(3) != freq.violations(3)
    assert k_anonymity(with_na, keys, k=3) == res
    with pytest.raises(InvalidMicrodataInput, match="no records"):
        k_anonymity(con.from_arrow(testdata.head(0).to_arrow()), keys)


@pytest.mark.parametrize("distinct", [3, 40, 3000])  # 3000: above the limit for coding text inside DuckDB
def test_text_keys_of_a_relation_equal_the_frame_path(distinct):
    """Text keys of a DuckDB relation are coded inside DuckDB by hash slots; results equal the Arrow path."""
    rng = np.random.default_rng(distinct)
    n = 20_000
    data = pd.DataFrame({
        "town": np.array([f"t{i:05d}" for i in range(distinct)], dtype=object)[rng.integers(0, distinct, n)],
        "sex": rng.choice(["F", "M"], n).astype(object),
        "age": rng.integers(0, 9, n),
        "w": rng.uniform(1, 50, n),
    })
    data.loc[rng.random(n) < 0.01, "town"] = None
    data.loc[rng.random(n) < 0.01, "sex"] = None
    keys = ["town", "sex", "age"]
    from_frame = frequencies(data, keys, weight="w")
    from_relation = frequencies(duckdb.connect().from_df(data), keys, weight="w")
    np.testing.assert_array_equal(from_relation.fk, from_frame.fk)
    np.testing.assert_allclose(from_relation.Fk, from_frame.Fk, rtol=1e-12)


def test_k_anonymity_in_duckdb_treats_nan_as_missing():
    data = pd.DataFrame({"a": [1.0, 1.0, np.nan, 2.0, 2.0, 2.0], "b": ["x", "x", "x", "y", "y", "y"]})
    rel = duckdb.connect().from_df(data)
    level = frequencies(data, ["a", "b"]).fk.min()  # NaN matches any value: the NaN record counts in (1, x)
    assert k_anonymity(rel, ["a", "b"]).level == level == 3
