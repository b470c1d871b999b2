"""The disclosure-review workflow: the only entry point the web app and CLI call.

Every function does its work, its permission checks and its audit events in
one transaction: the change and its audit event are stored together or not at
all. Most take the caller's SQLAlchemy session. The three actions that
recompute outputs from the source data (`submit`, `preview_protection`,
`protect`) take the session factory instead: the recomputation may run for the
whole submission budget, so it runs outside any transaction (SQLite has one
writer at a time, and log-ins and votes must not wait on a query), between a
short transaction that authorizes and one that checks again and stores.
Identities are arguments (from the Hub token or OAuth cookie), never read from
a payload.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access_control import audit
from access_control.enums import AuditEventType, Outcome
from access_control.models import Project, utcnow
from access_control.policy import granted_datasets
from access_control.sessions import LiveSession
from dataplane.sql import tables_read
from disclosure_review import wire
from disclosure_review.sdc import load_preset, text
from disclosure_review.sdc.differencing import OtherOutput, check_differencing
from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.microdata import ExtractSpec
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.workflow import extracts, ingress, messages, package, permissions, policies, recompute, signing
from disclosure_review.workflow import protection as protection_choice
from disclosure_review.workflow.enums import Decision, OutputKind, ReleaseStatus
from disclosure_review.workflow.exceptions import (
    PackageError,
    ProtectionInvalid,
    ReleasePermissionDenied,
    ReleaseRequestInvalid,
    ReleaseRequestNotFound,
    VoteInvalid,
    WorkflowError,
)
from disclosure_review.workflow.store import (
    IngressRequest,
    OutputProtection,
    OutputVote,
    ReleaseOutput,
    ReleasePackage,
    ReleaseRequest,
    get_output,
    get_request,
    requests_of,
    requests_with_status,
    waiting_size,
)
from disclosure_review.workflow.transitions import INITIAL_STATUS, OPEN_FOR_REVIEW, STATUS_AUDIT_EVENT, check_transition
from onsite_base.db import transaction
from onsite_base.settings import Settings

log = logging.getLogger(__name__)

SERVICE_ACTOR = "onsite-review"
"""Actor of the steps the service takes by itself (packaging after the last decision)."""


def request_object(request: ReleaseRequest) -> str:
    return f"release_request/{request.id}"


# ---------------------------------------------------------------- submission


@dataclass(frozen=True)
class SubmittedOutput:
    """One output of a payload, validated."""

    name: str
    kind: OutputKind
    spec: TableSpec | ExtractSpec | None = None
    claimed: dict[str, Any] | None = None
    filename: str | None = None
    media_type: str | None = None
    content: bytes | None = None
    code: str | None = None
    explanation: str | None = None


@dataclass(frozen=True)
class Submission:
    project: str
    title: str
    purpose: str
    outputs: tuple[SubmittedOutput, ...]


def _submitted(output: wire.OutputPayload) -> SubmittedOutput:
    if isinstance(output, wire.FilePayload):
        package.check_renderable(output.content, output.media_type, f"output {output.name!r}")
        return SubmittedOutput(name=output.name, kind=OutputKind.FILE, filename=output.filename,
                               media_type=output.media_type, content=output.content, code=output.code,
                               explanation=output.explanation)
    kind = OutputKind.TABLE if isinstance(output, wire.TablePayload) else OutputKind.EXTRACT
    return SubmittedOutput(name=output.name, kind=kind, spec=output.spec, claimed=output.claimed)


def validate_payload(payload: Any) -> Submission:
    """Check a release request payload strictly (`wire.ReleasePayload`); raise `ReleaseRequestInvalid` naming the
    problem."""
    try:
        request = wire.ReleasePayload.from_json(payload)
    except wire.PayloadInvalid as exc:
        raise ReleaseRequestInvalid(str(exc)) from None
    return Submission(project=request.project, title=request.title, purpose=request.purpose,
                      outputs=tuple(_submitted(o) for o in request.outputs))


@dataclass(frozen=True)
class AuthorizedSubmission:
    """A validated payload its requester may submit, with what checking it needs."""

    submission: Submission
    requester: str
    project_id: str
    preset: str
    datasets: dict[str, str]
    """The project's granted datasets today: {dataset id: file}."""
    policy: policies.ReviewPolicy
    today: date
    others: tuple[tuple[str, bytes | None], ...] = ()
    """The project's table outputs a new one is compared with (`project_outputs`): (name, record state)."""
    references: dict[str, Any] = field(default_factory=dict)
    """The project's approved reference data: {name: `dataplane.reference.ReferenceFile`}."""


COMPARED_STATUSES = (ReleaseStatus.SUBMITTED, ReleaseStatus.PARTIALLY_REVIEWED, ReleaseStatus.REVIEWED,
                     ReleaseStatus.APPROVED, ReleaseStatus.RELEASED)
"""Requests whose outputs a new one is compared with: pending review, approved or released."""


