"""Bad parameters and inputs of sdc.microdata get an InvalidMicrodataInput that says what to fix (never a
deep traceback or a silent substitute), and key values mean the same on the frame and DuckDB paths.

Each case here was a traceback, a silently changed parameter or two different answers before issue 12.
"""
from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from disclosure_review.sdc.microdata import (
    InvalidMicrodataInput,
    RecordLevelRules,
    add_noise,
    check_record_level,
    frequencies,
    global_recode,
    global_risk,
    k_anonymity,
    key_combinations,
    l_diversity,
    local_suppression,
    microaggregation,
    multi_l_diversity,
    pram,
    risk_report,
    subset_k_anonymity,
    suda2,
    top_bottom_code,
)

PEOPLE = pl.DataFrame({"age": [1, 1, 1, 2, 2, 2, 3, 3], "sex": ["f", "f", "m", "m", "m", "f", "f", "f"],
                       "income": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                       "illness": ["a", "b", "a", "b", "a", "b", "a", "b"]})


def relation(frame: pl.DataFrame) -> duckdb.DuckDBPyRelation:
    con = duckdb.connect()
    con.register("frame", frame.to_arrow())
    return con.sql("SELECT * FROM frame")


def every_path(frame: pl.DataFrame) -> dict[str, object]:
    """The same records as each input the library reads: polars, pandas, Arrow, a DuckDB relation and table."""
    con = duckdb.connect()
    con.register("frame", frame.to_arrow())
    con.execute("CREATE TABLE stored AS SELECT * FROM frame")
    return {"polars": frame, "pandas": frame.to_pandas(), "arrow": frame.to_arrow(),
            "duckdb relation": con.sql("SELECT * FROM frame"), "duckdb table": con.table("stored")}


# -- key values: one meaning on every path ------------------------------------------------


@pytest.mark.parametrize("path", ["polars", "pandas", "arrow", "duckdb relation", "duckdb table"])
def test_negative_zero_is_zero_on_every_path(path):
    """-0.0 and 0.0 are one key value (as SQL, DuckDB's GROUP BY and sdcMicro's R compare them): three records."""
    data = every_path(pl.DataFrame({"x": [0.0, -0.0, 0.0, 1.0, 1.0, 1.0]}))[path]
    assert k_anonymity(data, ["x"], k=3).records_below_k == 0
    assert frequencies(data, ["x"]).fk.tolist() == [3.0] * 6
    assert sorted(key_combinations(data, ["x"]).records.tolist()) == [3, 3]
    assert risk_report(data, keys=["x"], k=3, progress=False).k_violations[3] == 0


@pytest.mark.parametrize("path", ["polars", "pandas", "arrow", "duckdb relation", "duckdb table"])
def test_nan_and_null_are_both_missing_on_every_path(path):
    """NaN (a float) and NULL are both a missing key value, which matches any value (sdcMicro's freqCalc)."""
    nan = pl.DataFrame({"x": [0.0, 0.0, float("nan"), 1.0, 1.0, 1.0]})
    null = pl.DataFrame({"x": [0.0, 0.0, None, 1.0, 1.0, 1.0]}, schema={"x": pl.Float64})
    for frame in (nan, null):
        data = every_path(frame)[path]
        assert frequencies(data, ["x"]).fk.tolist() == [3.0, 3.0, 6.0, 4.0, 4.0, 4.0]
        assert k_anonymity(data, ["x"], k=3).records_below_k == 0


@pytest.mark.parametrize("path", ["polars", "pandas", "arrow", "duckdb relation"])
@pytest.mark.parametrize("k", [2.5, 0, -1, float("nan"), True, "3"])
def test_k_is_a_whole_number_on_every_path(path, k):
    """k = 2.5 was truncated to 2 in DuckDB and compared as 2.5 on frames; now it is refused on both."""
    data = every_path(PEOPLE)[path]
    with pytest.raises(InvalidMicrodataInput, match="k must be at least 1 and a whole number"):
        k_anonymity(data, ["age", "sex"], k=k)


def test_a_whole_float_k_is_the_whole_number():
    assert k_anonymity(PEOPLE, ["age"], k=3.0).k == 3
    assert k_anonymity(relation(PEOPLE), ["age"], k=3.0).k == 3


