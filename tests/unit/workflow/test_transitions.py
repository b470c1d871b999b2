from __future__ import annotations

import pytest

from access_control.enums import AuditEventType
from disclosure_review.workflow import transitions
from disclosure_review.workflow.enums import ReleaseStatus, StatusOwner
from disclosure_review.workflow.exceptions import InvalidStateTransition


@pytest.mark.parametrize("table", ["VALID_TRANSITIONS", "STATUS_AUDIT_EVENT", "STATUS_OWNER", "STATUS_MEANING"])
def test_every_status_is_in_every_table(table):
    assert set(ReleaseStatus) - getattr(transitions, table).keys() == set()


def test_tables_hold_only_members():
    for targets in transitions.VALID_TRANSITIONS.values():
        assert all(isinstance(t, ReleaseStatus) for t in targets)
    assert all(isinstance(e, AuditEventType) for e in transitions.STATUS_AUDIT_EVENT.values())


def test_every_status_is_reachable_from_submission():
    seen, frontier = {transitions.INITIAL_STATUS}, [transitions.INITIAL_STATUS]
    while frontier:
        for target in transitions.VALID_TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(ReleaseStatus)


def test_final_statuses_have_nobody_or_the_requester_to_move():
    assert transitions.FINAL_STATUSES == {
        ReleaseStatus.RETURNED, ReleaseStatus.REJECTED, ReleaseStatus.RELEASED, ReleaseStatus.WITHDRAWN
    }
    for status in transitions.FINAL_STATUSES:
        assert transitions.STATUS_OWNER[status] in (StatusOwner.NOBODY, StatusOwner.REQUESTER)


@pytest.mark.parametrize(
    "current,new",
    [
        (ReleaseStatus.SUBMITTED, ReleaseStatus.RELEASED),  # skipping review
        (ReleaseStatus.REJECTED, ReleaseStatus.APPROVED),
        (ReleaseStatus.RELEASED, ReleaseStatus.WITHDRAWN),
        (ReleaseStatus.REVIEWED, ReleaseStatus.WITHDRAWN),
        (ReleaseStatus.PARTIALLY_REVIEWED, ReleaseStatus.SUBMITTED),
    ],
)
def test_invalid_transitions_are_refused(current, new):
    with pytest.raises(InvalidStateTransition, match=f"from {current.value} to {new.value}"):
        transitions.check_transition(current, new)


def test_valid_transition_passes():
    transitions.check_transition(ReleaseStatus.APPROVED, ReleaseStatus.RELEASED)
    assert transitions.can_transition(ReleaseStatus.SUBMITTED, ReleaseStatus.WITHDRAWN)


def test_release_states_reference_is_current():
    from disclosure_review.workflow.statedoc import DOC_PATH, render

    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/reference/release-states.md is stale: run `onsite review states --write`"
    )
