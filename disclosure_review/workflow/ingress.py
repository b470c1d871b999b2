"""Ingress requests: reference data a researcher brings in, reviewed before any query may read it.

The service side of `analysis_kernel.request_ingress`, called by the web app and
the CLI like `service.py`, with the same rules: one transaction per call, its
audit event in it; identities are arguments, never read from a payload.

The kernel is never trusted: the service reads and parses the file itself
(`dataplane.reference.read_reference`: CSV or Parquet tables within the
limits), records its SHA-256, columns, types and row count, and stores the copy
it received. That copy — checked against its SHA-256 at every use — is the only
one ever used: in the kernel (`db.reference(name)`) and when the service
recomputes a declarative output of the same project. Approval follows the
release rule: `required_approvals` independent reviewers (two by default),
never the requester nor a member of the project; one rejection decides.

The requester may withdraw a request until it is decided. Approved data is
never deleted but may be retired, with a reason, by an administrator or a
reviewer: from then on no session reads it and no recomputation attaches it —
a release request (or a reviewer's protection) whose query names it is refused
saying so — while outputs already released stay as they are. A retired name
stays taken in its project, so a query never reads other data under it.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control import audit
from access_control.enums import AuditEventType
from access_control.models import Project, utcnow
from dataplane import reference
from disclosure_review import wire
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import permissions, policies, recompute
from disclosure_review.workflow.enums import Decision, IngressStatus
from disclosure_review.workflow.exceptions import (
    IngressInvalid,
    ReleasePermissionDenied,
    ReleaseRequestNotFound,
    VoteInvalid,
    WorkflowError,
)
from disclosure_review.workflow.store import IngressRequest, IngressVote, get_ingress
from disclosure_review.workflow.transitions import INGRESS_TRANSITIONS, check_transition

log = logging.getLogger(__name__)


def ingress_object(request: IngressRequest) -> str:
    return f"ingress_request/{request.id}"


def validate_payload(payload: Any) -> wire.IngressPayload:
    """Check an ingress payload strictly (`wire.IngressPayload`); raise `IngressInvalid` naming the problem."""
    try:
        return wire.IngressPayload.from_json(payload)
    except wire.PayloadInvalid as exc:
        raise IngressInvalid(str(exc)) from None


def submit(
    session: Session, payload: Any, requester: str, *, policy: policies.ReviewPolicy | None = None,
    today: date | None = None,
) -> IngressRequest:
    """Read the file, record what it holds, store the copy and wait for reviewers (INGRESS_SUBMIT).

    The requester must be a member of the project, which must be active; the name must not be
    a dataset's, nor that of reference data approved, waiting or retired in the project.
    """
    submission = validate_payload(payload)
    today = today or date.today()
    project = session.get(Project, submission.project)
    if project is None:
        raise IngressInvalid(f"there is no project {submission.project!r}")
    permissions.check_can_use_reference(session, requester, project.id)
    if not project.is_active_on(today):
        raise ReleasePermissionDenied(f"project {project.id} is not active on {today.isoformat()}")
    if submission.name in recompute.known_dataset_ids(session):
        raise IngressInvalid(f"{submission.name!r} is the name of a dataset: choose another name for the reference data")
    taken = session.scalar(select(IngressRequest.id).where(
        IngressRequest.project_id == project.id, IngressRequest.name == submission.name,
        IngressRequest.status.in_([IngressStatus.SUBMITTED, IngressStatus.APPROVED, IngressStatus.RETIRED])))
    if taken is not None:
        raise IngressInvalid(
            f"project {project.id} already has reference data {submission.name!r} (ingress request {taken}, approved, "
            "waiting for review or retired): choose another name"
        )
    try:
        table = reference.read_reference(submission.content, submission.filename)
    except reference.ReferenceInvalid as exc:
        raise IngressInvalid(str(exc)) from None
    columns, preview = reference.describe(table)
    request = IngressRequest(
        project_id=project.id, requester=requester, name=submission.name, description=submission.description,
        filename=submission.filename, file_format=reference.file_format(submission.filename),
        sha256=reference.sha256(submission.content), size_bytes=len(submission.content), row_count=table.num_rows,
        columns=columns, preview=preview, content=submission.content, status=IngressStatus.SUBMITTED,
        required_approvals=(policy or policies.ReviewPolicy()).required_approvals,
    )
    session.add(request)
    session.flush()
    audit.record(
        session, AuditEventType.INGRESS_SUBMIT, actor=requester, object=ingress_object(request),
        details={"project": project.id, "name": request.name, "filename": request.filename, "sha256": request.sha256,
                 "bytes": request.size_bytes, "rows": request.row_count, "columns": [c["name"] for c in columns]},
    )
    log.info("ingress request %s (%s) submitted by %s for project %s", request.id, request.name, requester, project.id)
    return request


def view(session: Session, request_id: int, username: str) -> IngressRequest:
    """The requester sees their request; eligible reviewers and administrators see any."""
    request = get_ingress(session, request_id)
    permissions.check_can_view_ingress(session, username, request)
    return request


def queue(session: Session, reviewer: str) -> list[IngressRequest]:
    """Ingress requests waiting for review that this reviewer may review (never their own project's)."""
    permissions.check_can_use_queue(session, reviewer)
    waiting = session.scalars(select(IngressRequest).where(IngressRequest.status == IngressStatus.SUBMITTED)
                              .order_by(IngressRequest.id))
    return [r for r in waiting if permissions.can_review(session, reviewer, r)]


def requests_of(session: Session, requester: str) -> list[IngressRequest]:
    stmt = select(IngressRequest).where(IngressRequest.requester == requester).order_by(IngressRequest.id.desc())
    return list(session.scalars(stmt))


def in_use(session: Session, username: str) -> list[IngressRequest]:
    """Approved reference data of every project that `username` may retire."""
    approved_all = session.scalars(select(IngressRequest).where(IngressRequest.status == IngressStatus.APPROVED)
                                   .order_by(IngressRequest.project_id, IngressRequest.name))
    return [r for r in approved_all if permissions.can_retire(session, username, r)]


def _set_status(session: Session, request: IngressRequest, new: IngressStatus, actor: str,
                event: AuditEventType = AuditEventType.INGRESS_DECIDE, **details: Any) -> None:
    check_transition(request.status, new, table=INGRESS_TRANSITIONS, what="an ingress request")
    old, request.status = request.status, new
    if new is IngressStatus.RETIRED:
        request.retired_at = utcnow()
    else:
        request.decided_at = utcnow()
    audit.record(
        session, event, actor=actor, object=ingress_object(request),
        details={"from": old.value, "to": new.value, "project": request.project_id, "name": request.name,
                 "sha256": request.sha256, **details},
    )


def vote(session: Session, request_id: int, reviewer: str, decision: Decision, *, comment: str = "") -> IngressRequest:
    """Record one reviewer's vote; approve at the required number of approvals, reject at the first rejection."""
    if decision is Decision.RETURN:
        raise VoteInvalid("an ingress request is approved or rejected (reject it with a comment saying what to change)",
                          key="ingress_no_return")
    request = get_ingress(session, request_id, for_update=True)
    permissions.check_can_vote_ingress(session, reviewer, request)
    policies.check_vote_content(decision, Verdict.PASS, comment, None)  # a rejection needs its reason
    comment = (comment or "").strip()
    request.votes.append(IngressVote(reviewer=reviewer, decision=decision, comment=comment))
    audit.record(
        session, AuditEventType.INGRESS_DECIDE, actor=reviewer, object=ingress_object(request),
        details={"decision": decision.value, "comment": comment, "sha256": request.sha256},
    )
    if decision is Decision.REJECT:
        _set_status(session, request, IngressStatus.REJECTED, reviewer)
    elif sum(1 for v in request.votes if v.decision is Decision.APPROVE) >= request.required_approvals:
        _set_status(session, request, IngressStatus.APPROVED, reviewer)
    session.flush()
    return request


def withdraw(session: Session, request_id: int, requester: str) -> IngressRequest:
    """The requester takes an undecided request back (INGRESS_WITHDRAW); its name is free again."""
    request = get_ingress(session, request_id, for_update=True)
    permissions.check_can_withdraw_ingress(requester, request)
    _set_status(session, request, IngressStatus.WITHDRAWN, requester, AuditEventType.INGRESS_WITHDRAW)
    session.flush()
    return request


def retire(session: Session, request_id: int, actor: str, reason: str) -> IngressRequest:
    """Retire approved reference data (INGRESS_RETIRE): no session or recomputation uses it from now on."""
    reason = (reason or "").strip()
    if not reason:
        raise IngressInvalid("give the reason for retiring this reference data (the project's researchers see it)",
                             key="retire_reason_required")
    if len(reason) > wire.MAX_TEXT:
        raise IngressInvalid(f"the reason is longer than {wire.MAX_TEXT} characters", key="comment_too_long",
                             limit=wire.MAX_TEXT)
    request = get_ingress(session, request_id, for_update=True)
    permissions.check_can_retire(session, actor, request)
    request.retired_by, request.retired_reason = actor, reason
    _set_status(session, request, IngressStatus.RETIRED, actor, AuditEventType.INGRESS_RETIRE, reason=reason)
    session.flush()
    log.info("reference data %s of project %s retired by %s", request.name, request.project_id, actor)
    return request


# ---------------------------------------------------------------- use of approved reference data


def approved(session: Session, project_id: str) -> list[IngressRequest]:
    stmt = select(IngressRequest).where(
        IngressRequest.project_id == project_id, IngressRequest.status == IngressStatus.APPROVED
    ).order_by(IngressRequest.name)
    return list(session.scalars(stmt))


def approved_files(session: Session, project_id: str) -> dict[str, reference.ReferenceFile]:
    """The project's approved reference data as stored: what its recomputations may read."""
    return {r.name: reference.ReferenceFile(r.name, r.filename, r.sha256, r.content) for r in approved(session, project_id)}


def describe_approved(session: Session, project_id: str, username: str) -> list[dict[str, Any]]:
    """What a member's session may read as reference.<name> (no content)."""
    permissions.check_can_use_reference(session, username, project_id)
    return [{"name": r.name, "description": r.description, "filename": r.filename, "sha256": r.sha256,
             "rows": r.row_count, "columns": r.columns, "approved_at": r.decided_at.isoformat() if r.decided_at else None}
            for r in approved(session, project_id)]


def retired(session: Session, project_id: str) -> dict[str, IngressRequest]:
    """The project's retired reference data by name."""
    stmt = select(IngressRequest).where(IngressRequest.project_id == project_id,
                                        IngressRequest.status == IngressStatus.RETIRED)
    return {r.name: r for r in session.scalars(stmt)}


def retired_message(request: IngressRequest) -> str:
    when = f"{request.retired_at:%Y-%m-%d}" if request.retired_at else "?"
    return (f"reference data {request.name!r} of project {request.project_id} was retired on {when} by "
            f"{request.retired_by} ({request.retired_reason}): it can no longer be used")


def retired_read(session: Session, project_id: str, tables_read: set[str]) -> list[IngressRequest]:
    """The project's retired reference data among `tables_read` (names a query reads), by name."""
    gone = retired(session, project_id)
    return [gone[name] for name in sorted(set(gone) & tables_read)]


def check_none_retired(session: Session, project_id: str, tables_read: set[str], error: type[WorkflowError],
                       where: str) -> None:
    """Refuse with `error` when `tables_read` (names a query reads) includes retired reference data of the project."""
    used = retired_read(session, project_id, tables_read)
    if used:
        found = used[0]
        raise error(f"{where}: {retired_message(found)}; take it out of the query", key="reference_retired",
                    name=found.name, reason=found.retired_reason or "")


def collect(session: Session, project_id: str, name: str, username: str) -> reference.ReferenceFile:
    """The approved copy of `name` for a member of `project_id` (INGRESS_COLLECT)."""
    permissions.check_can_use_reference(session, username, project_id)
    found = approved_files(session, project_id).get(name)
    if found is None and name in (gone := retired(session, project_id)):
        raise ReleaseRequestNotFound(retired_message(gone[name]), key="reference_retired", name=name,
                                     reason=gone[name].retired_reason or "")
    if found is None:
        raise ReleaseRequestNotFound(
            f"project {project_id} has no approved reference data named {name!r}: it is not approved yet, was "
            "rejected, or belongs to another project"
        )
    audit.record(session, AuditEventType.INGRESS_COLLECT, actor=username, object=f"reference/{project_id}/{name}",
                 details={"sha256": found.sha256})
    return found
