"""Protection recorded in a table's spec and applied by sdc.protect (kernel and service alike)."""
from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pytest

from disclosure_review.sdc import InvalidSpec, TableKind, TableSpec, Verdict, load_preset
from disclosure_review.sdc.enums import ProtectionMethod, SecondaryMethod, Statistic
from disclosure_review.sdc.differencing import OtherOutput, findings_between
from disclosure_review.sdc.protect import deletion_query, evaluate_table
from disclosure_review.sdc.records import state_of_records, traced_records
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


def test_redact_then_round_blanks_small_cells_and_rounds_the_rest(con):
    protected = evaluate_table(con, spec(ProtectionMethod.REDACT_ROUND, base=5), load_preset("acro-default"))
    released = {row[:2]: row[2] for row in protected.cells.iter_rows()}
    assert released[("c", "F")] is None and released[("c", "M")] is None and released[("c", "Total")] is None
    interior = {cell: v for cell, v in released.items() if "Total" not in cell and v is not None}
    assert all(v % 5 == 0 for v in interior.values())
    # Margins are sums of the cells shown: a margin minus the shown cells gives 0, never a redacted cell.
    for sex in ("F", "M"):
        assert released[("Total", sex)] == sum(v for (r, s), v in interior.items() if s == sex)
    assert released[("Total", "Total")] == sum(interior.values())
    assert protected.protection == {"method": "redact_round", "base": 5, "redacted": 3,
                                    "note": "cells failing a check are blank; totals are sums of the rounded cells "
                                            "shown"}
    assert protected.report.result("threshold").verdict is Verdict.PASS  # every failing cell is redacted
    assert protected.report.result("threshold").code == "excused_all_redacted"
    assert protected.verdict is Verdict.PASS


def test_redact_then_round_margins_hold_only_the_records_of_the_cells_shown(con):
    """Differencing sees a redact-then-round margin as what it releases: an attacker's 'everyone' total minus
    this table's total gives region c's 3 records back, so the two totals must differ on exactly those."""
    acro = load_preset("acro-default")
    protected = evaluate_table(con, spec(ProtectionMethod.REDACT_ROUND, base=5), acro)
    assert sorted(protected.left_out.rows()) == [("c", "F"), ("c", "M")]
    traced = "SELECT *, i AS sdc_record FROM data"
    redacted = state_of_records(protected.shadow, traced_records(con, protected.shadow.spec, traced, protected.left_out),
                                "d", acro.threshold, protected.held_records)
    labels = protected.shadow.labels()
    everyone = evaluate_table(con, spec(None), acro)
    whole = state_of_records(everyone.shadow, traced_records(con, everyone.shadow.spec, traced), "d", acro.threshold)
    total = labels.index(("Total", "Total"))
    [finding] = [f for f in findings_between(redacted, OtherOutput("everyone", whole), acro.threshold)
                 if f.cell == f.other_cell == ("Total", "Total")]
    assert finding.exact and finding.records == 3
    assert redacted.counts[total] == 55 and whole.counts[total] == 58  # a 30, b 25: c's 3 are in no released cell


def test_redact_then_round_takes_the_preset_base_and_round_trips_in_the_spec(con):
    declared = spec(ProtectionMethod.REDACT_ROUND)
    assert TableSpec.from_dict(declared.to_dict()) == declared
    acro = load_preset("acro-default")
    assert evaluate_table(con, declared, acro).protection["base"] == acro.round_base
    with pytest.raises(InvalidSpec, match="sets no round_base"):
        evaluate_table(con, declared, load_preset("jp-onsite"))
    with pytest.raises(InvalidSpec, match="only with method 'round' or 'redact_round'"):
        Protection(ProtectionMethod.SUPPRESS, base=5)


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


# -- several variables on one side: the margins are those of the rows and columns taken together


def nested(method: ProtectionMethod | None, rows=("region", "sex"), columns=(), **kwargs) -> TableSpec:
    protection = None if method is None else Protection(method, **kwargs)
    return TableSpec(TableKind.FREQUENCY, "SELECT *, CASE WHEN i % 3 = 0 THEN 'x' ELSE 'y' END AS grp FROM data",
                     rows=rows, columns=columns, protection=protection)


def true_counts(con, *variables: str) -> dict[tuple, int]:
    names = ", ".join(variables)
    query = f"SELECT {names}, count(*) FROM ({nested(None).query}) GROUP BY {names}"
    return {tuple(row[:-1]): row[-1] for row in con.execute(query).fetchall()}


@pytest.mark.parametrize("secondary", list(SecondaryMethod))
def test_two_row_variables_without_columns_are_suppressed_and_audited(con, secondary) -> None:
    rules = load_preset("jp-onsite")
    protected = evaluate_table(con, nested(ProtectionMethod.SUPPRESS, secondary=secondary), rules)
    released = {row[:2]: row[2] for row in protected.cells.iter_rows()}
    assert set(released) == {*true_counts(con, "region", "sex"), ("Total", "Total")}  # no sub-totals added
    assert released[("c", "F")] is None and released[("c", "M")] is None  # 2 and 1 records
    blank = [cell for cell, value in released.items() if value is None]
    assert len(blank) >= 2  # one blank cell would be the total minus the others
    published = {cell: value for cell, value in released.items() if value is not None}
    assert published == {cell: true_counts(con, "region", "sex")[cell] for cell in published if cell != ("Total", "Total")} \
        | {("Total", "Total"): 58}
    # What the blank cells add up to, an intruder reads off the total; each could hold all of it,
    # so none can be told to be under the threshold.
    assert 58 - sum(v for cell, v in published.items() if cell != ("Total", "Total")) >= rules.threshold
    audit = protected.protection["audit"]
    assert audit["verdict"] == "pass" and len(audit["cells"]) == len(blank)
    assert {(c["key"]["region"], c["key"]["sex"]) for c in audit["cells"]} == set(blank)
    assert protected.report.result("interval_audit").verdict is Verdict.PASS
    assert protected.verdict is Verdict.PASS


