"""The session's claimed shadow is compared with the recomputation cell by cell; margins are matched by their
GROUPING bits, so a level named "Total" is not mistaken for the margin (a false "claim differs")."""
from __future__ import annotations

import duckdb

from disclosure_review.sdc import TableKind, TableSpec, compute_shadow
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow.recompute import compare_claimed

REGIONS = "SELECT * FROM (VALUES ('A'), ('Total'), ('Total'), (NULL), ('B')) t(region)"


def shadow(query: str):
    con = duckdb.connect(":memory:")
    try:
        return compute_shadow(con, TableSpec(TableKind.FREQUENCY, query, rows=("region",)))
    finally:
        con.close()


def test_a_true_claim_about_a_level_named_total_matches():
    ours = shadow(REGIONS)
    assert compare_claimed(ours.to_dict() | {"verdict": "pass"}, ours, Verdict.PASS) == []


def test_a_false_claim_about_it_is_found():
    ours = shadow(REGIONS)
    forged = shadow(REGIONS.replace("('Total'), ('Total')", "('Total')"))  # one record fewer in 'Total'
    found = compare_claimed(forged.to_dict() | {"verdict": "pass"}, ours, Verdict.PASS)
    assert {(d["args"]["cell"], d["claimed"], d["recomputed"]) for d in found if "cell" in d.get("args", {})} >= {
        ("Total", 1, 2), ("[Total]", 4, 5)}
