"""Margins are known by how the service computed them (GROUPING SETS), never by their label: data whose category
is literally "Total", or missing (NULL), get the verdicts, differencing and protection of any other level."""
from __future__ import annotations

import duckdb
import polars as pl
import pytest

from disclosure_review.sdc import MARGIN_LABEL, TableKind, TableSpec, Verdict, compute_shadow, load_preset
from disclosure_review.sdc.differencing import OtherOutput, check_differencing, released_population
from disclosure_review.sdc.enums import ProtectionMethod, SecondaryMethod
from disclosure_review.sdc.protect import evaluate_table
from disclosure_review.sdc.records import RecordState, state_of_records, traced_records
from disclosure_review.sdc.shadow import margin_label_for
from disclosure_review.sdc.spec import Protection

JP = load_preset("jp-onsite")  # threshold 10, differencing fails

# 60 people: id 0-19 in region 'Total' (a real category), 20-39 in 'A', 40-59 missing (NULL); sex alternates.
DATA = """CREATE TABLE people AS SELECT i AS id,
          CASE WHEN i < 20 THEN 'Total' WHEN i < 40 THEN 'A' END AS region,
          CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex FROM range(60) t(i)"""


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect(":memory:")
    connection.execute(DATA)
    yield connection
    connection.close()


def spec(where: str = "true", protection: Protection | None = None, name: str = "t", rows=("region",)) -> TableSpec:
    return TableSpec(TableKind.FREQUENCY, f"SELECT * FROM people WHERE {where}", rows=rows, name=name,
                     protection=protection)


def state(con, where: str, name: str, rows=("region",)) -> RecordState:
    """The table's record state, rows traced by `id` as the service traces them by the file's row id."""
    table = spec(where, name=name, rows=rows)
    traced = f"SELECT *, id AS sdc_record FROM ({table.query}) AS q"
    return state_of_records(compute_shadow(con, table), traced_records(con, table, traced), "people", JP.threshold)


def released(protected) -> dict:
    view = protected.cells
    return dict(zip(view.get_column("region").to_list(), view.get_column(view.columns[-1]).to_list()))


def grand_total(protected) -> str:
    return protected.shadow.labels()[-1][0]  # the frame's last row


def test_the_margin_label_never_equals_a_level():
    assert margin_label_for(["A", None]) == MARGIN_LABEL
    assert margin_label_for(["Total", "[Total]"]) == "[[Total]]"


def test_a_category_named_total_is_a_cell_and_the_margin_keeps_its_own_key(con):
    # region 'Total' holds 3 people: it fails the threshold; the margin (23 people) passes
    table = evaluate_table(con, spec("id < 3 OR id BETWEEN 20 AND 39"), JP)
    labels = table.shadow.labels()
    assert len(set(labels)) == len(labels)  # one key per cell
    margin = table.shadow.margin_label
    assert margin != "Total" and labels[-1] == (margin,)
    verdicts = table.report.cell_verdicts()
    assert verdicts[("Total",)] is Verdict.FAIL and (margin,) not in verdicts
    assert released(table) == {"A": 20, "Total": 3, margin: 23}


def test_a_missing_level_is_a_cell_of_its_own(con):
    table = evaluate_table(con, spec("id BETWEEN 20 AND 42"), JP)  # A: 20, missing: 3
    assert table.shadow.labels()[-1] == (MARGIN_LABEL,)  # the grand total, labelled as usual
    assert table.report.result("threshold").cells == ((None,),)
    assert released(table) == {"A": 20, None: 3, MARGIN_LABEL: 23}


@pytest.mark.parametrize("small", ["id < 3", "id >= 57"])  # three people in 'Total', or three missing
def test_redact_then_round_blanks_the_small_category_not_the_margin(con, small):
    table = evaluate_table(con, spec(f"{small} OR id BETWEEN 20 AND 39",
                                     Protection(ProtectionMethod.REDACT_ROUND, base=5)), JP)
    cells = released(table)
    small_key = "Total" if small == "id < 3" else None
    assert cells[small_key] is None and cells["A"] == 20
    assert cells[grand_total(table)] == 20  # the sum of the cells shown: 3 is not given back
    assert table.verdict is Verdict.PASS


@pytest.mark.parametrize("secondary", [SecondaryMethod.HYPERCUBE, SecondaryMethod.OPTIMAL])
def test_suppression_protects_the_category_named_total_and_publishes_the_margin(con, secondary):
    table = evaluate_table(con, spec("id < 3 OR id >= 20", Protection(ProtectionMethod.SUPPRESS, secondary=secondary)),
                           JP)
    cells = released(table)
    assert cells["Total"] is None and cells[grand_total(table)] == 43  # the category is blank, the margin is not
    assert sum(v is None for v in cells.values()) == 2  # and one secondary cell, so 43 - shown does not give 3
    assert table.report.result("interval_audit").verdict is Verdict.PASS


def test_a_sum_of_two_tables_with_a_category_named_total_is_caught(con):
    # everyone (60) minus the totals of two tables over 0-29 and 30-57 leaves people 58 and 59
    first = state(con, "id < 30", "first")  # region 'Total' 20, 'A' 10: its own margin is 30
    second = state(con, "id BETWEEN 30 AND 57", "second")  # 'A' 10, missing 18
    assert released_population("first", first).count == 30  # the grand total, not the category 'Total'
    everyone = state(con, "true", "everyone", rows=("sex",))
    result = check_differencing(everyone, "everyone", [OtherOutput("#1 first", first), OtherOutput("#2 second", second)],
                                JP)
    assert result.verdict is Verdict.FAIL
    assert result.cells == ((MARGIN_LABEL,),)
    assert "leaves 2 records" in result.message


def test_stored_states_keep_which_cells_are_margins(con):
    first = state(con, "id < 30", "first")
    again = RecordState.from_bytes(first.to_bytes())
    assert released_population("first", again).count == 30
    assert pl.Series(again.grouping).to_list() == pl.Series(first.grouping).to_list() == [0, 0, 1]