def output_label(request_id: int, name: str) -> str:
    """How differencing findings name an output of another request."""
    return f"#{request_id} {name}"


def project_outputs(session: Session, project_id: str, *, approved_only: bool = False,
                    excluding: int | None = None) -> tuple[tuple[str, bytes | None], ...]:
    """The project's verified table outputs differencing compares with, as (name, record state), oldest first:
    those of requests pending review, approved or released, not rejected — or, `approved_only`, those approved."""
    decided = ReleaseOutput.decision == Decision.APPROVE
    stmt = (
        select(ReleaseRequest.id, ReleaseOutput.name, ReleaseOutput.record_state)
        .join(ReleaseRequest, ReleaseOutput.request_id == ReleaseRequest.id)
        .where(
            ReleaseRequest.project_id == project_id,
            ReleaseRequest.status.in_(COMPARED_STATUSES),
            decided if approved_only else (ReleaseOutput.decision.is_(None) | decided),
            ReleaseOutput.kind == OutputKind.TABLE,
            ReleaseOutput.verified.is_(True),
            ReleaseOutput.id != (excluding or -1),
        )
        .order_by(ReleaseOutput.id)
    )
    return tuple((output_label(request_id, name), state) for request_id, name, state in session.execute(stmt))


def _others(others: tuple[tuple[str, bytes | None], ...]) -> list[OtherOutput]:
    return [recompute.other_output(name, state) for name, state in others]


def _authorize(
    session: Session, submission: Submission, requester: str, policy: policies.ReviewPolicy, today: date
) -> AuthorizedSubmission:
    project = session.get(Project, submission.project)
    if project is None:
        raise ReleaseRequestInvalid(f"there is no project {submission.project!r}")
    read = set().union(*(tables_read(o.spec.query) for o in submission.outputs if o.spec))
    permissions.check_can_submit(session, requester, project.id, read & recompute.known_dataset_ids(session), today)
    if not project.is_active_on(today):
        raise ReleasePermissionDenied(f"project {project.id} is not active on {today.isoformat()}")
    ingress.check_none_retired(session, project.id, read, ReleaseRequestInvalid, "the release request")
    granted = {d.id: d.path for d in granted_datasets(session, project.id, today)}
    return AuthorizedSubmission(
        submission, requester, project.id, project.preset, granted, policy, today, project_outputs(session, project.id),
        ingress.approved_files(session, project.id),
    )


def authorize(
    session: Session,
    payload: Any,
    requester: str,
    *,
    policy: policies.ReviewPolicy | None = None,
    today: date | None = None,
) -> AuthorizedSubmission:
    """Validate a payload and check that `requester` may submit it. Reads only; quick.

    The requester must be a member of the project, which must be active and hold
    an active grant for every dataset the table queries read.
    """
    policy = policy or policies.ReviewPolicy()
    check_received_size(payload, policy)
    return _authorize(session, validate_payload(payload), requester, policy, today or date.today())


def check_received_size(payload: Any, policy: policies.ReviewPolicy) -> None:
    """Raise `wire.LimitExceeded` when the payload as received is past the bytes per request or per output."""
    wire.check_limit("request_bytes", wire.json_size(payload), policy.max_bytes_per_request)
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    for output in outputs if isinstance(outputs, list) else []:
        name = str(output.get("name", "")) if isinstance(output, dict) else ""
        wire.check_limit("output_bytes", wire.json_size(output), policy.max_bytes_per_output, name=name[:120])


def stored_size(item: SubmittedOutput, result: recompute.CheckedOutput) -> int:
    """Bytes an output keeps in the store: what the service computed, the session's claims and the file."""
    content = result.content if item.kind is OutputKind.EXTRACT else item.content
    return kept_bytes(result.recomputed, result.shadow, result.report, result.mismatch, item.claimed, content=content)


def kept_bytes(*documents: Any, content: bytes | None) -> int:
    return sum(wire.json_size(v) for v in documents if v is not None) + len(content or b"")


def check_computed_size(authorized: AuthorizedSubmission, checked: list[recompute.CheckedOutput]) -> None:
    """Raise `wire.LimitExceeded` when what the service computed is past the bytes per output or cells per request
    (the cells per output were counted before each recomputation)."""
    policy = authorized.policy
    for item, result in zip(authorized.submission.outputs, checked):
        wire.check_limit("output_bytes", stored_size(item, result), policy.max_bytes_per_output, name=item.name)
    wire.check_limit("request_cells", sum(r.cells for r in checked), policy.max_cells_per_request)


def check_project_room(session: Session, project_id: str, cells: int, size: int, policy: policies.ReviewPolicy) -> None:
    """Raise `wire.LimitExceeded` when the project's requests waiting for review and a new one of `cells` and
    `size` bytes pass the project's limits."""
    waiting_cells, waiting_bytes = waiting_size(session, project_id, OPEN_FOR_REVIEW)
    wire.check_limit("project_cells", waiting_cells + cells, policy.max_cells_per_project, name=project_id,
                     waiting=waiting_cells)
    wire.check_limit("project_bytes", waiting_bytes + size, policy.max_bytes_per_project, name=project_id,
                     waiting=waiting_bytes)


