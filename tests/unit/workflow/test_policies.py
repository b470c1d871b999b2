from __future__ import annotations

import pytest

from disclosure_review.sdc.ckm.ptable import PTableParams, create_ptable
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow.enums import Decision
from disclosure_review.workflow.exceptions import VoteInvalid
from disclosure_review.workflow.cellkey import count_ptable
from disclosure_review.workflow.policies import ReviewPolicy, check_vote_content
from onsite_base.config import SettingInvalid


def test_approving_a_fail_needs_an_override_reason():
    with pytest.raises(VoteInvalid, match="override reason"):
        check_vote_content(Decision.APPROVE, Verdict.FAIL, "looks fine", None)
    with pytest.raises(VoteInvalid, match="override reason"):
        check_vote_content(Decision.APPROVE, Verdict.FAIL, "", "   ")
    check_vote_content(Decision.APPROVE, Verdict.FAIL, "", "cell C is a published total")


def test_approving_a_review_needs_a_comment():
    with pytest.raises(VoteInvalid, match="comment"):
        check_vote_content(Decision.APPROVE, Verdict.REVIEW, " ", None)
    check_vote_content(Decision.APPROVE, Verdict.REVIEW, "axis labels only, bins of 100+", None)


@pytest.mark.parametrize("decision", [Decision.REJECT, Decision.RETURN])
def test_reject_and_return_need_a_comment(decision):
    with pytest.raises(VoteInvalid, match="comment"):
        check_vote_content(decision, Verdict.PASS, "", None)
    check_vote_content(decision, Verdict.PASS, "round to base 5", None)


def test_approving_a_pass_needs_nothing():
    check_vote_content(Decision.APPROVE, Verdict.PASS, "", None)


def test_policy_refuses_zero_approvals():
    with pytest.raises(ValueError):
        ReviewPolicy(required_approvals=0)


def test_a_count_ptable_made_by_r_is_loaded_from_its_file_and_a_missing_one_stops_the_service(tmp_path):
    made = create_ptable(PTableParams.from_dict({"D": 2, "V": 1.0}))
    written = tmp_path / "ptable.csv"
    written.write_text(made.to_csv(), encoding="utf-8")
    policy = ReviewPolicy(cell_key_counts={"file": str(written)})
    assert count_ptable(policy.cell_key_counts).to_csv() == made.to_csv()
    with pytest.raises(SettingInvalid, match="cell_key_counts.*nowhere.csv"):
        ReviewPolicy(cell_key_counts={"file": str(tmp_path / "nowhere.csv")})
