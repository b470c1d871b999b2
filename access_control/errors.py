"""Refusals of administrative actions and input, each with its text in Japanese and English.

Raised by the service layer (`policy`, `forms`, `admin`) and shown by both
faces in their language: the admin pages in the page's, `onsite admin` in
the administrator's (see `onsite.commands.language.cli_language`). `str(error)`
is the English text, for logs and for callers that know no language. A
parameter that is a moment (a datetime) is shown as every page and command
shows times (`onsite_base.times.shown`), in the zone the face passes: its
`Settings.timezone`.
"""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from onsite_base import times
from onsite_base.errors import UserError

from access_control.messages import MESSAGES, SEE


class Label(str):
    """A parameter that is itself a message key (a field's or a role's name), shown in the text's language."""


def _known(key: str) -> str:
    if key not in MESSAGES:
        raise KeyError(f"no message {key!r} in access_control.messages")
    return key


class PolicyError(UserError):
    """A refusal: `key` names its text in `access_control.messages`, `params` fill it. Nothing was changed."""

    def __init__(self, key: str, **params: object) -> None:
        self.key = _known(key)
        self.params = params
        super().__init__(self.text("en"))

    def text(self, language: str, zone: str = times.DEFAULT_TIMEZONE) -> str:
        """The refusal in `language` (ja or en), its moments in `zone`; labels and nested refusals likewise."""
        return _format(self.key, self.params, language, zone)

    def page(self) -> str:
        """The admin page (a path under the service) showing what the refusal names; '' when none does."""
        if self.key not in SEE:
            return ""
        return SEE[self.key][0].format(**{name: quote(str(value), safe="") for name, value in self.params.items()})

    def command(self) -> str:
        """The `onsite admin …` command showing what the refusal names; '' when none does."""
        return SEE[self.key][1].format(**self.params) if self.key in SEE else ""


class InputInvalid(PolicyError):
    """Input that cannot be read or is not allowed (a malformed date, id, address, password…)."""


class RecordNotFound(PolicyError):
    """No person, project, dataset, facility, grant, accreditation, booking or terminal by that name or number."""


class ChangeInvalid(PolicyError):
    """The stored state does not allow the change (it exists already, was revoked, overlaps, changes nothing…)."""


class Done:
    """What an administrative action did (a `done_…` message): both faces answer with it, in their language."""

    def __init__(self, key: str, **params: object) -> None:
        self.key = _known(key)
        self.params = params

    def text(self, language: str, zone: str = times.DEFAULT_TIMEZONE) -> str:
        return _format(self.key, self.params, language, zone)


def _format(key: str, params: dict[str, object], language: str, zone: str) -> str:
    return MESSAGES[key][language].format(**{name: _shown(value, language, zone) for name, value in params.items()})


def _shown(value: object, language: str, zone: str) -> object:
    if isinstance(value, Label):
        return MESSAGES[value][language]
    if isinstance(value, PolicyError):
        return value.text(language, zone)
    if isinstance(value, datetime):
        return times.shown(value, zone)
    return value


def error_text(error: UserError, language: str, zone: str = times.DEFAULT_TIMEZONE) -> str:
    """What a person is shown: a `PolicyError` in their language and time zone, any other refusal as it was written."""
    return error.text(language, zone) if isinstance(error, PolicyError) else str(error)


def cli_text(error: UserError, language: str, zone: str = times.DEFAULT_TIMEZONE) -> str:
    """The refusal as `onsite admin` prints it: the text, then the command that shows what it names."""
    text = error_text(error, language, zone)
    command = error.command() if isinstance(error, PolicyError) else ""
    return f"{text} (`{command}`)" if command else text