def check_outputs(authorized: AuthorizedSubmission) -> list[recompute.CheckedOutput]:
    """Recompute and check every output under the project's grants. Slow; uses no database session.

    Each query gets the policy's time limit, and all of them together the submission budget:
    once it is spent, the remaining queries are not run (verdict fail, never pass). An output past
    the cells per output (counted before it is computed) raises `wire.LimitExceeded`: the request
    is refused, not stored.
    """
    policy = authorized.policy
    deadline = time.monotonic() + policy.submission_budget_s
    checked = []
    for item in authorized.submission.outputs:
        if item.kind is OutputKind.FILE:
            checked.append(recompute.opaque_output())
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            checked.append(recompute.not_run("time_budget_spent", seconds=policy.submission_budget_s))
            continue
        timeout_s = min(policy.query_timeout_s, remaining)
        if item.kind is OutputKind.EXTRACT:
            checked.append(extracts.recompute_extract(
                item.spec, item.claimed, authorized.datasets, authorized.preset, policy, timeout_s=timeout_s,
                references=authorized.references))
            continue
        checked.append(
            recompute.recompute_table(
                item.spec, item.claimed, authorized.datasets, authorized.preset, policy,
                timeout_s=timeout_s, references=authorized.references,
            )
        )
    return compare_between(authorized, checked)


def compare_between(authorized: AuthorizedSubmission, checked: list[recompute.CheckedOutput]
                    ) -> list[recompute.CheckedOutput]:
    """Each table of the submission compared by differencing with the project's other outputs and with the other
    tables of the same submission."""
    tables = [i for i, (item, result) in enumerate(zip(authorized.submission.outputs, checked))
              if item.kind is OutputKind.TABLE and result.verified]
    if not tables:
        return checked
    rules = load_preset(authorized.preset)  # loaded for each recomputation already: an unloadable one failed them
    earlier = _others(authorized.others)
    outputs = authorized.submission.outputs
    for i in tables:
        same_request = [recompute.other_output(outputs[j].name, checked[j].record_state) for j in tables if j != i]
        checked[i] = recompute.with_differencing(checked[i], outputs[i].name, earlier + same_request, rules)
    return checked


def submit(
    factory: sessionmaker[Session],
    payload: Any,
    requester: str,
    *,
    policy: policies.ReviewPolicy | None = None,
    today: date | None = None,
) -> ReleaseRequest:
    """Validate, authorize, recompute and check every output, and store the release request.

    `authorize` in one transaction, `check_outputs` outside any, `record_submission`
    in another. Returns the stored request, its outputs loaded. Past an output limit
    (`ReviewPolicy.max_*`) raises `wire.LimitExceeded`, naming the limit.
    """
    with transaction(factory) as session:
        authorized = authorize(session, payload, requester, policy=policy, today=today)
    checked = check_outputs(authorized)
    check_computed_size(authorized, checked)
    for item, result in zip(authorized.submission.outputs, checked, strict=True):  # labels come from the data
        package.check_released_text(item.name, result.recomputed, result.content)
    with transaction(factory) as session:
        return record_submission(session, authorized, checked)


def record_submission(
    session: Session, authorized: AuthorizedSubmission, checked: list[recompute.CheckedOutput]
) -> ReleaseRequest:
    """Store a checked submission, after checking again that it may still be made."""
    submission = authorized.submission
    again = _authorize(session, submission, authorized.requester, authorized.policy, authorized.today)
    if (again.datasets != authorized.datasets or again.preset != authorized.preset
            or again.references.keys() != authorized.references.keys()):
        raise ReleasePermissionDenied(
            f"the grants, approved reference data or rule preset of project {authorized.project_id} changed while "
            "the outputs were checked: submit again"
        )
    sizes = [stored_size(item, result) for item, result in zip(submission.outputs, checked, strict=True)]
    check_project_room(session, authorized.project_id, sum(r.cells for r in checked), sum(sizes), authorized.policy)
    request = ReleaseRequest(
        project_id=authorized.project_id,
        requester=authorized.requester,
        title=submission.title,
        purpose=submission.purpose,
        status=INITIAL_STATUS,
        preset=authorized.preset,
        required_approvals=authorized.policy.required_approvals,
    )
    for position, (item, result) in enumerate(zip(submission.outputs, checked, strict=True)):
        request.outputs.append(
            ReleaseOutput(
                position=position,
                name=item.name,
                kind=item.kind,
                spec=item.spec.to_dict() if item.spec else None,
                claimed=item.claimed,
                # an extract's file is the one the service rendered from its own re-run
                filename=result.filename or item.filename,
                media_type=result.media_type or item.media_type,
                content=result.content if item.kind is OutputKind.EXTRACT else item.content,
                code=item.code,
                explanation=item.explanation,
                verdict=result.verdict,
                verified=result.verified,
                recomputed=result.recomputed,
                shadow=result.shadow,
                report=result.report,
                mismatch=result.mismatch,
                error=result.error,
                error_message=result.error_message,
                cells=result.cells,
                size_bytes=sizes[position],
                record_state=result.record_state,
            )
        )
    session.add(request)
    session.flush()
    audit.record(
        session,
        STATUS_AUDIT_EVENT[INITIAL_STATUS],
        actor=request.requester,
        object=request_object(request),
        details={"project": request.project_id, "title": request.title, "outputs": len(request.outputs)},
    )
    for output in request.outputs:
        audit.record(
            session,
            AuditEventType.OUTPUT_CHECK,
            actor=SERVICE_ACTOR,
            object=f"{request_object(request)}/{output.name}",
            details={
                "verdict": output.verdict.value,
                "verified": output.verified,
                "mismatch": bool(output.mismatch),
                "error": output.error,
                "preset": request.preset,
            },
        )
    log.info("release request %s submitted by %s for project %s", request.id, request.requester, request.project_id)
    return request