# -- record-level check ---------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 2.5])
def test_record_level_rules_refuse_a_k_no_rule_can_use(k):
    """check_record_level with k=0 or 2.5 raised KeyError from deep inside; the rules now refuse k themselves."""
    with pytest.raises(InvalidMicrodataInput, match="k must be at least 1 and a whole number"):
        check_record_level(PEOPLE, keys=["age", "sex"], rules=RecordLevelRules(k=k))


@pytest.mark.parametrize("rule,value,message", [
    ("max_individual_risk", float("nan"), "max_individual_risk must be a number between 0 and 1"),
    ("max_global_risk", 2.0, "max_global_risk must be a number between 0 and 1"),
    ("weighted_k", 0.5, "weighted k must be a number at least 1"),
    ("l_diversity", 1.5, "l_diversity must be at least 1 and a whole number"),
])
def test_record_level_rules_refuse_numbers_out_of_range(rule, value, message):
    with pytest.raises(InvalidMicrodataInput, match=message):
        RecordLevelRules(**{rule: value})


def test_record_level_check_of_data_with_a_repeated_column_says_review():
    """Duplicate column names gave a deep pyarrow error; inside the check they are a review with the reason."""
    data = pd.DataFrame([[1, 1], [1, 1], [1, 1]], columns=["age", "age"])
    check = check_record_level(data, keys=["age"])
    assert check.verdict.value == "review"
    assert "more than one column named 'age'" in check.findings[0].args["error"]


# -- protection and risk measures -----------------------------------------------------------


def test_repeated_column_names_are_refused_clearly():
    """A pandas frame with two columns named "a" gave a deep pyarrow or polars error."""
    data = pd.DataFrame([[1, 2], [1, 2]], columns=["a", "a"])
    for call in (lambda: k_anonymity(data, ["a"], k=2), lambda: frequencies(data, ["a"]),
                 lambda: microaggregation(data, ["a"], k=2), lambda: pram(data, ["a"], seed=1)):
        with pytest.raises(InvalidMicrodataInput, match="more than one column named 'a'"):
            call()


def test_pram_of_an_all_missing_variable_says_so():
    """PRAM of a variable missing for every record raised ArrowIndexError."""
    data = pl.DataFrame({"a": [None, None, None], "b": ["x", "y", "x"]}, schema={"a": pl.String, "b": pl.String})
    with pytest.raises(InvalidMicrodataInput, match="'a' is missing for every record"):
        pram(data, ["a"], seed=1)


@pytest.mark.parametrize("pd_value", [float("nan"), 1.5, -0.1, True, "0.8"])
def test_pram_pd_out_of_range_is_refused(pd_value):
    with pytest.raises(InvalidMicrodataInput, match="pd for 'sex'"):
        pram(PEOPLE, ["sex"], pd=pd_value, seed=1)


@pytest.mark.parametrize("k", [2.5, float("nan"), 1, "3"])
def test_microaggregation_k_is_a_whole_number_of_at_least_2(k):
    """k=2.5 raised TypeError from a slice; k=NaN silently made one group of every record."""
    with pytest.raises(InvalidMicrodataInput, match=r"k \(records per group in microaggregation\) must be at least 2"):
        microaggregation(PEOPLE, ["income"], k=k)


@pytest.mark.parametrize("noise", [float("nan"), -1.0])
def test_noise_must_be_a_number_at_least_0(noise):
    with pytest.raises(InvalidMicrodataInput, match="noise"):
        add_noise(PEOPLE, ["income"], noise=noise, seed=1)


def test_global_risk_of_no_records_is_refused():
    """global_risk([]) divided by zero."""
    with pytest.raises(InvalidMicrodataInput, match="none was given"):
        global_risk(np.array([]))
    with pytest.raises(InvalidMicrodataInput, match="none was given"):
        global_risk([])


@pytest.mark.parametrize("fraction", [0, 0.0, -0.5, 1.5, float("nan")])
def test_suda2_dis_fraction_is_a_sampling_fraction(fraction):
    """dis_fraction outside (0, 1] was accepted, and 0 silently replaced by 0.5."""
    with pytest.raises(InvalidMicrodataInput, match=r"dis_fraction \(the sampling fraction\) must be a number between 0 "
                                                    r"and 1 \(0 excluded\)"):
        suda2(PEOPLE, ["age", "sex"], dis_fraction=fraction)


