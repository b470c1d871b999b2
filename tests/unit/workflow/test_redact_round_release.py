"""Redact-then-round (issue 12) through the service: chosen by a reviewer or declared by the researcher, the
service re-applies it to its own recomputation and releases those cells."""
from __future__ import annotations

import csv
import io

import pytest

from access_control.models import Project
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.exceptions import VoteInvalid
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


def redact_round(output: dict, base: int = 5) -> dict:
    output["spec"]["protection"] = {"version": 1, "method": "redact_round", "base": base}
    return output


@pytest.fixture
def strict(world):
    """The project under jp-onsite: differencing fails (acro-default sends it to review)."""
    with transaction(world.factory) as s:
        s.get(Project, world.project).preset = "jp-onsite"
    return world


def test_attack_a_redacted_cell_recovered_from_another_outputs_total_is_refused(strict):
    # by_region released redact-then-round: A 30, B 25, C blank, Total 55 (the cells shown). Everyone by sex
    # has a total of 57: 57 - 55 gives region C's 2 people back unless the service sees that its total holds
    # 2 records the released 55 does not.
    first = submit(strict, redact_round(table_output()))
    approve_twice(strict, first)
    assert released_cells(strict, first) == {"A": "30", "B": "25", "C": "", "Total": "55"}
    second = submit(strict, table_output(name="by_sex", rows=("sex",)))
    with transaction(strict.factory) as s:
        [by_sex] = service.view(s, second, "bob").outputs
        [differencing] = [r for r in by_sex.report["results"] if r["rule"] == "differencing"]
    assert by_sex.verdict is Verdict.FAIL and differencing["verdict"] == "fail"
    assert f"cell Total of 'by_sex' and cell Total of '#{first} by_region' differ on 2 records" in differencing["message"]
    vote(strict, second, "bob", Decision.APPROVE, override_reason="judged safe", comment="judged safe")
    with pytest.raises(VoteInvalid, match=f"'#{first} by_region'"):
        vote(strict, second, "carol", Decision.APPROVE, override_reason="judged safe", comment="judged safe")
    assert not (strict.settings.egress_dir / str(second)).exists()  # 57 - 55 is never released


def test_the_same_total_over_the_cells_shown_is_not_flagged(strict):
    # everyone but region C, by sex: its total is the 55 records the redacted table's total holds, nothing more
    first = submit(strict, redact_round(table_output()))
    approve_twice(strict, first)
    second = submit(strict, table_output(name="by_sex", query="SELECT * FROM survey WHERE region <> 'C'",
                                         rows=("sex",)))
    with transaction(strict.factory) as s:
        [by_sex] = service.view(s, second, "bob").outputs
    assert by_sex.verdict is Verdict.PASS


@pytest.mark.parametrize("method", ["redact_round", "delete_records"])
def test_a_protected_total_is_compared_by_the_records_it_releases(strict, method):
    # the same attack on a table whose small cell's records were deleted (its total counts A and B only): caught,
    # where it used to go to review as "not compared"; a total over A and B exactly is not flagged
    protection = {"version": 1, "method": method} | ({"base": 5} if method == "redact_round" else {})
    first_output = table_output()
    first_output["spec"]["protection"] = protection
    first = submit(strict, first_output)
    approve_twice(strict, first)
    shown = released_cells(strict, first)
    assert shown == {"A": "30", "B": "25", "Total": "55"} | ({"C": ""} if method == "redact_round" else {})
    second = submit(strict, table_output(name="everyone", rows=("sex",)),
                    table_output(name="a_and_b", query="SELECT * FROM survey WHERE region <> 'C'", rows=("sex",)))
    with transaction(strict.factory) as s:
        everyone, a_and_b = service.view(s, second, "bob").outputs
        found = {o.name: [r for r in o.report["results"] if r["rule"] == "differencing"][0] for o in (everyone, a_and_b)}
    assert f"cell Total of 'everyone' and cell Total of '#{first} by_region' differ on 2 records" \
        in found["everyone"]["message"]
    assert f"#{first} by_region" not in found["a_and_b"]["message"]
