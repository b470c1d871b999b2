"""Tracker queries through the real review service (SQLite and PostgreSQL, real DuckDB recomputation): a
release request whose recorded query singles out records gets `review` with the reason in both languages,
whatever the session claimed; the same table without it passes."""
from __future__ import annotations

import pytest
from test_extracts import extract, people  # noqa: F401 (people: the fixture, an ingested dataset)
from workflow_factories import payload, table_output

from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.messages import result_text
from disclosure_review.workflow import service

PASSING = "SELECT * FROM survey WHERE region <> 'C'"


def checked(world, output: dict):
    request = service.submit(world.factory, payload(output), world.researcher)
    output = request.outputs[0]
    results = {r["rule"]: r for r in output.report["results"]}
    return output, results["tracker"]


def test_the_same_table_without_a_tracker_passes(world):
    output, tracker = checked(world, table_output(query=PASSING))
    assert output.verdict is Verdict.PASS and tracker["verdict"] == "pass"
    assert "person_id" in tracker["message"]


@pytest.mark.parametrize(("query", "reason"), [
    # everyone but one person: with the table above, the difference is person 3
    (PASSING + " AND person_id <> 3", "identifying column person_id used in WHERE"),
    ("SELECT region, CASE WHEN person_id = 3 THEN NULL ELSE income END AS income FROM survey "
     "WHERE region <> 'C'", "identifying column person_id used in SELECT"),
    (PASSING + " AND hash(income) % 50 <> 0", "hash function hash() in WHERE"),
    ("SELECT * FROM (SELECT * FROM survey WHERE region <> 'C' LIMIT 54)", "LIMIT without aggregation"),
    ("SELECT * FROM survey WHERE region <> 'C' QUALIFY row_number() OVER (ORDER BY income) > 1",
     "window function row_number() over individual records in QUALIFY"),
])
def test_a_tracker_query_goes_to_review_with_its_reason(world, query, reason):
    claimed = {"verdict": "pass"}  # what the kernel says is never used
    output, tracker = checked(world, table_output(query=query, claimed=claimed))
    assert output.verified and output.verdict is Verdict.REVIEW
    assert tracker["verdict"] == "review" and tracker["code"] == "tracker_review"
    assert tracker["message"].endswith(reason)
    assert "トラッカー" in result_text(tracker, "ja")
    assert any(m["claimed"] == "pass" and m["recomputed"] == "review" for m in output.mismatch)


def test_a_tracker_extract_goes_to_review(people):
    output, tracker = checked(people, extract("sample", "SELECT region, sex, age_group FROM people USING SAMPLE 20"))
    assert output.verdict is not Verdict.PASS
    assert tracker["verdict"] == "review" and tracker["message"].endswith("sampling (USING SAMPLE)")
    assert result_text(tracker, "ja").endswith("標本抽出(USING SAMPLE)")
