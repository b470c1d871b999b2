"""TableSpec: versioned JSON round trip and strict refusal of bad specs."""
from __future__ import annotations

import json

import pytest

from disclosure_review.sdc import InvalidSpec, Statistic, TableKind, TableSpec, Verdict


def magnitude() -> TableSpec:
    return TableSpec(TableKind.MAGNITUDE, "SELECT * FROM survey", rows=("pref",), columns=("sex",),
                     value="income", statistic=Statistic.MEAN, weight="w", unit="household_id", name="mean_income")


def test_round_trip_through_json() -> None:
    spec = magnitude()
    again = TableSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert spec.to_dict()["version"] == 1 and spec.to_dict()["statistic"] == "mean"


def test_frequency_defaults_statistic_count() -> None:
    spec = TableSpec.from_dict({"version": 1, "name": "t", "kind": "frequency", "query": "SELECT 1 AS a", "rows": ["a"]})
    assert spec.statistic is Statistic.COUNT and spec.columns == ()


def test_trailing_semicolon_is_dropped() -> None:
    assert TableSpec(TableKind.FREQUENCY, "SELECT 1 AS a;  ", rows=("a",)).query == "SELECT 1 AS a"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unknown key"),
        ({"version": 2}, "version"),
        ({"kind": "pie"}, "kind 'pie'"),
        ({"statistic": "geomean"}, "statistic 'geomean'"),
        ({"rows": ['pref" FROM x; --']}, "not a variable name"),
        ({"rows": "pref"}, "must be a list"),
        ({"rows": [], "columns": []}, "at least one row or column"),
        ({"rows": ["sdc_records"]}, "reserved"),
        ({"value": None}, "needs a value"),
        ({"statistic": "count"}, "other than 'count'"),
        ({"statistic": "median"}, "cannot be weighted"),
        ({"unit": "pref"}, "used twice"),
        ({"name": "../etc/passwd"}, "file name"),
        ({"query": "SELECT 1; DROP TABLE survey"}, "exactly one SELECT"),
        ({"query": "DELETE FROM survey"}, "exactly one SELECT"),
        ({"query": "SELEC oops"}, "not valid SQL"),
        ({"query": "  "}, "non-empty"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(change: dict, message: str) -> None:
    data = magnitude().to_dict() | change
    with pytest.raises(InvalidSpec, match=message):
        TableSpec.from_dict(data)


@pytest.mark.parametrize("key", ["version", "name", "kind", "query", "rows"])
def test_missing_fields_are_refused(key: str) -> None:
    data = magnitude().to_dict()
    del data[key]
    with pytest.raises(InvalidSpec, match="lacks"):
        TableSpec.from_dict(data)


def test_frequency_table_refuses_a_value() -> None:
    with pytest.raises(InvalidSpec, match="counts records"):
        TableSpec(TableKind.FREQUENCY, "SELECT 1 AS a, 2 AS b", rows=("a",), value="b")


def test_japanese_variable_names_are_identifiers() -> None:
    assert TableSpec(TableKind.FREQUENCY, "SELECT 1 AS 都道府県", rows=("都道府県",)).rows == ("都道府県",)


@pytest.mark.parametrize(
    ("verdicts", "combined"),
    [
        ([], Verdict.REVIEW),
        ([Verdict.PASS], Verdict.PASS),
        ([Verdict.PASS, Verdict.REVIEW], Verdict.REVIEW),
        ([Verdict.REVIEW, Verdict.FAIL, Verdict.PASS], Verdict.FAIL),
    ],
)
def test_verdict_combination(verdicts: list[Verdict], combined: Verdict) -> None:
    assert Verdict.combine(verdicts) is combined
