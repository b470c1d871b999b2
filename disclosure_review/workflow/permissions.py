"""Who may do what to a release request, as paired functions.

`check_can_*` raises `ReleasePermissionDenied` with the reason and changes
nothing; `can_*` returns a bool for templates. Roles and memberships come from
the policy store (access_control), read in the caller's session.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control.enums import Role
from access_control.models import Membership, Person
from access_control.policy import granted_datasets, person_roles
from disclosure_review.workflow import policies
from disclosure_review.workflow.enums import IngressStatus, OutputKind, ReleaseStatus
from disclosure_review.workflow.exceptions import ReleasePermissionDenied
from disclosure_review.workflow.store import IngressRequest, ReleaseOutput, ReleaseRequest


def _roles(session: Session, username: str) -> set[Role]:
    return set(person_roles(session, username))


def _is_member(session: Session, username: str, project_id: str) -> bool:
    stmt = (
        select(Membership.id)
        .join(Person, Membership.person_id == Person.id)
        .where(Membership.project_id == project_id, Person.username == username)
    )
    return session.scalar(stmt) is not None


def _as_bool(check: Callable[..., None]) -> Callable[..., bool]:
    def can(*args, **kwargs) -> bool:
        try:
            check(*args, **kwargs)
        except ReleasePermissionDenied:
            return False
        return True

    can.__name__ = check.__name__.replace("check_", "", 1)
    can.__doc__ = f"True when `{check.__name__}` would not raise."
    return can


def check_can_use_queue(session: Session, username: str) -> None:
    if Role.REVIEWER not in _roles(session, username):
        raise ReleasePermissionDenied(
            f"{username} is not a reviewer: only reviewers see the review queue", key="not_reviewer", user=username
        )


def check_can_review(session: Session, username: str, request: ReleaseRequest | IngressRequest) -> None:
    """A reviewer may review any request (release or ingress) but their own and those of projects they belong to."""
    check_can_use_queue(session, username)
    if request.requester == username:
        if isinstance(request, IngressRequest):
            raise ReleasePermissionDenied("you cannot review your own ingress request", key="ingress_own_request")
        raise ReleasePermissionDenied("you cannot review your own release request", key="own_request")
    if _is_member(session, username, request.project_id):
        raise ReleasePermissionDenied(
            f"you are a member of project {request.project_id}: its requests must be reviewed by someone outside it",
            key="project_member",
            project=request.project_id,
        )


def _check_open_and_undecided(output: ReleaseOutput, closed: str, closed_key: str) -> None:
    """The request still takes decisions (else `closed`, `closed_key`) and the output has none yet."""
    request = output.request
    if not policies.status_allows_votes(request.status):
        raise ReleasePermissionDenied(
            f"release request {request.id} is {request.status.value}: {closed}", key=closed_key,
            status=request.status,
        )
    if output.decision is not None:
        raise ReleasePermissionDenied(
            f"output {output.name} is already decided ({output.decision.value})", key="already_decided", output=output.name
        )


def check_can_vote(session: Session, username: str, output: ReleaseOutput) -> None:
    check_can_review(session, username, output.request)
    _check_open_and_undecided(output, "it takes no more votes", "no_more_votes")
    if any(vote.reviewer == username for vote in output.votes):
        raise ReleasePermissionDenied(
            f"you have already voted on output {output.name}: each reviewer votes once", key="already_voted", output=output.name
        )


def check_can_protect(session: Session, username: str, output: ReleaseOutput) -> None:
    """Apply protection: as voting (never on one's own project's request, only while the output is
    undecided), but a reviewer who approved may change it (which withdraws that approval), and only outputs the
    service recomputes (tables and extracts)."""
    check_can_review(session, username, output.request)
    _check_open_and_undecided(output, "its outputs can no longer be protected", "not_protectable_status")
    if output.kind not in (OutputKind.TABLE, OutputKind.EXTRACT) or not output.spec:
        raise ReleasePermissionDenied(
            f"output {output.name} is neither a table nor an extract: it cannot be protected here",
            key="not_a_table", output=output.name,
        )


def check_can_view(session: Session, username: str, request: ReleaseRequest) -> None:
    """The requester sees their request; eligible reviewers see any they may review."""
    if request.requester == username:
        return
    check_can_review(session, username, request)


def check_can_withdraw(username: str, request: ReleaseRequest) -> None:
    if request.requester != username:
        raise ReleasePermissionDenied("only the requester can withdraw a release request", key="only_requester")
    if not policies.status_allows_withdraw(request.status):
        raise ReleasePermissionDenied(
            f"release request {request.id} is {request.status.value}: it can no longer be withdrawn",
            key="not_withdrawable",
            status=request.status,
        )


def check_can_download(username: str, request: ReleaseRequest) -> None:
    """Only the requester collects a release package, once it is released."""
    if request.requester != username:
        raise ReleasePermissionDenied("only the requester can collect a release package", key="only_requester")
    if request.status is not ReleaseStatus.RELEASED or request.package is None:
        raise ReleasePermissionDenied(
            f"release request {request.id} is {request.status.value}: nothing to collect",
            key="nothing_to_collect",
            status=request.status,
        )


def check_can_submit(session: Session, username: str, project_id: str, dataset_ids: set[str], on: date) -> None:
    """The requester belongs to the project and it holds an active grant for every dataset read."""
    if not _is_member(session, username, project_id):
        raise ReleasePermissionDenied(f"{username} is not a member of project {project_id}")
    granted = {dataset.id for dataset in granted_datasets(session, project_id, on)}
    missing = sorted(dataset_ids - granted)
    if missing:
        raise ReleasePermissionDenied(
            f"project {project_id} has no active grant for dataset(s) {', '.join(missing)}"
        )


def check_can_vote_ingress(session: Session, username: str, request: IngressRequest) -> None:
    """As a release output: an eligible reviewer, once, while the ingress request is undecided."""
    check_can_review(session, username, request)
    if request.status is not IngressStatus.SUBMITTED:
        raise ReleasePermissionDenied(
            f"ingress request {request.id} is {request.status.value}: it takes no more votes", key="no_more_votes",
            status=request.status,
        )
    if any(vote.reviewer == username for vote in request.votes):
        raise ReleasePermissionDenied(
            f"you have already voted on ingress request {request.id}: each reviewer votes once",
            key="ingress_already_voted", name=request.name,
        )


def check_can_withdraw_ingress(username: str, request: IngressRequest) -> None:
    """As a release request: only the requester, only while it is undecided."""
    if request.requester != username:
        raise ReleasePermissionDenied("only the requester can withdraw an ingress request", key="only_requester")
    if request.status is not IngressStatus.SUBMITTED:
        raise ReleasePermissionDenied(
            f"ingress request {request.id} is {request.status.value}: it can no longer be withdrawn",
            key="not_withdrawable", status=request.status,
        )


def check_can_view_ingress(session: Session, username: str, request: IngressRequest) -> None:
    """The requester, eligible reviewers, and administrators (who may retire it) see an ingress request."""
    if request.requester == username or Role.ADMINISTRATOR in _roles(session, username):
        return
    check_can_review(session, username, request)


def check_can_retire(session: Session, username: str, request: IngressRequest) -> None:
    """Approved reference data is retired by an administrator or a reviewer who may review it."""
    if Role.ADMINISTRATOR not in _roles(session, username):
        check_can_review(session, username, request)
    if request.status is not IngressStatus.APPROVED:
        raise ReleasePermissionDenied(
            f"ingress request {request.id} is {request.status.value}: only approved reference data is retired",
            key="not_retirable", status=request.status,
        )


def check_can_use_reference(session: Session, username: str, project_id: str) -> None:
    """Reference data of a project is read only by the project's members (the kernel asks in their name)."""
    if not _is_member(session, username, project_id):
        raise ReleasePermissionDenied(
            f"{username} is not a member of project {project_id}: its reference data is not available to you"
        )


can_use_queue = _as_bool(check_can_use_queue)
can_review = _as_bool(check_can_review)
can_vote = _as_bool(check_can_vote)
can_protect = _as_bool(check_can_protect)
can_view = _as_bool(check_can_view)
can_withdraw = _as_bool(check_can_withdraw)
can_download = _as_bool(check_can_download)
can_submit = _as_bool(check_can_submit)
can_vote_ingress = _as_bool(check_can_vote_ingress)
can_withdraw_ingress = _as_bool(check_can_withdraw_ingress)
can_retire = _as_bool(check_can_retire)