def test_suda2_dis_fraction_of_one_is_allowed():
    assert np.isfinite(suda2(PEOPLE, ["age", "sex"], dis_fraction=1.0).dis_score).all()


@pytest.mark.parametrize("call,message", [
    (lambda: frequencies(PEOPLE, ["age"], alpha=math.nan), "alpha must be a number between 0 and 1"),
    (lambda: subset_k_anonymity(PEOPLE, ["age", "sex"], combs=[1], k=2.5), "k must be at least 1"),
    (lambda: subset_k_anonymity(PEOPLE, ["age", "sex"], combs=[1], alpha=2), "alpha must be a number"),
    (lambda: local_suppression(PEOPLE, ["age", "sex"], k=2.5), "k must be at least 1"),
    (lambda: local_suppression(PEOPLE, ["age", "sex"], alpha=-1), "alpha must be a number"),
    (lambda: risk_report(PEOPLE, keys=["age"], k=2.5, progress=False), "k must be at least 1"),
    (lambda: risk_report(PEOPLE, keys=["age"], top=-1, progress=False), "top must be at least 0"),
    (lambda: suda2(PEOPLE, ["age", "sex"], max_size=1.5), "max_size must be at least 1"),
    (lambda: l_diversity(PEOPLE, ["age"], "illness", c=0), r"c \(recursive l-diversity constant\)"),
    (lambda: multi_l_diversity(PEOPLE, ["age"], ["illness", "sex"], c=-1), r"c \(recursive l-diversity"),
    (lambda: global_recode(PEOPLE, "income", breaks=[0.0, math.nan, 9.0]), "finite, increasing"),
    (lambda: top_bottom_code(PEOPLE, "income", bound=math.nan, replacement=5.0), "bound must be a number"),
    (lambda: global_risk(np.array([0.1, 0.2]), mad_factor=math.nan), "mad_factor must be a number"),
    (lambda: key_combinations(PEOPLE, ["age"]).violations(2.5), "k must be at least 1"),
    (lambda: frequencies(PEOPLE, ["age"]).violations(0), "k must be at least 1"),
])
def test_neighbouring_parameters_are_checked_in_one_place(call, message):
    """The same class of hole in the neighbouring functions: silently replaced (c <= 0 became 1), truncated
    or accepted parameters."""
    with pytest.raises(InvalidMicrodataInput, match=message):
        call()


@pytest.mark.parametrize("call,message", [
    (lambda: top_bottom_code(PEOPLE, "income", bound=5.0, replacement=5.0, side="up"), "side must be one of 'top'"),
    (lambda: add_noise(PEOPLE, ["income"], method="gaussian", seed=1), "method must be one of 'additive'"),
    (lambda: risk_report(PEOPLE, keys=["age"], method=3, progress=False), "method must be one of 'approx'"),
    (lambda: global_recode(PEOPLE, "income", breaks=2, method="median"), "method must be one of"),
    (lambda: local_suppression(PEOPLE, ["age", "sex"], method="quick"), "method must be one of 'sdcmicro'"),
])
def test_a_method_that_is_no_member_is_refused(call, message):
    """A string for an enum went down the wrong branch (side="top" coded the bottom, method="exact" gave the
    approximation) and then raised AttributeError."""
    with pytest.raises(InvalidMicrodataInput, match=message):
        call()


def test_a_method_given_by_its_value_is_that_method():
    top = top_bottom_code(PEOPLE, "income", bound=7.0, replacement=7.0, side="top").data["income"].to_list()
    assert top == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.0]
    assert add_noise(PEOPLE, ["income"], method="additive", seed=1).details["method"] == "additive"
    assert global_recode(PEOPLE, "income", breaks=2, method="quantiles").details["method"] == "quantiles"


@pytest.mark.parametrize("measure,l,message", [("distinct", math.nan, "l must be a number at least 1"),
                                               ("entropic", 2, "measure must be one of 'distinct'")])
def test_l_diversity_violations_need_a_measure_and_an_l(measure, l, message):
    """l = NaN counted no record below it (a silent pass); an unknown measure raised KeyError."""
    result = l_diversity(PEOPLE, ["age"], "illness")["illness"]
    with pytest.raises(InvalidMicrodataInput, match=message):
        result.violations(l, measure=measure)
    assert result.violations(2) == 0  # every age group has both illnesses
