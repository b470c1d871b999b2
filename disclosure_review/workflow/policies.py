"""What a status, an output type or a verdict allows: rules about things, not people.

(Who may act is `permissions.py`.)
"""
from __future__ import annotations

from dataclasses import dataclass

from disclosure_review.sdc.enums import Verdict
from disclosure_review.wire import MAX_TEXT
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.exceptions import VoteInvalid
from disclosure_review.workflow.transitions import OPEN_FOR_REVIEW

DEFAULT_REQUIRED_APPROVALS = 2
"""Independent approvals each output needs (the two-reviewer rule)."""


@dataclass(frozen=True)
class ReviewPolicy:
    """Configurable review rules; fixed per request at submission."""

    required_approvals: int = DEFAULT_REQUIRED_APPROVALS
    query_timeout_s: float = 30.0
    """Time limit of one recorded query when the service re-runs it."""
    submission_budget_s: float = 90.0
    """Time limit of all the queries of one submission: the single-user server waits 120 s for the answer."""
    query_memory_limit: str = "2GB"

    def __post_init__(self) -> None:
        if self.required_approvals < 1:
            raise ValueError("required_approvals must be at least 1")


def status_allows_votes(status: ReleaseStatus) -> bool:
    return status in OPEN_FOR_REVIEW


def status_allows_withdraw(status: ReleaseStatus) -> bool:
    return status in OPEN_FOR_REVIEW


def check_vote_content(decision: Decision, verdict: Verdict, comment: str, override_reason: str | None) -> None:
    """Raise `VoteInvalid` unless the vote carries what its decision needs.

    `verdict` is the service's own verdict (what the session claimed plays no part).
    - approving a fail needs a written override reason;
    - approving a review (opaque file or undecidable check) needs a comment saying why it is safe;
    - returning or rejecting needs a comment for the researcher.
    """
    comment = (comment or "").strip()
    reason = (override_reason or "").strip()
    if decision is Decision.APPROVE and verdict is Verdict.FAIL and not reason:
        raise VoteInvalid(
            "this output failed its disclosure checks: approving it needs a written override reason",
            key="override_required",
        )
    if decision is Decision.APPROVE and verdict is Verdict.REVIEW and not comment:
        raise VoteInvalid(
            "this output needs human judgement (verdict review): say in a comment why it is safe to release",
            key="comment_required_review",
        )
    if decision in (Decision.RETURN, Decision.REJECT) and not comment:
        raise VoteInvalid(
            f"a {decision.value.lower()} needs a comment telling the researcher why",
            key="comment_required",
            decision=decision,
        )
    if len(comment) > MAX_TEXT or len(reason) > MAX_TEXT:
        raise VoteInvalid(f"comments are limited to {MAX_TEXT} characters", key="comment_too_long", limit=MAX_TEXT)