# ---------------------------------------------------------------- decisions


def _set_status(session: Session, request: ReleaseRequest, new: ReleaseStatus, actor: str, **details: Any) -> None:
    check_transition(request.status, new)
    old = request.status
    request.status = new
    request.updated_at = utcnow()
    audit.record(
        session,
        STATUS_AUDIT_EVENT[new],
        actor=actor,
        object=request_object(request),
        details={"from": old.value, "to": new.value, "project": request.project_id, **details},
    )


def _check_comment_text(output: str, **fields: str) -> None:
    """A reviewer's comment and override reason go into the release package's manifest: no invisible character."""
    for name, value in fields.items():
        try:
            text.check_text(value, f"output {output}: {name}", multiline=True)
        except text.InvisibleCharacter as exc:
            raise VoteInvalid(str(exc), key="invisible_text", where=exc.where, char=exc.char,
                              position=exc.position) from None


def _decide(output: ReleaseOutput, decision: Decision) -> None:
    output.decision = decision
    output.decided_at = utcnow()


def vote(
    session: Session,
    output_id: int,
    reviewer: str,
    decision: Decision,
    *,
    settings: Settings,
    comment: str = "",
    override_reason: str | None = None,
    revision: int | None = None,
) -> ReleaseOutput:
    """Record one reviewer's vote on one output and move the request on.

    An output is approved once it has the request's required number of
    independent approvals, and rejected at the first rejection (the safe side).
    A return sends the whole request back. When every output is decided the
    request is approved (some approved) or rejected (none), and an approved one
    is packaged at once. `revision`: the output's protection revision the
    reviewer saw (the web form sends it); a vote on content changed since is refused.
    """
    # Lock the request first, then read the output and its votes as they are now.
    request = get_request(session, get_output(session, output_id).request_id, for_update=True)
    output = get_output(session, output_id, fresh=True)
    permissions.check_can_vote(session, reviewer, output)
    if revision is not None and revision != output.revision:
        raise VoteInvalid(
            f"a reviewer changed the protection of output {output.name} after you opened the page: "
            "look at the table again before voting",
            key="content_changed",
            output=output.name,
        )
    verdict = output.verdict
    approvals = sum(1 for v in output.votes if v.decision is Decision.APPROVE)
    if decision is Decision.APPROVE and approvals + 1 >= request.required_approvals:
        verdict = Verdict.combine([verdict, recheck_at_approval(session, request, output, VoteInvalid)])
    policies.check_vote_content(decision, verdict, comment, override_reason)
    _check_comment_text(output.name, comment=comment, override_reason=override_reason or "")
    if decision is Decision.APPROVE and output.spec:  # computed with reference data retired since: never released
        _check_no_retired_reference(session, request.project_id, output.spec["query"], output.name, VoteInvalid,
                                    "approved")
    reason = (override_reason or "").strip() or None
    output.votes.append(
        OutputVote(
            reviewer=reviewer,
            decision=decision,
            comment=(comment or "").strip(),
            override_reason=reason if decision is Decision.APPROVE else None,
        )
    )
    audit.record(
        session,
        AuditEventType.OUTPUT_DECIDE,
        actor=reviewer,
        object=f"{request_object(request)}/{output.name}",
        details={
            "decision": decision.value,
            "verdict": output.verdict.value,
            "comment": (comment or "").strip(),
            "override_reason": reason if decision is Decision.APPROVE else None,
        },
    )
    if decision is Decision.RETURN:
        request.return_comment = comment.strip()
        _set_status(session, request, ReleaseStatus.RETURNED, reviewer, comment=request.return_comment)
        return output
    approvals += decision is Decision.APPROVE
    if decision is Decision.REJECT:
        _decide(output, Decision.REJECT)
    elif approvals >= request.required_approvals:
        _decide(output, Decision.APPROVE)
    _advance(session, request, reviewer, settings)
    return output


