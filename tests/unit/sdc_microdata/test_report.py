"""Risk report and release-time check on sdcMicro's testdata; numbers compared with plain
pandas computations of the same definitions (sdcMicro publishes no report numbers for it)."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest
from PIL import Image

from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.microdata import (
    InvalidMicrodataInput,
    RecordLevelRules,
    check_record_level,
    local_suppression,
    global_risk,
    risk_report,
)

KEYS = ["urbrur", "roof", "walls", "water", "electcon", "relat", "sex"]


@pytest.fixture(scope="module")
def report(testdata):
    return risk_report(testdata, keys=KEYS, weight="sampling_weight", household="ori_hid", sensitive=["hhcivil"],
                       k=3, suda=True, progress=False)


def test_report_numbers_match_pandas(testdata, report):
    df = testdata.to_pandas()
    assert not df[KEYS].isna().any().any()  # no missing keys: plain group sizes are f_k
    fk = df.groupby(KEYS)["urbrur"].transform("size").to_numpy()
    Fk = df.groupby(KEYS)["sampling_weight"].transform("sum").to_numpy()
    combos = report.combinations
    records = combos.records.astype(int)
    assert combos.n == report.n == len(df) and combos.records.size == df.groupby(KEYS).ngroups
    # Per combination, repeated by its records, the values are the per-record ones.
    np.testing.assert_array_equal(np.sort(np.repeat(combos.fk, records)), np.sort(fk))
    np.testing.assert_allclose(np.sort(np.repeat(combos.Fk, records)), np.sort(Fk))
    assert report.k_violations == {2: int((fk < 2).sum()), 3: int((fk < 3).sum())}
    assert report.weighted_k_violations == int((Fk < 3).sum())
    assert report.combinations_below_k == int((df.groupby(KEYS).size() < 3).sum())
    d = report.to_dict()
    assert d["records"] == 4580 and sum(d["fk_classes"].values()) == 4580
    assert d["fk_classes"]["1"] == int((fk == 1).sum())
    worst = report.risky_combinations[0]
    assert worst.risk == pytest.approx(report.max_risk)
    match = df[np.logical_and.reduce([df[k] == worst.values[k] for k in KEYS])]
    assert len(match) == worst.records == worst.fk
    json.dumps(d)  # JSON-ready


def test_report_text_and_plot(report, tmp_path):
    text = report.to_text()
    assert f"records in combinations of fewer than 3: {report.k_violations[3]:,}" in text
    assert "expected re-identifications" in text and "SUDA2" in text and "household risk" in text
    assert "l-diversity of hhcivil" in text
    for lang in ("en", "ja"):
        path = report.plot(tmp_path / f"risk-{lang}.png", lang=lang)
        with Image.open(path) as image:
            assert image.size == (900, 380)


def test_report_from_relation_equals_polars(testdata, report):
    con = duckdb.connect()
    rel = con.from_arrow(testdata.to_arrow())
    again = risk_report(rel, keys=KEYS, weight="sampling_weight", household="ori_hid", k=3, progress=False)
    np.testing.assert_allclose(again.risk, report.risk)
    assert again.global_risk == report.global_risk


@pytest.mark.parametrize("weight", ["sampling_weight", None])
def test_report_per_combination_in_duckdb_equals_per_record(testdata, weight):
    """Without household and SUDA2 a relation is aggregated in DuckDB; the report is the per-record one."""
    rel = duckdb.connect().from_arrow(testdata.to_arrow())
    fast = risk_report(rel, keys=KEYS, weight=weight, k=3, progress=False)
    slow = risk_report(testdata, keys=KEYS, weight=weight, k=3, suda=True, progress=False)
    a, b = fast.to_dict(), slow.to_dict()
    assert a.pop("suda2") is None and b.pop("suda2") is not None
    for name in ("expected_reidentifications", "global_risk"):
        assert a.pop(name) == pytest.approx(b.pop(name), rel=1e-12)
    assert a == b  # records, k-anonymity, risky records (median + 2 MAD), histogram, riskiest combinations
    assert fast.risky_combinations == slow.risky_combinations


def test_risky_records_per_combination_equal_per_record():
    """Median and MAD over combinations weighted by their records equal those over every record."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = int(rng.integers(1, 9))
        risk, records = rng.random(m).round(1), rng.integers(1, 6, m).astype(float)
        per_record = np.repeat(risk, records.astype(int))
        combined, plain = global_risk(risk, records=records), global_risk(per_record)
        assert (combined.n, combined.risky_records) == (plain.n, plain.risky_records)
        assert combined.expected_reidentifications == pytest.approx(plain.expected_reidentifications, rel=1e-12)


