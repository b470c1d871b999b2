"""Workflow errors. Each is a `UserError`: the message says what to fix, nothing changed."""
from __future__ import annotations

from onsite.errors import UserError


class ReleaseRequestInvalid(UserError):
    """A submitted payload is malformed or asks for something not allowed."""


class ReleaseRequestNotFound(UserError):
    """No release request (or output) with that id."""


class InvalidStateTransition(UserError):
    """The request's status does not allow this step."""


class ReleasePermissionDenied(UserError):
    """This person may not do this to this request; the message gives the reason."""


class VoteInvalid(UserError):
    """A vote lacks what its decision needs (a comment, an override reason)."""


class PackageError(Exception):
    """Writing the release package failed; the request stays APPROVED for a retry."""