def recheck_at_approval(session: Session, request: ReleaseRequest, output: ReleaseOutput,
                        error: type[WorkflowError]) -> Verdict:
    """Differencing of a table about to be approved against the project's outputs approved or released by now
    (others may have been approved since it was checked). Raises `error` when approving it would disclose
    (findings with verdict fail, both outputs named); returns the check's verdict otherwise (review: a reviewer
    must say why it is safe)."""
    if output.kind is not OutputKind.TABLE or not output.verified:
        return Verdict.PASS
    approved = project_outputs(session, request.project_id, approved_only=True, excluding=output.id)
    if not approved:
        return Verdict.PASS
    state = recompute.other_output(output.name, output.record_state).state
    result = check_differencing(state, output_label(request.id, output.name), _others(approved),
                                load_preset(request.preset))
    if result.verdict is Verdict.FAIL:
        findings = messages.msg(result.code, **result.args)
        raise error(
            f"approving output {output.name} would disclose records together with outputs approved or released "
            f"since it was checked: {messages.text(findings)}",
            key="discloses_with_approved", output=output.name, findings=findings,
        )
    return result.verdict if result.cells else Verdict.PASS  # outputs it could not compare were shown at submission


def _advance(session: Session, request: ReleaseRequest, actor: str, settings: Settings) -> None:
    if any(o.decision is None for o in request.outputs):
        if request.status is ReleaseStatus.SUBMITTED:
            _set_status(session, request, ReleaseStatus.PARTIALLY_REVIEWED, actor)
        return
    _set_status(session, request, ReleaseStatus.REVIEWED, actor)
    approved = [o.name for o in request.outputs if o.decision is Decision.APPROVE]
    if not approved:
        _set_status(session, request, ReleaseStatus.REJECTED, actor)
        return
    _set_status(session, request, ReleaseStatus.APPROVED, actor, approved=approved)
    try:
        release(session, request.id, settings=settings)
    except PackageError:
        # The decisions stand; the request stays APPROVED and `onsite review release ID` retries.
        log.exception("writing the release package of request %s failed; it stays APPROVED", request.id)


def release(session: Session, request_id: int, *, settings: Settings, actor: str = SERVICE_ACTOR) -> ReleasePackage:
    """Write the release package of an APPROVED request into the egress store and mark it RELEASED."""
    request = get_request(session, request_id, for_update=True)
    check_transition(request.status, ReleaseStatus.RELEASED)
    for output in request.outputs:  # outputs of other requests approved meanwhile
        if output.decision is Decision.APPROVE:
            recheck_at_approval(session, request, output, ReleasePermissionDenied)
    try:
        signer = signing.open_signer(session, signing.ReleaseSigning.of(settings), settings.home, actor)
    except signing.SigningKeyInvalid as exc:  # nothing is released unsigned
        raise PackageError(f"release request {request.id} not packaged: {exc}") from None
    written = package.write_package(request, settings.egress_dir, signer,
                                    package.approval_events(session, request_object(request)))
    record = ReleasePackage(
        request_id=request.id, path=str(written.path), manifest_sha256=written.manifest_sha256, files=written.files
    )
    session.add(record)
    request.package = record
    _set_status(
        session, request, ReleaseStatus.RELEASED, actor, manifest_sha256=written.manifest_sha256, files=len(written.files),
        signing_key=signer.record.fingerprint,
    )
    return record


def withdraw(session: Session, request_id: int, requester: str) -> ReleaseRequest:
    request = get_request(session, request_id, for_update=True)
    permissions.check_can_withdraw(requester, request)
    _set_status(session, request, ReleaseStatus.WITHDRAWN, requester)
    return request


# ---------------------------------------------------------------- protection by reviewers


@dataclass(frozen=True)
class ProtectionJob:
    """A reviewer's protection of one table or extract output, checked and ready to recompute (no session needed)."""

    request_id: int
    output_id: int
    reviewer: str
    choice: protection_choice.ProtectionChoice
    spec: TableSpec | ExtractSpec
    """The submitted spec with the reviewer's choice: what the service recomputes and would release (an extract's
    spec is the submitted one: its record swapping is `choice.swapping`)."""
    revision: int
    """The output's protection revision when prepared: saving refuses if another reviewer changed it since."""
    preset: str
    datasets: dict[str, str]
    others: tuple[tuple[str, bytes | None], ...]
    """The project's other outputs (`project_outputs`), for differencing."""
    policy: policies.ReviewPolicy
    references: dict[str, Any] = field(default_factory=dict)
    """The project's approved reference data, as at submission (`AuthorizedSubmission.references`)."""


