"""Workflow tables (the data-access layer) on the shared `onsite_base.db.Base`.

Only `service.py` reads and writes these. Project, dataset and person are kept
as their ids/usernames, not foreign keys, so the workflow's schema branch
evolves apart from access_control's. The schema is created by the Alembic
revisions in `disclosure_review/workflow/migrations/` (branch `workflow`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from onsite_base.db import Base
from access_control.models import UTCDateTime, stored_enum, utcnow
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow.enums import Decision, IngressStatus, OutputKind, ReleaseStatus
from disclosure_review.workflow.exceptions import ReleaseRequestNotFound


class ReleaseRequest(Base):
    __tablename__ = "release_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    requester: Mapped[str] = mapped_column(String(128), index=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    status: Mapped[ReleaseStatus] = mapped_column(stored_enum(ReleaseStatus), index=True)
    preset: Mapped[str] = mapped_column(String(64))
    """The sdc rule preset the outputs were checked under."""
    required_approvals: Mapped[int] = mapped_column(Integer)
    """Independent approvals each output needs, fixed at submission."""
    return_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    outputs: Mapped[list[ReleaseOutput]] = relationship(
        back_populates="request", order_by="ReleaseOutput.position", cascade="all, delete-orphan"
    )
    package: Mapped[ReleasePackage | None] = relationship(back_populates="request", uselist=False)


class ReleaseOutput(Base):
    __tablename__ = "release_output"
    __table_args__ = (UniqueConstraint("request_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_request.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[OutputKind] = mapped_column(stored_enum(OutputKind))
    # declarative: the spec as submitted; what the session claimed (shown, never trusted)
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    claimed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # opaque: the file as submitted, with the code that made it
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    code: Mapped[str | None] = mapped_column(Text, nullable=True)
    explanation: Mapped[str | None] = mapped_column(Text, nullable=True)
    # what the service computed itself: the verdict that counts
    verdict: Mapped[Verdict] = mapped_column(stored_enum(Verdict))
    """The service's own verdict: the one that counts."""
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    """True only when the service recomputed the output from the source data."""
    recomputed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The released view: {"columns": [...], "rows": [[...], ...]}."""
    shadow: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Shadow statistics, for reviewers only; never released."""
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    mismatch: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    cells: Mapped[int] = mapped_column(Integer, default=0)
    """Cells the service recomputed (a table's with margins, an extract's records × columns); 0 for a file."""
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    """Bytes stored for the output (contents and claims): with `cells`, what the project's limits add up."""
    record_state: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """A table's cells by the records they hold (`sdc.records.RecordState`), for differencing; never shown."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why the service could not recompute the output, in English (JSON, audit)."""
    error_message: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The same as a message id and arguments (`workflow.messages`), shown in the page's language; None before wf0005."""
    decision: Mapped[Decision | None] = mapped_column(stored_enum(Decision), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    request: Mapped[ReleaseRequest] = relationship(back_populates="outputs")
    votes: Mapped[list[OutputVote]] = relationship(
        back_populates="output", order_by="OutputVote.id", cascade="all, delete-orphan"
    )
    protections: Mapped[list[OutputProtection]] = relationship(
        back_populates="output", order_by="OutputProtection.revision", cascade="all, delete-orphan"
    )

    @property
    def revision(self) -> int:
        """How many times reviewers changed the protection: approvals count only for the current content."""
        return len(self.protections)

    @property
    def current_protection(self) -> OutputProtection | None:
        return self.protections[-1] if self.protections else None

    @property
    def current_spec(self) -> dict[str, Any] | None:
        """The spec the released cells were computed from: the reviewer's latest, else the submitted one."""
        return self.protections[-1].spec if self.protections else self.spec


class OutputProtection(Base):
    """A protection a reviewer applied to a table output; the latest one is what is released."""

    __tablename__ = "output_protection"
    __table_args__ = (UniqueConstraint("output_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("release_output.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    """1 for the first change, 2 for the next, ..."""
    reviewer: Mapped[str] = mapped_column(String(128))
    choice: Mapped[dict[str, Any]] = mapped_column(JSON)
    """`protection.ProtectionChoice.to_dict()`: method, sdc protection, merged levels."""
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The table spec the service recomputed with this protection."""
    verdict: Mapped[Verdict] = mapped_column(stored_enum(Verdict))
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The content it replaced: {"verdict", "recomputed", "report", "shadow", "error", "verified"}."""
    invalidated: Mapped[list[Any]] = mapped_column(JSON)
    """Approvals of the replaced content, removed: [{"reviewer", "comment", "override_reason", "at"}]."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    output: Mapped[ReleaseOutput] = relationship(back_populates="protections")


class OutputVote(Base):
    __tablename__ = "output_vote"
    __table_args__ = (UniqueConstraint("output_id", "reviewer"),)  # one vote per reviewer per output

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("release_output.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    decision: Mapped[Decision] = mapped_column(stored_enum(Decision))
    comment: Mapped[str] = mapped_column(Text, default="")
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Written reason for approving an output whose verdict is fail."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    output: Mapped[ReleaseOutput] = relationship(back_populates="votes")


class ReleasePackage(Base):
    __tablename__ = "release_package"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_request.id", ondelete="CASCADE"), unique=True)
    path: Mapped[str] = mapped_column(String(1000))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    files: Mapped[list[Any]] = mapped_column(JSON)
    """[{"name", "sha256", "bytes"}] of the released files."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[ReleaseRequest] = relationship(back_populates="package")


class IngressRequest(Base):
    """Reference data a researcher brings in: the service's own reading of the file and its stored copy."""

    __tablename__ = "ingress_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    requester: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(63))
    """Queries read it as reference.<name>; one approved or open request per name and project."""
    description: Mapped[str] = mapped_column(Text)
    """What the data is and where it comes from (a published source), in the researcher's words."""
    filename: Mapped[str] = mapped_column(String(200))
    file_format: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    """Of `content`: every use checks the copy against it."""
    size_bytes: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(JSON)
    """[{"name", "type"}] as queries see them (DuckDB types)."""
    preview: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The first rows: {"columns": [...], "rows": [[...], ...]}."""
    content: Mapped[bytes] = mapped_column(LargeBinary)
    """The file as the service received it: the only copy ever used."""
    status: Mapped[IngressStatus] = mapped_column(stored_enum(IngressStatus), index=True)
    required_approvals: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When it was approved, rejected or withdrawn."""
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    retired_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why a reviewer or administrator retired approved data (shown to the project and reviewers)."""

    votes: Mapped[list[IngressVote]] = relationship(
        back_populates="request", order_by="IngressVote.id", cascade="all, delete-orphan"
    )


class IngressVote(Base):
    __tablename__ = "ingress_vote"
    __table_args__ = (UniqueConstraint("request_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("ingress_request.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    decision: Mapped[Decision] = mapped_column(stored_enum(Decision))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[IngressRequest] = relationship(back_populates="votes")


def get_request(session: Session, request_id: int, *, for_update: bool = False) -> ReleaseRequest:
    return _get(session, ReleaseRequest, request_id, for_update, "release request")


def get_ingress(session: Session, request_id: int, *, for_update: bool = False) -> IngressRequest:
    found = _get(session, IngressRequest, request_id, for_update, "ingress request")
    if for_update:
        session.expire(found, ["votes"])  # and its votes as they are now
    return found


def _get(session: Session, model, request_id: int, for_update: bool, what: str):
    stmt = select(model).where(model.id == request_id)
    if for_update:
        # PostgreSQL: serialize votes on one request, and read it as it is once locked.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    found = session.scalars(stmt).one_or_none()
    if found is None:
        raise ReleaseRequestNotFound(f"no {what} {request_id}", key=f"no_{what.replace(' ', '_')}", id=request_id)
    return found


def get_output(session: Session, output_id: int, *, fresh: bool = False) -> ReleaseOutput:
    found = session.get(ReleaseOutput, output_id, populate_existing=fresh)
    if found is not None and fresh:
        session.expire(found, ["votes", "protections"])  # reload the votes and protections too
    if found is None:
        raise ReleaseRequestNotFound(f"no output {output_id}", key="no_output", id=output_id)
    return found


OUTPUT_SUMMARY = ("id", "request_id", "position", "name", "kind", "verdict", "verified", "decision", "decided_at",
                  "cells", "size_bytes", "filename", "media_type")
"""The columns of an output a list shows; never its contents (cells, shadow statistics, file, claims)."""


def requests_with_status(session: Session, statuses) -> list[ReleaseRequest]:
    """With their outputs' `OUTPUT_SUMMARY` and votes, in three queries whatever the number of requests."""
    outputs = selectinload(ReleaseRequest.outputs)
    stmt = (select(ReleaseRequest).where(ReleaseRequest.status.in_(list(statuses))).order_by(ReleaseRequest.id)
            .options(outputs.load_only(*(getattr(ReleaseOutput, c) for c in OUTPUT_SUMMARY)),
                     outputs.selectinload(ReleaseOutput.votes)))
    return list(session.scalars(stmt))


def waiting_size(session: Session, project_id: str, statuses) -> tuple[int, int]:
    """(cells, bytes) of the project's requests in `statuses`, summed in the database (no contents read)."""
    stmt = (select(func.coalesce(func.sum(ReleaseOutput.cells), 0), func.coalesce(func.sum(ReleaseOutput.size_bytes), 0))
            .join(ReleaseRequest, ReleaseOutput.request_id == ReleaseRequest.id)
            .where(ReleaseRequest.project_id == project_id, ReleaseRequest.status.in_(list(statuses))))
    cells, size = session.execute(stmt).one()
    return int(cells), int(size)


def requests_of(session: Session, requester: str) -> list[ReleaseRequest]:
    stmt = select(ReleaseRequest).where(ReleaseRequest.requester == requester).order_by(ReleaseRequest.id.desc())
    return list(session.scalars(stmt))
