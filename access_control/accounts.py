"""The rules about accounts that log-in, entry decisions and both admin faces share:
what a user name may be, and whether an account is locked out.

A module of its own (it imports only the models) so that `identity` and
`entry` both use it without importing each other.
"""
from __future__ import annotations

import enum
import re
import unicodedata
from datetime import datetime, timezone

from access_control.errors import InputInvalid
from access_control.models import Person

USERNAME_PATTERN = re.compile(r"[a-z_][a-z0-9._-]{0,31}")


def canonical_username(raw: str) -> str:
    """The stored form of a user name: NFKC-normalised and lower-cased, so that
    full-width or look-alike spellings map to one account or are refused.
    Raises InputInvalid when the result is not a valid OS account name."""
    name = unicodedata.normalize("NFKC", raw).lower()
    if not USERNAME_PATTERN.fullmatch(name):
        raise InputInvalid("username_invalid", raw=raw)
    return name


def is_locked_out(locked_until: datetime | None, now: datetime) -> bool:
    """Locked out after failed logins: a lock-out time still ahead. One that has passed no longer counts,
    though the time stays stored until the next successful log-in or an unlock."""
    return locked_until is not None and locked_until > now


class AccountState(enum.Enum):
    """An account as the admin faces show it (not stored)."""

    OK = "OK"
    DISABLED = "DISABLED"
    LOCKED = "LOCKED"


def account_state(person: Person, now: datetime | None = None) -> AccountState:
    """Disabled before locked: a disabled account stays refused when its lock-out ends."""
    if person.disabled:
        return AccountState.DISABLED
    if is_locked_out(person.locked_until, now or datetime.now(timezone.utc)):
        return AccountState.LOCKED
    return AccountState.OK