def prepare_protection(
    session: Session,
    request_id: int,
    output_id: int,
    reviewer: str,
    choice: protection_choice.ProtectionChoice,
    *,
    policy: policies.ReviewPolicy | None = None,
    today: date | None = None,
    revision: int | None = None,
) -> ProtectionJob:
    """Check that `reviewer` may protect the output and that the choice fits the table. Reads only.

    `revision`: the output's protection revision the reviewer saw; refused if it changed since.
    """
    output = output_of(session, request_id, output_id)
    permissions.check_can_protect(session, reviewer, output)
    if revision is not None and revision != output.revision:
        raise ProtectionInvalid(
            f"another reviewer changed the protection of output {output.name} meanwhile: look at it again",
            key="protection_changed", output=output.name,
        )
    request = output.request
    # The output as submitted (the first protection keeps what it replaced).
    as_submitted = output.protections[0].previous.get("recomputed") if output.protections else output.recomputed
    spec = _protected_spec(output, choice, as_submitted)
    _check_no_retired_reference(session, request.project_id, spec.query, output.name)
    if isinstance(spec, TableSpec) and spec.protection is not None and spec.protection.method.rounds and spec.protection.base is None:
        try:
            needs_base = load_preset(request.preset).round_base is None
        except Exception:
            needs_base = False  # an unloadable preset fails at recomputation, saying why
        if needs_base:
            raise ProtectionInvalid(
                f"rule preset {request.preset} sets no rounding base: give the base", key="round_base_required",
                preset=request.preset,
            )
    granted = {d.id: d.path for d in granted_datasets(session, request.project_id, today or date.today())}
    return ProtectionJob(
        request_id=request.id, output_id=output.id, reviewer=reviewer, choice=choice, spec=spec,
        revision=output.revision, preset=request.preset, datasets=granted,
        others=project_outputs(session, request.project_id, excluding=output.id),
        policy=policy or policies.ReviewPolicy(),
        references=ingress.approved_files(session, request.project_id),
    )


def _protected_spec(output: ReleaseOutput, choice: protection_choice.ProtectionChoice,
                    as_submitted: Mapping[str, Any] | None) -> TableSpec | ExtractSpec:
    """The spec the service recomputes with `choice`, refusing a choice that does not fit the output's kind."""
    if output.kind is OutputKind.EXTRACT:
        if choice.method not in protection_choice.EXTRACT_METHODS:
            methods = ", ".join(protection_choice.EXTRACT_METHODS)
            raise ProtectionInvalid(f"an extract is protected by record swapping or none: one of {methods}",
                                    key="extract_method", methods=methods)
        if choice.swapping is not None:
            protection_choice.check_swap_variables(choice.swapping, (as_submitted or {}).get("columns", []))
        return ExtractSpec.from_dict(output.spec)
    if choice.method == protection_choice.SWAP:
        raise ProtectionInvalid("record swapping applies to record-level extracts, not tables", key="swap_table")
    submitted = TableSpec.from_dict(output.spec)
    levels = protection_choice.dimension_levels(as_submitted, submitted.dimensions)
    return protection_choice.protected_spec(submitted, choice, levels)


def _check_no_retired_reference(session: Session, project_id: str, query: str, output_name: str,
                                error: type[WorkflowError] = ProtectionInvalid, step: str = "recomputed") -> None:
    ingress.check_none_retired(session, project_id, tables_read(query), error, f"output {output_name} cannot be {step}")


def retired_references(session: Session, output: ReleaseOutput) -> list[IngressRequest]:
    """Retired reference data the output's recorded query reads: `vote` refuses to approve such an output."""
    if not output.spec:
        return []
    return ingress.retired_read(session, output.request.project_id, tables_read(output.spec["query"]))


def compute_protection(job: ProtectionJob) -> recompute.CheckedOutput:
    """Recompute the output from the source data with the reviewer's protection and check it. Slow; no session.

    Nothing the kernel sent is used. A recomputation that fails comes back unverified with its error.
    """
    if isinstance(job.spec, ExtractSpec):  # compared with no other output, as at submission
        return extracts.recompute_extract(job.spec, None, job.datasets, job.preset, job.policy,
                                          references=job.references, swapping=job.choice.swapping)
    checked = recompute.recompute_table(job.spec, None, job.datasets, job.preset, job.policy,
                                        references=job.references)
    if checked.verified:
        checked = recompute.with_differencing(checked, job.spec.name, _others(job.others), load_preset(job.preset))
        protection_choice.check_merged(checked.recomputed, job.choice.merge)
        try:  # a merged level's label, or labels of the data as protected
            package.check_released_text(job.spec.name, checked.recomputed, None)
        except ReleaseRequestInvalid as exc:
            raise ProtectionInvalid(str(exc), key=exc.key, **exc.params) from None
    return checked


