"""Outputs released and review turnaround by facility and month, for the operations view's usage statistics.

A release request belongs to the facility of the session it was sent from: the
requester's newest session (access_control.usage) started at or before the
request. Outputs released count in the month their package was written, review
turnaround (submission to the last output's decision) in the month of that
decision; months are the facility's own (its time zone). Requests from no
known facility's session are left out.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from access_control.models import Facility
from access_control.operations import first_month, month_of
from access_control.usage import UsageSession
from disclosure_review.workflow.enums import Decision
from disclosure_review.workflow.store import ReleaseOutput, ReleasePackage, ReleaseRequest


@dataclass
class ReviewMonth:
    facility_id: int
    month: str
    outputs_released: int = 0
    turnarounds: list[float] = field(default_factory=list)
    """Hours from submission to the last decision, one a decided request."""

    @property
    def median_turnaround_hours(self) -> float | None:
        return statistics.median(self.turnarounds) if self.turnarounds else None


def review_usage(session: Session, now: datetime, *, months: int = 12,
                 facility_id: int | None = None) -> dict[tuple[int, str], ReviewMonth]:
    """By (facility, month), the last `months` months: outputs released and decided requests' turnaround."""
    since = first_month(now, months)
    earliest = datetime.combine(since - timedelta(days=1), datetime.min.time(), ZoneInfo("UTC"))
    facility = (select(UsageSession.facility_id)
                .where(UsageSession.username == ReleaseRequest.requester, UsageSession.started_at <= ReleaseRequest.created_at)
                .order_by(UsageSession.started_at.desc()).limit(1).correlate(ReleaseRequest).scalar_subquery())
    outputs = (select(ReleaseOutput.request_id,
                      func.max(ReleaseOutput.decided_at).label("decided_at"),
                      func.sum(case((ReleaseOutput.decided_at.is_(None), 1), else_=0)).label("undecided"),
                      func.sum(case((ReleaseOutput.decision == Decision.APPROVE, 1), else_=0)).label("approved"))
               .group_by(ReleaseOutput.request_id).subquery())
    query = (select(facility.label("facility_id"), ReleaseRequest.created_at, outputs.c.decided_at, outputs.c.undecided,
                    outputs.c.approved, ReleasePackage.created_at.label("released_at"))
             .join(outputs, outputs.c.request_id == ReleaseRequest.id)
             .outerjoin(ReleasePackage, and_(ReleasePackage.request_id == ReleaseRequest.id))
             .where((outputs.c.decided_at >= earliest) | (ReleasePackage.created_at >= earliest)))
    zones = {fid: ZoneInfo(name) for fid, name in session.execute(select(Facility.id, Facility.timezone))}
    first = since.strftime("%Y-%m")
    usage: dict[tuple[int, str], ReviewMonth] = {}

    def month_row(fid: int, moment: datetime) -> ReviewMonth | None:
        month = month_of(moment, zones[fid])
        if month < first:
            return None
        return usage.setdefault((fid, month), ReviewMonth(fid, month))

    for fid, created, decided, undecided, approved, released in session.execute(query):
        if fid is None or fid not in zones or (facility_id is not None and fid != facility_id):
            continue
        if decided is not None and not undecided and (row := month_row(fid, decided)):
            row.turnarounds.append((decided - created).total_seconds() / 3600)
        if released is not None and approved and (row := month_row(fid, released)):
            row.outputs_released += int(approved)
    return usage
