"""How both admin faces — `onsite admin …` and the admin pages — make a change.

The administrative actions themselves are the functions of `policy` (each
validates, changes, and records its audit event in the caller's transaction);
input is read by `forms`; refusals are `errors.PolicyError` with a Japanese and
an English text. This module gives both faces the rest, so that neither has
its own:

- `change(factory)`: the one transaction of one administrative change, taking
  the ledger lock first (serialized with every other writer, so its checks see
  any concurrent change), with a database conflict or an LDAP failure turned
  into a refusal; nothing is changed then.
- `ldap_directory()`: the LDAP directory whose groups follow roles and
  memberships, when one is configured.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from access_control import audit
from access_control.errors import ChangeInvalid, PolicyError
from access_control.ldap import DirectoryUnavailable, LdapDirectory, LdapSettings, LdapSettingsInvalid
from access_control.policy import GroupDirectory
from onsite_base.db import transaction


def ldap_directory() -> GroupDirectory | None:
    """The LDAP directory (LdapSettings, e.g. $ONSITE_LDAP_URI) whose groups role and membership changes maintain;
    None without one. Invalid settings refuse the change."""
    try:
        settings = LdapSettings.load()
    except LdapSettingsInvalid as e:
        raise PolicyError("ldap_settings_invalid", error=str(e)) from None
    return LdapDirectory(settings) if settings is not None else None


@contextmanager
def change(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for one administrative change; any refusal rolls all of it back."""
    try:
        with transaction(factory) as session:
            # Serialize with every other writer first, so that the checks see any concurrent change
            # already committed (SQLite: BEGIN IMMEDIATE does it).
            audit.lock_ledger(session)
            yield session
    except IntegrityError as e:  # a change that slipped past the checks concurrently
        raise ChangeInvalid("conflict", error=str(e.orig)) from None
    except DirectoryUnavailable as e:  # raised inside the transaction: the database change rolled back
        raise ChangeInvalid("ldap_refused", error=e.reason) from None
