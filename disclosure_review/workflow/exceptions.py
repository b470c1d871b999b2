"""Workflow errors. Each is a `UserError`: the message says what to fix, nothing changed."""
from __future__ import annotations

from onsite_base.errors import UserError


class WorkflowError(UserError):
    """A refusal with an optional message key (`key`, `params`) the web app shows translated.

    A parameter may be a request's status (the enum: shown as that kind of request's status) or a
    stored message ({"code", "args"}, `workflow.messages`); both are shown in the page's language.
    """

    def __init__(self, message: str, *, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


class ReleaseRequestInvalid(WorkflowError):
    """A submitted payload is malformed or asks for something not allowed."""


class ReleaseRequestNotFound(WorkflowError):
    """No release request (or output) with that id."""


class InvalidStateTransition(WorkflowError):
    """The request's status does not allow this step."""


class ReleasePermissionDenied(WorkflowError):
    """This person may not do this to this request; the message gives the reason."""


class VoteInvalid(WorkflowError):
    """A vote lacks what its decision needs (a comment, an override reason)."""


class ProtectionInvalid(WorkflowError):
    """A reviewer's protection that cannot be applied (bad parameter, failed recomputation); nothing changed."""


class IngressInvalid(WorkflowError):
    """An ingress request that cannot be accepted (its file, its name, its description); nothing stored."""


class PackageError(Exception):
    """Writing the release package failed; the request stays APPROVED for a retry."""


class PackageTampered(WorkflowError):
    """A release package's files differ from its manifest, or the manifest from the release record: never given out.
    `params`: request, file, expected and found SHA-256."""
