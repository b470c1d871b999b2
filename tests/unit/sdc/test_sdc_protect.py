"""Protection recorded in a table's spec and applied by sdc.protect (kernel and service alike)."""
from __future__ import annotations

import dataclasses

import duckdb
import pytest

from disclosure_review.sdc import InvalidSpec, TableKind, TableSpec, Verdict, load_preset
from disclosure_review.sdc.enums import ProtectionMethod, SecondaryMethod, Statistic
from disclosure_review.sdc.protect import deletion_query, evaluate_table
from disclosure_review.sdc.spec import Protection

# region a: 30 records, b: 25, c: 3 (the small cell); sex alternates; income = 10 * i
DATA = """CREATE TABLE data AS SELECT i, CASE WHEN i < 30 THEN 'a' WHEN i < 55 THEN 'b' ELSE 'c' END AS region,
          CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex, 10.0 * i AS income FROM range(58) t(i)"""


@pytest.fixture
def con():
    connection = duckdb.connect(":memory:")
    connection.execute(DATA)
    yield connection
    connection.close()


def spec(method: ProtectionMethod | None, **kwargs) -> TableSpec:
    protection = None if method is None else Protection(method, **kwargs)
    return TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("region",), columns=("sex",), protection=protection)


@pytest.mark.parametrize("protection, message", [
    ({"version": 1, "method": "blur"}, "protection method must be one of"),
    ({"version": 2, "method": "suppress"}, "version 2 is not supported"),
    ({"version": 1, "method": "suppress", "extra": 1}, r"unknown key\(s\) \['extra'\]"),
    ({"version": 1, "method": "round", "base": 0}, "whole number from 1"),
    ({"version": 1, "method": "round", "base": 2.5}, "whole number from 1"),
    ({"version": 1, "method": "suppress", "base": 5}, "only with method 'round'"),
    ({"version": 1, "method": "round", "secondary": "optimal"}, "only with method 'suppress'"),
    ("suppress", "JSON object"),
])
def test_bad_protection_is_refused_with_the_reason(protection, message) -> None:
    data = spec(None).to_dict() | {"protection": protection}
    with pytest.raises(InvalidSpec, match=message):
        TableSpec.from_dict(data)


def test_protection_round_trips_and_means_cannot_be_protected() -> None:
    protected = spec(ProtectionMethod.SUPPRESS, secondary=SecondaryMethod.OPTIMAL)
    assert TableSpec.from_dict(protected.to_dict()) == protected
    with pytest.raises(InvalidSpec, match="only counts and sums"):
        TableSpec(TableKind.MAGNITUDE, "SELECT * FROM data", rows=("region",), value="income",
                  statistic=Statistic.MEAN, protection=Protection(ProtectionMethod.SUPPRESS))


@pytest.mark.parametrize("secondary", list(SecondaryMethod))
def test_suppression_under_jp_onsite_reaches_the_threshold(con, secondary) -> None:
    rules = load_preset("jp-onsite")
    assert rules.interval_audit and rules.threshold == 10
    plain = evaluate_table(con, spec(None), rules)
    assert plain.verdict is Verdict.FAIL
    protected = evaluate_table(con, spec(ProtectionMethod.SUPPRESS, secondary=secondary), rules)
    released = {row[:2]: row[2] for row in protected.cells.iter_rows()}
    small = {("c", "F"), ("c", "M"), ("c", "Total")}
    assert all(released[cell] is None for cell in small)
    audit = protected.protection["audit"]
    assert audit["verdict"] == "pass"
    for cell in audit["cells"]:
        if cell["primary"]:  # the intruder cannot tell the cell was under 10 (threshold level)
            assert cell["high"] >= 10 - 1e-9 and cell["low"] <= max(cell["value"] - 1, 0)
    assert protected.report.result("interval_audit").verdict is Verdict.PASS
    assert protected.report.result("threshold").verdict is Verdict.PASS  # its cells are all suppressed
    # Published cells are the true counts: a published margin minus published cells never gives a small one.
    assert released[("a", "F")] == 15 and released[("Total", "Total")] == 58


def test_rounding_blurs_failing_cells_into_review(con) -> None:
    protected = evaluate_table(con, spec(ProtectionMethod.ROUND, base=5), load_preset("acro-default"))
    released = {row[:2]: row[2] for row in protected.cells.iter_rows()}
    assert released[("c", "F")] == 0 and released[("c", "M")] == 0  # 2 and 1 round to 0
    assert released[("a", "Total")] == 30 and released[("b", "F")] == 15  # b F: 13 -> 15
    assert released[("Total", "Total")] == sum(v for (r, s), v in released.items() if "Total" not in (r, s))
    assert protected.verdict is Verdict.REVIEW


def test_record_deletion_recomputes_without_the_failing_cells(con) -> None:
    rules = load_preset("acro-default")
    protected = evaluate_table(con, spec(ProtectionMethod.DELETE_RECORDS), rules)
    released = {row[:2]: row[2] for row in protected.cells.iter_rows()}
    kept = con.execute("SELECT count(*) FROM data WHERE region <> 'c'").fetchall()[0][0]
    assert released[("Total", "Total")] == kept == 55
    by_sex = dict(con.execute("SELECT sex, count(*) FROM data WHERE region <> 'c' GROUP BY sex").fetchall())
    assert released[("Total", "F")] == by_sex["F"] and released[("Total", "M")] == by_sex["M"]
    assert protected.verdict is Verdict.PASS
    assert protected.protection["deleted_cells"] == [["c", "F"], ["c", "M"]]


def test_deletion_query_quotes_levels_and_matches_missing_ones(con) -> None:
    con.execute("INSERT INTO data VALUES (100, NULL, 'F', 1.0), (101, 'o''k', 'M', 1.0)")
    query = deletion_query(spec(None), [(None, "F"), ("o'k", "M")])
    assert con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0] == 58
    with pytest.raises(InvalidSpec, match="histograms"):
        hist = TableSpec(TableKind.FREQUENCY, "SELECT * FROM data", rows=("income",), edges=(0.0, 5.0, 600.0),
                         protection=Protection(ProtectionMethod.DELETE_RECORDS))
        evaluate_table(con, dataclasses.replace(hist), load_preset("acro-default"))
