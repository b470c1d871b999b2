"""Disclosure between outputs through the review service (#12), on SQLite and PostgreSQL: every table is compared,
by its records, with every output of the project — the other tables of its request, pending requests, approved and
released ones — and approval re-checks against what was approved since. Each attack is the researcher's: two
outputs whose difference is one person."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from workflow_factories import status_of, submit, table_output, vote

from access_control.models import Project
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.exceptions import VoteInvalid
from disclosure_review.workflow.store import ReleaseOutput
from onsite_base.db import transaction

# Regions A (30 records) and B (25): every cell passes the threshold of 10 on its own.
EVERYONE = "SELECT * FROM survey WHERE region <> 'C'"
# The same but person 5 (region A), singled out by a value rather than an identifier.
BUT_ONE = "SELECT * FROM survey WHERE region <> 'C' AND income <> 500"
ZEROED = ("SELECT region, sex, CASE WHEN income = 500 THEN 0 ELSE income END AS income FROM survey "
          "WHERE region <> 'C'")
NULLED = ("SELECT region, sex, CASE WHEN income = 500 THEN NULL ELSE income END AS income FROM survey "
          "WHERE region <> 'C'")


@pytest.fixture
def strict(world):
    """The project under jp-onsite: differencing fails (acro-default sends it to review)."""
    with transaction(world.factory) as s:
        s.get(Project, world.project).preset = "jp-onsite"
    return world


def sums(name: str, query: str) -> dict:
    output = table_output(name=name, query=query, rows=("region",))
    output["spec"] |= {"kind": "magnitude", "value": "income", "statistic": "sum"}
    return output


def outputs(world, request_id: int) -> list[ReleaseOutput]:
    with transaction(world.factory) as s:
        found = service.view(s, request_id, "bob").outputs
        s.expunge_all()
        return found


def differencing(output: ReleaseOutput) -> dict:
    [result] = [r for r in output.report["results"] if r["rule"] == "differencing"]
    return result


def approve(world, request_id: int, position: int = 0, **reasons) -> ReleaseStatus:
    for reviewer in world.reviewers:
        vote(world, request_id, reviewer, Decision.APPROVE, position, **reasons)
    return status_of(world, request_id)


OVERRIDE = {"override_reason": "judged safe", "comment": "judged safe"}


def test_attack_two_tables_of_one_request_differing_by_one_person_both_fail(strict):
    request_id = submit(strict, table_output(name="everyone", query=EVERYONE),
                        table_output(name="but_one", query=BUT_ONE))
    everyone, but_one = outputs(strict, request_id)
    for output, other in ((everyone, "but_one"), (but_one, "everyone")):
        result = differencing(output)
        assert output.verdict is Verdict.FAIL and result["verdict"] == "fail"
        assert f"cell A of {output.name!r} and cell A of {other!r} differ on 1 records" in result["message"]
        assert ["A"] in result["cells"] and ["Total"] in result["cells"]


def test_attack_two_pending_requests_approved_in_turn_the_second_approval_is_refused(strict):
    first = submit(strict, table_output(name="everyone", query=EVERYONE))
    second = submit(strict, table_output(name="but_one", query=BUT_ONE))
    assert outputs(strict, first)[0].verdict is Verdict.PASS  # nothing to compare with when it came
    [but_one] = outputs(strict, second)
    assert but_one.verdict is Verdict.FAIL and f"'#{first} everyone'" in differencing(but_one)["message"]
    # the later one approved first (a reviewer overrides its finding: the other is only pending) ...
    assert approve(strict, second, **OVERRIDE) is ReleaseStatus.RELEASED
    # ... then the earlier one, which passed when checked: the approval that completes it is re-checked
    vote(strict, first, "bob", Decision.APPROVE)
    with pytest.raises(VoteInvalid, match=rf"approving output everyone would disclose.*'#{second} but_one'") as refused:
        vote(strict, first, "carol", Decision.APPROVE)
    assert refused.value.key == "discloses_with_approved" and refused.value.params["output"] == "everyone"
    assert status_of(strict, first) is not ReleaseStatus.RELEASED
    with transaction(strict.factory) as s:
        assert [v.reviewer for v in s.get(ReleaseOutput, outputs(strict, first)[0].id).votes] == ["bob"]


def test_attack_the_second_request_approved_after_the_first_is_released_is_refused_even_overridden(strict):
    first = submit(strict, table_output(name="everyone", query=EVERYONE))
    assert approve(strict, first) is ReleaseStatus.RELEASED
    second = submit(strict, table_output(name="but_one", query=BUT_ONE))
    vote(strict, second, "bob", Decision.APPROVE, **OVERRIDE)
    with pytest.raises(VoteInvalid, match=rf"'#{first} everyone'"):
        vote(strict, second, "carol", Decision.APPROVE, **OVERRIDE)


@pytest.mark.parametrize("query", [ZEROED, NULLED], ids=["zero", "null"])
def test_attack_one_value_changed_in_the_recorded_sql_is_caught(strict, query):
    first = submit(strict, sums("income", EVERYONE))
    assert approve(strict, first, comment="sums of 25 and more") is ReleaseStatus.RELEASED
    second = submit(strict, sums("income_changed", query))
    [changed] = outputs(strict, second)
    result = differencing(changed)
    assert changed.verdict is Verdict.FAIL and result["verdict"] == "fail"
    assert f"cell A of 'income_changed' and cell A of '#{first} income' differ on 1 records" in result["message"]


def by_sex(name: str, where: str) -> dict:
    return table_output(name=name, query=f"SELECT * FROM survey WHERE {where}", rows=("sex",))


def test_attack_everyone_minus_two_regions_released_apart_reveals_the_third_is_caught(strict):
    # everyone (57), region A (30) and region B (25) by sex: everyone minus A minus B is region C's 2 people.
    # No two of the three differ on fewer than 10 records: only the sum finds it.
    first = submit(strict, by_sex("everyone", "true"), by_sex("region_a", "region = 'A'"))
    assert [o.verdict for o in outputs(strict, first)] == [Verdict.PASS, Verdict.PASS]
    approve(strict, first, 0)
    assert approve(strict, first, 1) is ReleaseStatus.RELEASED
    second = submit(strict, by_sex("region_b", "region = 'B'"))
    [region_b] = outputs(strict, second)
    result = differencing(region_b)
    assert region_b.verdict is Verdict.FAIL and result["verdict"] == "fail"
    assert (f"cell Total of '#{first} everyone' minus the total of 'region_b' and the total of '#{first} region_a' "
            "leaves 2 records") in result["message"]
    # a reviewer's override does not carry the approval: what was released with it would disclose
    vote(strict, second, "bob", Decision.APPROVE, **OVERRIDE)
    with pytest.raises(VoteInvalid, match=rf"approving output region_b would disclose.*'#{first} everyone'"):
        vote(strict, second, "carol", Decision.APPROVE, **OVERRIDE)


def test_two_regions_released_apart_and_together_with_nothing_left_over_are_not_flagged(strict):
    first = submit(strict, by_sex("a_and_b", "region <> 'C'"), by_sex("region_a", "region = 'A'"),
                   by_sex("region_b", "region = 'B'"))
    assert [o.verdict for o in outputs(strict, first)] == [Verdict.PASS] * 3  # A + B is exactly A and B


def test_two_tables_over_unrelated_populations_are_not_flagged_whatever_their_labels(strict):
    first = submit(strict, table_output(name="sex_in_a", query="SELECT * FROM survey WHERE region = 'A'",
                                        rows=("sex",)))
    assert approve(strict, first) is ReleaseStatus.RELEASED
    second = submit(strict, table_output(name="sex_in_b", query="SELECT * FROM survey WHERE region = 'B'",
                                         rows=("sex",)))
    [sex_in_b] = outputs(strict, second)
    result = differencing(sex_in_b)  # F: 15 vs 12, M: 15 vs 13 records, but no record in common
    assert result["verdict"] == "pass" and sex_in_b.verdict is Verdict.PASS
    assert approve(strict, second) is ReleaseStatus.RELEASED


def test_the_record_state_is_stored_and_never_released(strict):
    request_id = submit(strict, table_output(name="everyone", query=EVERYONE))
    with transaction(strict.factory) as s:
        stored = s.scalars(select(ReleaseOutput.record_state)).one()
    assert stored and len(stored) / 9 < 1024  # 3 x 3 cells with margins
    assert approve(strict, request_id) is ReleaseStatus.RELEASED
    package = (strict.settings.egress_dir / str(request_id))
    assert sorted(p.name for p in package.iterdir()) == ["everyone.csv", "manifest.json", "manifest.sig"]
    assert b"sdc_record" not in (package / "manifest.json").read_bytes()


def test_the_refusal_reads_in_japanese_and_english(strict):
    from review_service.i18n import translator
    from disclosure_review.workflow import messages

    first = submit(strict, table_output(name="everyone", query=EVERYONE))
    assert approve(strict, first) is ReleaseStatus.RELEASED
    second = submit(strict, table_output(name="but_one", query=BUT_ONE))
    vote(strict, second, "bob", Decision.APPROVE, **OVERRIDE)
    with pytest.raises(VoteInvalid) as refused:
        vote(strict, second, "carol", Decision.APPROVE, **OVERRIDE)
    params = refused.value.params
    for lang, words in (("ja", "承認すると"), ("en", "Approving output but_one")):
        text = translator(lang)("err_discloses_with_approved", output=params["output"],
                                findings=messages.text(params["findings"], lang))
        assert words in text and f"#{first} everyone" in text


def test_migration_wf0007_adds_the_record_state_and_downgrades(database_at):
    from alembic import command
    from sqlalchemy import inspect

    url, cfg, engine = database_at("wf0006")
    command.upgrade(cfg, "wf0007")
    assert "record_state" in {c["name"] for c in inspect(engine).get_columns("release_output")}
    command.downgrade(cfg, "wf0006")
    engine.dispose()
    assert "record_state" not in {c["name"] for c in inspect(engine).get_columns("release_output")}
