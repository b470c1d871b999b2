"""The release-request state machine as data, and the one function that moves it.

`docs/reference/release-states.md` is generated from these tables
(`onsite review states --write`); a unit test fails when it is stale.
"""
from __future__ import annotations

from access_control.enums import AuditEventType
from disclosure_review.workflow.enums import IngressStatus
from disclosure_review.workflow.enums import ReleaseStatus as S
from disclosure_review.workflow.enums import StatusOwner
from disclosure_review.workflow.exceptions import InvalidStateTransition

INITIAL_STATUS = S.SUBMITTED

VALID_TRANSITIONS: dict[S, list[S]] = {
    # REVIEWED straight from SUBMITTED when one vote decides every output (1 approval required).
    S.SUBMITTED: [S.PARTIALLY_REVIEWED, S.REVIEWED, S.RETURNED, S.WITHDRAWN],
    S.PARTIALLY_REVIEWED: [S.REVIEWED, S.RETURNED, S.WITHDRAWN],
    S.REVIEWED: [S.APPROVED, S.REJECTED],
    S.APPROVED: [S.RELEASED],
    S.RETURNED: [],
    S.REJECTED: [],
    S.RELEASED: [],
    S.WITHDRAWN: [],
}

STATUS_AUDIT_EVENT: dict[S, AuditEventType] = {
    S.SUBMITTED: AuditEventType.RELEASE_SUBMIT,
    S.PARTIALLY_REVIEWED: AuditEventType.RELEASE_DECIDE,
    S.REVIEWED: AuditEventType.RELEASE_DECIDE,
    S.RETURNED: AuditEventType.RELEASE_DECIDE,
    S.APPROVED: AuditEventType.RELEASE_DECIDE,
    S.REJECTED: AuditEventType.RELEASE_DECIDE,
    S.RELEASED: AuditEventType.RELEASE_PACKAGE,
    S.WITHDRAWN: AuditEventType.RELEASE_WITHDRAW,
}

STATUS_OWNER: dict[S, StatusOwner] = {
    S.SUBMITTED: StatusOwner.REVIEWER,
    S.PARTIALLY_REVIEWED: StatusOwner.REVIEWER,
    S.REVIEWED: StatusOwner.SERVICE,
    S.APPROVED: StatusOwner.SERVICE,
    S.RETURNED: StatusOwner.REQUESTER,
    S.REJECTED: StatusOwner.NOBODY,
    S.RELEASED: StatusOwner.NOBODY,
    S.WITHDRAWN: StatusOwner.NOBODY,
}

STATUS_MEANING: dict[S, str] = {
    S.SUBMITTED: "checked by the service, waiting for reviewers",
    S.PARTIALLY_REVIEWED: "some votes cast, some outputs still undecided",
    S.REVIEWED: "every output has its decision (momentary: approved or rejected next)",
    S.RETURNED: "a reviewer asked for changes; the researcher submits a new request",
    S.APPROVED: "at least one output approved; the release package is being written",
    S.REJECTED: "every output rejected; nothing leaves",
    S.RELEASED: "the release package is in the egress store for the requester",
    S.WITHDRAWN: "the requester took the request back before it was decided",
}

INGRESS_TRANSITIONS: dict[IngressStatus, list[IngressStatus]] = {
    # One rejection decides; approval once the required number of reviewers approved; the requester may
    # withdraw until then. Approved data is retired (never deleted: released outputs name it).
    IngressStatus.SUBMITTED: [IngressStatus.APPROVED, IngressStatus.REJECTED, IngressStatus.WITHDRAWN],
    IngressStatus.APPROVED: [IngressStatus.RETIRED],
    IngressStatus.REJECTED: [],
    IngressStatus.WITHDRAWN: [],
    IngressStatus.RETIRED: [],
}

FINAL_STATUSES = frozenset(s for s, targets in VALID_TRANSITIONS.items() if not targets)
OPEN_FOR_REVIEW = frozenset({S.SUBMITTED, S.PARTIALLY_REVIEWED})


def can_transition(current: S, new: S) -> bool:
    return new in VALID_TRANSITIONS[current]


def check_transition(current, new, *, table=VALID_TRANSITIONS, what: str = "a release request") -> None:
    """Raise `InvalidStateTransition` unless `current -> new` is in `table`. Changes nothing."""
    if new not in table[current]:
        allowed = ", ".join(s.value for s in table[current]) or "none (final status)"
        raise InvalidStateTransition(
            f"{what} cannot go from {current.value} to {new.value}; allowed from {current.value}: {allowed}",
            key="invalid_transition", status=current, new=new,
        )


def mermaid_diagram() -> str:
    """The state diagram in Mermaid syntax, from the tables above."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATUS.value}"]
    for source, targets in VALID_TRANSITIONS.items():
        lines += [f"    {source.value} --> {target.value}" for target in targets]
    lines += [f"    {status.value} --> [*]" for status in S if status in FINAL_STATUSES]
    return "\n".join(lines)