def test_two_row_variables_with_a_recomputable_pattern_fail_the_audit_named_by_variable(con) -> None:
    """Suppressing only the small cells of a one-axis table leaves their sum known: both are under 3 < 10."""
    from disclosure_review.sdc.protect import _linked
    from disclosure_review.sdc.protection import ProtectionLevels, audit

    shadow = evaluate_table(con, nested(None), load_preset("jp-onsite")).shadow
    pattern = np.array([label in {("c", "F"), ("c", "M")} for label in shadow.labels()])
    linked = _linked(shadow, pattern)
    report = audit(linked.table, pattern[np.argsort(linked.positions)], ProtectionLevels.threshold(linked.table, 10))
    assert report.verdict is Verdict.FAIL
    facts = linked.audit_facts(report)
    assert {(c["key"]["region"], c["key"]["sex"]): (c["low"], c["high"]) for c in facts["cells"]} == {
        ("c", "F"): (0.0, 3.0), ("c", "M"): (0.0, 3.0)}


def test_two_row_variables_are_rounded_with_totals_from_the_rounded_cells(con) -> None:
    protected = evaluate_table(con, nested(ProtectionMethod.ROUND, base=5), load_preset("acro-default"))
    released = {row[:2]: row[2] for row in protected.cells.iter_rows()}
    cells = {cell: v for cell, v in released.items() if cell != ("Total", "Total")}
    assert cells == {cell: 5 * round(n / 5) for cell, n in true_counts(con, "region", "sex").items()}
    assert released[("Total", "Total")] == sum(cells.values()) == 55
    assert protected.verdict is Verdict.REVIEW  # the small cells are only rounded


@pytest.mark.parametrize("method, options", [(ProtectionMethod.SUPPRESS, {}), (ProtectionMethod.ROUND, {"base": 5}),
                                             (ProtectionMethod.DELETE_RECORDS, {})])
def test_two_row_and_two_column_variables_keep_their_margins_consistent(con, method, options) -> None:
    rules = load_preset("acro-default")
    protected = evaluate_table(con, nested(method, rows=("grp", "sex"), columns=("region",), **options), rules)
    released = {row[:3]: row[3] for row in protected.cells.iter_rows()}
    assert not any(cell[0] == "Total" and cell[1] != "Total" for cell in released)  # no sub-total of grp
    rows = {cell[:2] for cell in released if cell[:2] != ("Total", "Total")}
    columns = {cell[2] for cell in released if cell[2] != "Total"}
    for row in rows:  # each published row total is the sum of its cells when they are all published
        parts = [released[(*row, c)] for c in columns]
        if None not in parts and released[(*row, "Total")] is not None:
            assert released[(*row, "Total")] == sum(parts)
    for column in columns:
        parts = [released[(*row, column)] for row in rows]
        if None not in parts and released[("Total", "Total", column)] is not None:
            assert released[("Total", "Total", column)] == sum(parts)
    if method is ProtectionMethod.SUPPRESS:
        assert protected.protection["audit"]["verdict"] == "pass"
        assert all(released[(*row, "c")] is None for row in rows)  # every region c cell has under 10 records
    if method is ProtectionMethod.ROUND:
        assert all(v % 5 == 0 for v in released.values())
        assert released[("Total", "Total", "Total")] == sum(released[(*row, "Total")] for row in rows)
    if method is ProtectionMethod.DELETE_RECORDS:
        kept = [v for cell, v in released.items() if "Total" not in cell and v is not None]
        assert released[("Total", "Total", "Total")] == sum(kept) < 58  # the deleted cells' records are gone


def test_a_missing_level_of_one_row_variable_is_suppressed_and_named_in_the_audit(con) -> None:
    con.execute("INSERT INTO data SELECT 100 + i, 'a', NULL, 1.0 FROM range(3) t(i)")
    protected = evaluate_table(con, nested(ProtectionMethod.SUPPRESS), load_preset("jp-onsite"))
    released = {row[:2]: row[2] for row in protected.cells.iter_rows()}
    assert ("a", None) in released and released[("a", None)] is None
    assert released[("b", None)] is None  # 0 records: an empty cell of the cross product, below the threshold
    audit = protected.protection["audit"]
    assert audit["verdict"] == "pass"
    assert {"region": "a", "sex": "(missing)"} in [c["key"] for c in audit["cells"]]


def test_a_magnitude_table_with_two_column_variables_is_suppressed_by_the_p_percent_rule(con) -> None:
    rules = load_preset("acro-default")
    table = TableSpec(TableKind.MAGNITUDE, nested(None).query, rows=("region",), columns=("sex", "grp"),
                      value="income", statistic=Statistic.SUM, protection=Protection(ProtectionMethod.SUPPRESS))
    protected = evaluate_table(con, table, rules)
    released = {row[:3]: row[3] for row in protected.cells.iter_rows()}
    assert protected.protection["levels"].startswith("p% rule")
    assert all(released[("c", *column)] is None for column in [("F", "x"), ("F", "y"), ("M", "x"), ("M", "y")])
    audit = protected.protection["audit"]
    assert audit["verdict"] == "pass"
    assert all(set(c["key"]) == {"region", "sex", "grp"} for c in audit["cells"])
    assert protected.verdict is Verdict.PASS