def content_digest(checked: recompute.CheckedOutput) -> str:
    """SHA-256 of what a reviewer previewed (released cells, verdict, checks): saving must give the same."""
    body = {"verdict": checked.verdict.value, "recomputed": checked.recomputed, "report": checked.report}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def apply_protection(
    session: Session, job: ProtectionJob, checked: recompute.CheckedOutput, *, previewed: str
) -> OutputProtection:
    """Store the recomputed, protected output (an extract's CSV too) as its content and record who applied it.

    Approvals of the content it replaces are withdrawn (kept in the record and the audit
    event): the required approvals must all be of the same protected content.
    `previewed`: the `content_digest` the reviewer saw; a different result is refused.
    """
    request = get_request(session, job.request_id, for_update=True)
    output = get_output(session, job.output_id, fresh=True)
    permissions.check_can_protect(session, job.reviewer, output)
    if output.revision != job.revision:
        raise ProtectionInvalid(
            f"another reviewer changed the protection of output {output.name} meanwhile: look at it again",
            key="protection_changed", output=output.name,
        )
    _check_no_retired_reference(session, request.project_id, job.spec.query, output.name)  # retired meanwhile?
    if not checked.verified:
        raise ProtectionInvalid(
            f"the table could not be recomputed with this protection: {checked.error}", key="protection_failed",
            detail=checked.error_message or checked.error or "",  # shown in the page's language
        )
    if previewed != content_digest(checked):
        raise ProtectionInvalid(
            "the recomputed table differs from the preview (the data or grants changed): preview it again",
            key="preview_stale",
        )
    approvals = [v for v in output.votes if v.decision is Decision.APPROVE]
    invalidated = [
        {"reviewer": v.reviewer, "comment": v.comment, "override_reason": v.override_reason,
         "at": v.created_at.isoformat() if v.created_at else None}
        for v in approvals
    ]
    for approval in approvals:
        output.votes.remove(approval)
    previous = {"verdict": output.verdict.value, "verified": output.verified, "recomputed": output.recomputed,
                "report": output.report, "shadow": output.shadow, "error": output.error,
                "error_message": output.error_message}
    record = OutputProtection(
        revision=output.revision + 1, reviewer=job.reviewer, choice=job.choice.to_dict(), spec=job.spec.to_dict(),
        verdict=checked.verdict, previous=previous, invalidated=invalidated,
    )
    output.protections.append(record)
    output.verdict = checked.verdict
    output.verified = True
    output.recomputed = checked.recomputed
    output.shadow = checked.shadow
    output.report = checked.report
    output.record_state = checked.record_state
    output.error = output.error_message = None
    if output.kind is OutputKind.EXTRACT:  # the file released is the one rendered from this re-run
        output.content, output.cells = checked.content, checked.cells
    # what the project's waiting requests hold (ReviewPolicy.max_bytes_per_project) counts the protected content
    output.size_bytes = kept_bytes(output.recomputed, output.shadow, output.report, output.mismatch, output.claimed,
                                   content=output.content)
    audit.record(
        session,
        AuditEventType.OUTPUT_PROTECT,
        actor=job.reviewer,
        object=f"{request_object(request)}/{output.name}",
        details={
            "protection": job.choice.to_dict(),
            "revision": record.revision,
            "verdict": checked.verdict.value,
            "previous_verdict": previous["verdict"],
            "invalidated_approvals": [v["reviewer"] for v in invalidated],
            "preset": request.preset,
        },
    )
    session.flush()
    log.info("protection %s applied to output %s of request %s by %s", job.choice.method, output.name, request.id,
             job.reviewer)
    return record


@dataclass(frozen=True)
class ProtectionPreview:
    """A reviewer's protection recomputed but not stored: what the table would become."""

    job: ProtectionJob
    checked: recompute.CheckedOutput

    @property
    def digest(self) -> str:
        """The `content_digest` a save must match (empty when the recomputation failed: nothing to save)."""
        return content_digest(self.checked) if self.checked.verified else ""


def preview_protection(
    factory: sessionmaker[Session], request_id: int, output_id: int, reviewer: str, form: Mapping[str, str], *,
    revision: int | None = None, policy: policies.ReviewPolicy | None = None, today: date | None = None,
) -> ProtectionPreview:
    """Recompute the table with a reviewer's protection and store nothing.

    `form`: the protection form's fields (`protection.parse_choice`). `prepare_protection`
    in a transaction, `compute_protection` outside any.
    """
    choice = protection_choice.parse_choice(**form)
    with transaction(factory) as session:
        job = prepare_protection(session, request_id, output_id, reviewer, choice, policy=policy, today=today,
                                 revision=revision)
    return ProtectionPreview(job, compute_protection(job))


