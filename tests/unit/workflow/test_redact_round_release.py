"""Redact-then-round (issue 12) through the service: chosen by a reviewer or declared by the researcher, the
service re-applies it to its own recomputation and releases those cells."""
from __future__ import annotations

import csv
import io

from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from onsite_base.db import transaction

from workflow_factories import protect, status_of, submit, table_output, vote

# survey: region A 30 records, B 25, C 2 (fails the threshold of 10), 57 in all


def released_cells(world, request_id: int) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO((world.settings.egress_dir / str(request_id) / "by_region.csv").read_text())))
    return {r[0]: r[1] for r in rows[1:]}


def approve_twice(world, request_id: int, revision: int = 0) -> None:
    vote(world, request_id, "bob", Decision.APPROVE, revision=revision)
    vote(world, request_id, "carol", Decision.APPROVE, revision=revision)


def test_a_reviewers_redact_then_round_is_what_is_released(world):
    request_id = submit(world, table_output())
    with transaction(world.factory) as s:
        output_id = service.view(s, request_id, "alice").outputs[0].id
    assert protect(world, request_id, output_id, "bob", method="redact_round", base="10").revision == 1
    with transaction(world.factory) as s:
        o = service.view(s, request_id, "carol").outputs[0]
        assert o.verdict is Verdict.PASS and o.report["protection"]["method"] == "redact_round"
        assert o.report["protection"]["redacted"] == 1
    approve_twice(world, request_id, revision=1)
    assert status_of(world, request_id) is ReleaseStatus.RELEASED
    # C is blank, A and B rounded to 10, and the total is theirs: 57 - 30 - 30 would have given C back
    assert released_cells(world, request_id) == {"A": "30", "B": "30", "C": "", "Total": "60"}


def test_a_declared_redact_then_round_is_reapplied_by_the_service(world):
    declared = table_output()
    declared["spec"]["protection"] = {"version": 1, "method": "redact_round", "base": 5}
    request_id = submit(world, declared)
    with transaction(world.factory) as s:
        o = service.view(s, request_id, "bob").outputs[0]
        assert o.verdict is Verdict.PASS and o.report["protection"]["base"] == 5
    approve_twice(world, request_id)
    assert released_cells(world, request_id) == {"A": "30", "B": "25", "C": "", "Total": "55"}


def test_the_cli_names_redact_then_round_and_its_base_as_the_page_does():
    from onsite.commands.review import describe_choice

    choice = {"method": "redact_round", "protection": {"version": 1, "method": "redact_round", "base": 5}}
    assert describe_choice(choice) == "redact failing cells, then round (base 5)"
