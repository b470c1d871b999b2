"""Stored enumerations of the disclosure-review workflow.

Values are written to the database and to audit events: changing or removing
one needs a migration; adding one does not. Values equal names.
"""
from __future__ import annotations

import enum


class ReleaseStatus(enum.Enum):
    """Where a release request stands; meanings and moves in `transitions.py`."""

    SUBMITTED = "SUBMITTED"  # checked by the service, waiting for reviewers
    PARTIALLY_REVIEWED = "PARTIALLY_REVIEWED"  # some votes cast, some outputs still undecided
    REVIEWED = "REVIEWED"  # every output has its decision (momentary: approved or rejected next)
    RETURNED = "RETURNED"  # a reviewer asked for changes; the researcher submits a new request
    APPROVED = "APPROVED"  # at least one output approved; the release package is being written
    REJECTED = "REJECTED"  # every output rejected; nothing leaves
    RELEASED = "RELEASED"  # the release package is in the egress store for the requester
    WITHDRAWN = "WITHDRAWN"  # the requester took the request back before it was decided


class IngressStatus(enum.Enum):
    """Where an ingress request (reference data brought in) stands; moves in `transitions.py`."""

    SUBMITTED = "SUBMITTED"  # read and recorded by the service, waiting for reviewers
    APPROVED = "APPROVED"  # enough approvals: the project's queries may read it as reference.<name>
    REJECTED = "REJECTED"  # a reviewer rejected it; it is never used
    WITHDRAWN = "WITHDRAWN"  # the requester took it back before it was decided; it is never used
    RETIRED = "RETIRED"  # a reviewer or administrator retired it after approval: no query may read it any more


class Decision(enum.Enum):
    """A reviewer's vote on one output, and the output's final decision."""

    APPROVE = "APPROVE"
    REJECT = "REJECT"
    RETURN = "RETURN"  # send the whole request back to the researcher with a comment


class OutputKind(enum.Enum):
    """Declarative outputs are recomputed by the service; opaque ones cannot be."""

    TABLE = "TABLE"  # declarative: an sdc TableSpec the service re-runs
    FILE = "FILE"  # opaque: bytes made by researcher code, verdict review, unverified
    EXTRACT = "EXTRACT"  # declarative record-level output: the service re-runs its query, checks the records' risk


class StatusOwner(enum.Enum):
    """Whose move it is in a status."""

    REVIEWER = "REVIEWER"
    SERVICE = "SERVICE"  # the service moves on by itself in the same transaction
    REQUESTER = "REQUESTER"
    NOBODY = "NOBODY"  # final status
