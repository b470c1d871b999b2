"""The levels a reviewer may merge: read from the released view, margins known by its structure (the grand total is
its last row), never by the text "Total", which a level can hold."""
from __future__ import annotations

import duckdb
import pytest

from disclosure_review.sdc import TableKind, TableSpec, compute_shadow
from disclosure_review.workflow.exceptions import ProtectionInvalid
from disclosure_review.workflow.protection import check_merged, dimension_levels, parse_choice, protected_spec


def released(query: str) -> dict:
    """A table by region as the service stores it recomputed: its released view's columns and rows."""
    con = duckdb.connect(":memory:")
    view = compute_shadow(con, TableSpec(TableKind.FREQUENCY, query, rows=("region",))).released_view()
    con.close()
    return {"columns": view.columns, "rows": [list(row) for row in view.iter_rows()]}


REGIONS = "SELECT * FROM (VALUES ('A'), ('Total'), ('Total'), (NULL), ('B')) t(region)"


def test_a_level_named_total_can_be_merged_and_the_margin_cannot():
    view = released(REGIONS)
    assert [row[0] for row in view["rows"]] == ["A", "B", "Total", None, "[Total]"]
    assert dimension_levels(view, ["region"]) == {"region": ["A", "B", "Total"]}
    submitted = TableSpec(TableKind.FREQUENCY, REGIONS, rows=("region",))
    levels = dimension_levels(view, ["region"])
    merged = protected_spec(submitted, parse_choice("none", merge_variable="region", merge_levels="Total\nB",
                                                    merge_label="Other"), levels)
    check_merged(released(merged.query), parse_choice("none", merge_variable="region", merge_levels="Total\nB",
                                                      merge_label="Other").merge)
    with pytest.raises(ProtectionInvalid, match=r"\[Total\]: not a level of region"):
        protected_spec(submitted, parse_choice("none", merge_variable="region", merge_levels="[Total]\nA",
                                               merge_label="Other"), levels)


def test_an_empty_view_has_no_levels():
    assert dimension_levels(None, ["region"]) == {"region": []}
    assert dimension_levels({"columns": ["region", "count"], "rows": []}, ["region"]) == {"region": []}
