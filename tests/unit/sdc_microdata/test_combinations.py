"""key_combinations (DuckDB GROUP BY and fallback) and per-pattern risk against per-record pandas results."""
from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest

from disclosure_review.sdc.microdata import (
    InvalidMicrodataInput,
    RiskMethod,
    frequencies,
    individual_risk,
    key_combinations,
)

KEYS = ["region", "sex", "age"]


def survey(n: int = 5000, seed: int = 3, missing: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "region": rng.choice(["north", "south", "east", "west", "centre"], n),
        "sex": rng.choice(["F", "M"], n),
        "age": rng.integers(15, 95, n),
        "weight": rng.uniform(20, 400, n),
    })
    if missing:
        frame.loc[rng.random(n) < 0.03, "region"] = None
    return frame


def pandas_per_record(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    grouped = frame.groupby(KEYS)
    return grouped["weight"].transform("size").to_numpy(float), grouped["weight"].transform("sum").to_numpy()


@pytest.mark.parametrize("as_relation", [True, False])
def test_combinations_carry_the_per_record_results(as_relation):
    frame = survey()
    fk, Fk = pandas_per_record(frame)
    con = duckdb.connect()
    data = con.from_df(frame) if as_relation else frame
    combos = key_combinations(data, KEYS, weight="weight")
    assert combos.n == len(frame) and combos.records.size == frame.groupby(KEYS).ngroups
    assert combos.level == int(fk.min())
    for k in (2, 3, 5):
        assert combos.violations(k) == int((fk < k).sum())
        assert combos.violations(k, weighted=True) == int((Fk < k).sum()) == 0
    freq = frequencies(frame, KEYS, weight="weight")
    for method in RiskMethod:
        per_record = individual_risk(freq, method=method)
        assert combos.expected_reidentifications(combos.risk(method=method)) == pytest.approx(per_record.sum(), rel=1e-12)
    # Sorted per-record values equal the combinations' values repeated by their record counts.
    np.testing.assert_allclose(np.sort(np.repeat(combos.Fk, combos.records.astype(int))), np.sort(Fk))
    # Each combination's values name a group of exactly `records` records.
    sizes = frame.groupby(KEYS).size()
    for row, records in zip(combos.values.to_pylist(), combos.records):
        assert sizes[tuple(row[k] for k in KEYS)] == records


def test_missing_key_values_fall_back_to_sdcmicro_matching():
    frame = survey(missing=True)
    con = duckdb.connect()
    combos = key_combinations(con.from_df(frame), KEYS, weight="weight")
    freq = frequencies(frame, KEYS, weight="weight")
    assert combos.n == len(frame)
    assert combos.violations(3) == freq.violations(3)
    assert combos.expected_reidentifications() == pytest.approx(individual_risk(freq).sum(), rel=1e-12)
    values = combos.values.to_pandas()
    assert values["region"].isna().any() and not values[["sex", "age"]].isna().any().any()
    assert len(values.drop_duplicates()) == len(values)  # one combination per key pattern


def test_nan_in_a_float_key_is_missing_in_duckdb_too():
    frame = survey()
    frame["age"] = frame["age"].astype(float)
    frame.loc[::40, "age"] = np.nan
    con = duckdb.connect()
    in_duckdb = key_combinations(con.from_df(frame), KEYS, weight="weight")
    freq = frequencies(frame, KEYS, weight="weight")  # NaN matches any value here
    assert in_duckdb.violations(3) == freq.violations(3)
    assert in_duckdb.expected_reidentifications() == pytest.approx(individual_risk(freq).sum(), rel=1e-12)


def test_per_pattern_risk_equals_per_record_risk():
    freq = frequencies(survey(missing=True), KEYS, weight="weight")
    plain = dataclasses.replace(freq, pattern=None, pattern_fk=None, pattern_Fk=None)
    for method in RiskMethod:
        np.testing.assert_allclose(individual_risk(freq, method=method), individual_risk(plain, method=method),
                                   rtol=1e-12)


def test_bad_input():
    frame = survey(50)
    con = duckdb.connect()
    with pytest.raises(InvalidMicrodataInput, match="'shoe' not in the data"):
        key_combinations(con.from_df(frame), ["shoe"])
    for bad in (0, -2.0, np.nan, np.inf):
        frame.loc[3, "weight"] = bad
        with pytest.raises(InvalidMicrodataInput, match="1 record"):
            key_combinations(con.from_df(frame), KEYS, weight="weight")
    frame.loc[3, "weight"] = 1.0
    with pytest.raises(InvalidMicrodataInput, match="no records"):
        key_combinations(con.from_df(frame.iloc[:0]), KEYS)
    with pytest.raises(InvalidMicrodataInput, match="at least one key"):
        key_combinations(frame, [])
    with pytest.raises(InvalidMicrodataInput, match="repeated"):
        key_combinations(con.from_df(frame), ["sex", "sex"])
    with pytest.raises(InvalidMicrodataInput, match="must be numeric"):
        key_combinations(con.from_df(frame), KEYS, weight="region")


def test_empty_relation_with_weight_says_no_records():
    with pytest.raises(InvalidMicrodataInput, match="no records"):
        key_combinations(duckdb.connect().from_df(survey(50).iloc[:0]), KEYS, weight="weight")