def protect(
    factory: sessionmaker[Session], request_id: int, output_id: int, reviewer: str, form: Mapping[str, str], *,
    previewed: str, revision: int | None = None, policy: policies.ReviewPolicy | None = None,
    today: date | None = None,
) -> OutputProtection:
    """Recompute the table with a reviewer's protection and store it as the output's content.

    `form` as for `preview_protection`. `prepare_protection` in a transaction,
    `compute_protection` outside any, `apply_protection` in another, which refuses
    when the result differs from the preview the reviewer saw (`previewed`, a
    `ProtectionPreview.digest`).
    """
    choice = protection_choice.parse_choice(**form)
    with transaction(factory) as session:
        job = prepare_protection(session, request_id, output_id, reviewer, choice, policy=policy, today=today,
                                 revision=revision)
    if not previewed.strip():  # checked after the permission, before recomputing: nothing to compare with
        raise ProtectionInvalid("preview the protection before saving it", key="preview_first")
    checked = compute_protection(job)
    with transaction(factory) as session:
        return apply_protection(session, job, checked, previewed=previewed)


# ---------------------------------------------------------------- reading


def queue(session: Session, reviewer: str) -> list[ReleaseRequest]:
    """Requests waiting for review that this reviewer may review (never their own project's)."""
    permissions.check_can_use_queue(session, reviewer)
    return [r for r in requests_with_status(session, OPEN_FOR_REVIEW) if permissions.can_review(session, reviewer, r)]


def my_requests(session: Session, requester: str) -> list[ReleaseRequest]:
    return requests_of(session, requester)


def view(session: Session, request_id: int, username: str) -> ReleaseRequest:
    request = get_request(session, request_id)
    permissions.check_can_view(session, username, request)
    return request


class Withheld(str, Enum):
    """Why a request's unreleased content (cells, records, figures, previews, errors, comments) is not shown."""

    NO_SESSION = "no_session"
    """Asked from elsewhere than the terminal of the requester's running session that opened the project."""
    GRANT_REVOKED = "grant_revoked"
    """The project holds no grant today for a dataset the output reads."""
    HUB_UNAVAILABLE = "hub_unavailable"
    """The Hub could not say whether the session is running: fail closed."""


@dataclass(frozen=True)
class Presence:
    """Where a person asks from: `session` is their running session when they ask from its terminal."""

    session: LiveSession | None = None
    unknown: bool = False
    """The Hub could not be asked: nothing unreleased is shown to a researcher."""

    def withheld(self, project_id: str) -> Withheld | None:
        """Why a researcher asking from here does not see the project's unreleased content; None: they do."""
        if self.session is not None and project_id in self.session.projects:
            return None
        return Withheld.HUB_UNAVAILABLE if self.unknown else Withheld.NO_SESSION


@dataclass(frozen=True)
class ContentAccess:
    """What of a release request a person may see beyond its status (titles, verdicts, statuses, votes count)."""

    request: Withheld | None
    """Why the request's own free text (purpose, return comment, reviewers' comments) is withheld; None: shown."""
    outputs: dict[int, Withheld]
    """{output id: why its content is withheld}; an output not listed is shown."""


def content_access(session: Session, request: ReleaseRequest, username: str, presence: Presence,
                   today: date | None = None) -> ContentAccess:
    """Reviewers (staff, on staff networks) see everything of a request they may review. The requester sees
    the unreleased content only inside an active session at its terminal — the request comes from the terminal
    of their running server, whose session opened the request's project — and an output's content only while
    the project holds a grant for every dataset the output reads. Elsewhere only the status."""
    if permissions.can_review(session, username, request):
        return ContentAccess(None, {})
    why = presence.withheld(request.project_id)
    if why is not None:
        return ContentAccess(why, {o.id: why for o in request.outputs})
    granted = {d.id for d in granted_datasets(session, request.project_id, today or date.today())}
    known = recompute.known_dataset_ids(session)
    revoked = {o.id: Withheld.GRANT_REVOKED for o in request.outputs
               if o.spec and (tables_read(o.spec["query"]) & known) - granted}
    return ContentAccess(None, revoked)


def output_of(session: Session, request_id: int, output_id: int) -> ReleaseOutput:
    """Output `output_id`, which must belong to request `request_id`."""
    output = get_output(session, output_id)
    if output.request_id != request_id:
        raise ReleaseRequestNotFound(f"release request {request_id} has no output {output_id}", key="no_output",
                                     id=output_id)
    return output


def record_refusal(session: Session, action: AuditEventType, *, actor: str, object: str, reason: str,
                   details: Mapping[str, Any] | None = None) -> None:
    """Audit a refused attempt (its own transaction: the attempt itself changed nothing); `details` beside the reason."""
    audit.record(session, action, actor=actor, object=object, outcome=Outcome.DENIED,
                 details={"reason": reason[:2000], **(details or {})})


def collect(session: Session, request_id: int, requester: str) -> tuple[str, bytes]:
    """The release package as a zip for its requester; each collection is an audit event."""
    request = get_request(session, request_id)
    permissions.check_can_download(requester, request)
    name, data = package.zip_package(request.package)
    audit.record(
        session,
        AuditEventType.RELEASE_COLLECT,
        actor=requester,
        object=request_object(request),
        outcome=Outcome.OK,
        details={"manifest_sha256": request.package.manifest_sha256, "bytes": len(data)},
    )
    return name, data
