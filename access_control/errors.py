"""Refusals of administrative actions and input, each with its text in Japanese and English.

Raised by the service layer (`policy`, `forms`, `admin`) and shown by both
faces in their language: the admin pages in the page's, `onsite admin` in
the administrator's (see `onsite.commands.admin.cli_language`). `str(error)`
is the English text, for logs and for callers that know no language.
"""
from __future__ import annotations

from onsite_base.errors import UserError

from access_control.messages import MESSAGES


class Label(str):
    """A parameter that is itself a message key (a field's or a role's name), shown in the text's language."""


class PolicyError(UserError):
    """A refusal: `key` names its text in `access_control.messages`, `params` fill it. Nothing was changed."""

    def __init__(self, key: str, **params: object) -> None:
        if key not in MESSAGES:
            raise KeyError(f"no message {key!r} in access_control.messages")
        self.key = key
        self.params = params
        super().__init__(self.text("en"))

    def text(self, language: str) -> str:
        """The refusal in `language` (ja or en); labels and nested refusals in the same language."""
        return MESSAGES[self.key][language].format(**{name: _shown(value, language) for name, value in self.params.items()})


class InputInvalid(PolicyError):
    """Input that cannot be read or is not allowed (a malformed date, id, address, password…)."""


class RecordNotFound(PolicyError):
    """No person, project, dataset, facility, grant, accreditation, booking or terminal by that name or number."""


class ChangeInvalid(PolicyError):
    """The stored state does not allow the change (it exists already, was revoked, overlaps, changes nothing…)."""


def _shown(value: object, language: str) -> object:
    if isinstance(value, Label):
        return MESSAGES[value][language]
    if isinstance(value, PolicyError):
        return value.text(language)
    return value


def error_text(error: UserError, language: str) -> str:
    """What a person is shown: a `PolicyError` in their language, any other refusal as it was written."""
    return error.text(language) if isinstance(error, PolicyError) else str(error)
