"""The local identity store: argon2 password hashes kept in the policy store.

The embedded default directory (LDAP is the production one, see issue 5).
User names are canonicalised the same way everywhere (`accounts.canonical_username`:
NFKC, lower case) and must look like an OS account name, because sessions run
as that account.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control import audit
from access_control.accounts import canonical_username, is_locked_out
from access_control.entry import DenialReason, shown_name
from access_control.enums import AuditEventType, Outcome
from access_control.errors import InputInvalid
from access_control.models import Person

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


def check_password_rules(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputInvalid("password_too_short", limit=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputInvalid("password_too_long", limit=MAX_PASSWORD_LENGTH)
    if username and username in password.lower():
        raise InputInvalid("password_has_username")
    if len(set(password)) < 4:
        raise InputInvalid("password_too_simple")


@dataclass(frozen=True)
class PasswordCheck:
    """A password verified against the hash the store held when it was read (`LocalIdentityStore.precheck`)."""

    stored_hash: str | None
    ok: bool


@dataclass(frozen=True)
class LoginResult:
    person: Person | None
    """The authenticated person, or None when the login is refused."""
    reason: DenialReason | None = None
    """Why it was refused (BAD_CREDENTIALS or ACCOUNT_LOCKED)."""


class LocalIdentityStore:
    """Passwords checked against argon2 hashes, with lock-out after repeated failures.

    The caller owns the transaction and must commit it whether or not the login
    succeeds: failure counts, locks and LOGIN_FAIL audit events are written in it.
    """

    def __init__(
        self,
        *,
        hasher: PasswordHasher | None = None,
        max_failed_logins: int = MAX_FAILED_LOGINS,
        lockout: timedelta = LOCKOUT,
    ) -> None:
        self.hasher = hasher or PasswordHasher()
        self.max_failed_logins = max_failed_logins
        self.lockout = lockout
        # Verified against for unknown users, so they cost the same time as known ones.
        self._dummy_hash = self.hasher.hash("onsite-timing-equaliser")

    def hash_password(self, password: str, username: str) -> str:
        check_password_rules(password, username)
        return self.hasher.hash(password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash or self._dummy_hash, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def precheck(self, session: Session, username: str, password: str) -> PasswordCheck:
        """The password verified against the stored hash, read in `session` (a read, no lock): the argon2 work
        (~0.2 CPU-s) then runs before `check_login`'s write transaction, not under it — on SQLite that lock is
        the whole store's, and every other log-in would queue behind each hash."""
        stored = self._stored_hash(session, username)
        return PasswordCheck(stored, self._verify(stored, password[:MAX_PASSWORD_LENGTH]))

    @staticmethod
    def _stored_hash(session: Session, username: str) -> str | None:
        try:
            name = canonical_username(username)
        except InputInvalid:
            return None
        return session.scalar(select(Person.password_hash).where(Person.username == name))

    def check_login(self, session: Session, username: str, password: str, now: datetime | None = None,
                    checked: PasswordCheck | None = None) -> LoginResult:
        """The log-in decided and its outcome written in `session` (failure count, lock-out, LOGIN_FAIL).
        `checked` (from `precheck`) is used only if the hash is still the one it was verified against."""
        now = now or datetime.now(timezone.utc)
        try:
            name = canonical_username(username)
        except InputInvalid:
            name = None
        # FOR UPDATE: parallel guesses must each count (PostgreSQL; SQLite transactions are serial).
        person = session.scalar(select(Person).where(Person.username == name).with_for_update()) if name else None
        stored = person.password_hash if person else None
        if checked is not None and checked.stored_hash == stored:
            password_ok = checked.ok
        else:  # no precheck, or the password changed since: verified again against the hash of now
            password_ok = self._verify(stored, password[:MAX_PASSWORD_LENGTH])
        shown = name or shown_name(username)
        if person is None:
            self._refuse(session, shown, DenialReason.BAD_CREDENTIALS, {"known": False})
            return LoginResult(None, DenialReason.BAD_CREDENTIALS)
        if is_locked_out(person.locked_until, now):
            # Refused even with the right password: the lock-out is what stops guessing.
            self._refuse(session, shown, DenialReason.ACCOUNT_LOCKED, {"locked_until": person.locked_until.isoformat()})
            return LoginResult(None, DenialReason.ACCOUNT_LOCKED)
        if not password_ok:
            person.failed_logins += 1
            details: dict[str, str | int] = {"failed_logins": person.failed_logins}
            if person.failed_logins >= self.max_failed_logins:
                person.locked_until = now + self.lockout
                person.failed_logins = 0
                details["locked_until"] = person.locked_until.isoformat()
                log.warning("account %s locked after %d failed logins", person.username, self.max_failed_logins)
            self._refuse(session, shown, DenialReason.BAD_CREDENTIALS, details)
            return LoginResult(None, DenialReason.BAD_CREDENTIALS)
        person.failed_logins = 0
        person.locked_until = None
        if self.hasher.check_needs_rehash(person.password_hash or ""):
            person.password_hash = self.hasher.hash(password)
        return LoginResult(person)

    def authenticate(self, session: Session, username: str, password: str, now: datetime | None = None) -> Person | None:
        """The person if the password is right and the account not locked, else None."""
        return self.check_login(session, username, password, now).person

    @staticmethod
    def _refuse(session: Session, name: str, reason: DenialReason, details: dict) -> None:
        audit.record(
            session,
            AuditEventType.LOGIN_FAIL,
            actor=name,
            object=f"person:{name}",
            outcome=Outcome.DENIED,
            details={"reason": reason.value, **details},
        )