def test_check_fails_then_passes_after_suppression(testdata):
    rules = RecordLevelRules(k=3, max_individual_risk=None)
    check = check_record_level(testdata, keys=KEYS, rules=rules)
    assert check.verdict is Verdict.FAIL
    assert any("k_anonymity (fail)" in r for r in check.reasons())
    protected = local_suppression(testdata, KEYS, k=3).data
    after = check_record_level(protected, keys=KEYS, rules=rules)
    assert after.verdict is Verdict.PASS, after.reasons()
    assert after.to_dict()["findings"][0]["rule"] == "k_anonymity"


def test_check_individual_risk_threshold(testdata):
    res = check_record_level(testdata, keys=["urbrur", "sex"], weight="sampling_weight",
                             rules=RecordLevelRules(k=None, max_individual_risk=0.5))
    assert res.verdict is Verdict.PASS  # two coarse keys: every combination is large
    res = check_record_level(testdata, keys=KEYS, weight="sampling_weight",
                             rules=RecordLevelRules(k=None, max_individual_risk=0.01))
    assert res.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    "keys,kwargs,rules,rule",
    [
        (["nothere"], {}, RecordLevelRules(), "key_variables"),
        (KEYS, {"household": "nothere"}, RecordLevelRules(k=None, max_individual_risk=None, max_household_risk=0.1),
         "household_risk"),
        (KEYS, {}, RecordLevelRules(k=None, max_individual_risk=None), "rules"),
        (KEYS, {}, RecordLevelRules(k=None, weighted_k=3, max_individual_risk=None), "weighted_k_anonymity"),
    ],
)
def test_check_cannot_decide_is_review(testdata, keys, kwargs, rules, rule):
    res = check_record_level(testdata, keys=keys, rules=rules, **kwargs)
    assert res.verdict is Verdict.REVIEW
    assert any(f.rule == rule and f.verdict is Verdict.REVIEW for f in res.findings)


def test_check_without_weight_in_output_uses_unweighted_risk(testdata):
    rules = RecordLevelRules(k=None, max_individual_risk=0.5)
    extract = testdata.drop("sampling_weight")
    res = check_record_level(extract, keys=["urbrur", "sex"], weight="sampling_weight", rules=rules)
    assert res.verdict is Verdict.PASS and res.findings[0].rule == "weight"
    assert res.report.weight is None and res.report.max_risk == pytest.approx(1 / res.report.combinations.fk.min())


def test_check_empty_and_bad_weights_are_review(testdata):
    assert check_record_level(testdata.head(0), keys=KEYS).verdict is Verdict.REVIEW
    bad = testdata.with_columns(sampling_weight=pl.lit(-1.0))
    res = check_record_level(bad, keys=KEYS, weight="sampling_weight")
    assert res.verdict is Verdict.REVIEW and "positive" in res.findings[0].message


def test_report_bad_input(testdata):
    with pytest.raises(InvalidMicrodataInput, match="'nothere'"):
        risk_report(testdata, keys=["nothere"], progress=False)
    with pytest.raises(InvalidMicrodataInput, match="k must be at least 1"):
        risk_report(testdata, keys=KEYS, k=0, progress=False)
    with pytest.raises(InvalidMicrodataInput, match="no records"):
        risk_report(testdata.head(0), keys=KEYS, progress=False)
    with pytest.raises(InvalidMicrodataInput, match="positive"):
        risk_report(testdata.with_columns(sampling_weight=pl.lit(0)), keys=KEYS, weight="sampling_weight",
                    progress=False)
    with pytest.raises(InvalidMicrodataInput, match="unknown record-level rule"):
        RecordLevelRules.from_mapping({"kk": 3})
