"""The local identity store: argon2 verification, lock-out, unlock, timing."""
from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from access_control import policy
from onsite_base.db import transaction
from access_control.entry import DenialReason
from access_control.enums import AuditEventType, Outcome
from access_control.accounts import canonical_username
from access_control.identity import LocalIdentityStore
from access_control.models import AuditEvent
from onsite_base.errors import UserError

PASSWORD = "correct horse battery"  # alice's, set by the world fixture
ACTOR = "admin:test"
# argon2id at its least cost, for tests of lock-out and failure counts, which do not depend on it. Production's
# (PasswordHasher(): 3 passes over 64 MiB, ~0.2 CPU-s a hash or a verify) is what the tests of the stored hash,
# of equal timing for unknown users, of parallel guesses and of the precheck run.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def fast_alice(db, world) -> PasswordHasher:
    """FAST, with alice's password stored at its cost (a verify costs what the stored hash says, not the hasher)."""
    with transaction(db) as s:
        policy.get_person(s, "alice").password_hash = FAST.hash(PASSWORD)
    return FAST


def login_failures(session) -> list[dict]:
    rows = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.LOGIN_FAIL).order_by(AuditEvent.seq))
    return [{"actor": e.actor, "outcome": e.outcome, **json.loads(e.details)} for e in rows]


def test_stored_hash_is_argon2id_and_verifies_with_argon2(db, world):
    # carol through add_person's own hashing (the world stores alice's hash made once a session)
    with transaction(db) as s:
        policy.add_person(s, username="carol", display_name="Carol", password=PASSWORD, actor=ACTOR)
    with db() as s:
        stored = policy.get_person(s, "carol").password_hash
        assert LocalIdentityStore().authenticate(s, "carol", PASSWORD).username == "carol"
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, PASSWORD)


def test_right_password_authenticates_wrong_does_not(db, fast_alice):
    store = LocalIdentityStore(hasher=fast_alice)
    with transaction(db) as s:
        assert store.authenticate(s, "alice", PASSWORD).username == "alice"
        assert store.authenticate(s, "ＡＬＩＣＥ", PASSWORD).username == "alice"  # full-width is the same account
        assert store.authenticate(s, "alice", PASSWORD + "x") is None
        assert store.authenticate(s, "alice", "") is None
        assert store.authenticate(s, "rita", "anything at all") is None  # no password set
        assert store.authenticate(s, "ghost", PASSWORD) is None
        assert store.authenticate(s, "alice)(|(uid=*", PASSWORD) is None
    with db() as s:
        failures = login_failures(s)
    assert [f["actor"] for f in failures] == ["alice", "alice", "rita", "ghost", "alice)(|(uid=*"]
    assert all(f["outcome"] is Outcome.DENIED and f["reason"] == "BAD_CREDENTIALS" for f in failures)
    assert [f["actor"] for f in failures if f.get("known") is False] == ["ghost", "alice)(|(uid=*"]


def test_brute_force_locks_account_even_for_the_right_password_until_unlocked(db, fast_alice):
    store = LocalIdentityStore(hasher=fast_alice, max_failed_logins=3, lockout=timedelta(minutes=15))
    now = datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)
    with transaction(db) as s:
        for guess in ("guess-one-1", "guess-two-2", "guess-three-3"):
            assert store.check_login(s, "alice", guess, now).reason is DenialReason.BAD_CREDENTIALS
        result = store.check_login(s, "alice", PASSWORD, now + timedelta(minutes=1))
        assert result.person is None and result.reason is DenialReason.ACCOUNT_LOCKED
        assert policy.get_person(s, "alice").locked_until == now + timedelta(minutes=15)
    with db() as s:
        failures = login_failures(s)
    assert failures[2]["locked_until"] == (now + timedelta(minutes=15)).isoformat()
    assert failures[3]["reason"] == "ACCOUNT_LOCKED"
    # The lock expires on its own ...
    with transaction(db) as s:
        assert store.authenticate(s, "alice", PASSWORD, now + timedelta(minutes=16)) is not None
    # ... and an administrator can lift it at once.
    with transaction(db) as s:
        for guess in ("guess-one-1", "guess-two-2", "guess-three-3"):
            store.check_login(s, "alice", guess, now + timedelta(minutes=20))
        assert store.authenticate(s, "alice", PASSWORD, now + timedelta(minutes=21)) is None
        policy.unlock_person(s, "alice", actor=ACTOR)
    with transaction(db) as s:
        assert store.authenticate(s, "alice", PASSWORD, now + timedelta(minutes=21)) is not None
        person = policy.get_person(s, "alice")
        assert (person.failed_logins, person.locked_until) == (0, None)


def test_success_resets_failure_count(db, fast_alice):
    store = LocalIdentityStore(hasher=fast_alice, max_failed_logins=3)
    with transaction(db) as s:
        store.authenticate(s, "alice", "wrong-password-1")
        store.authenticate(s, "alice", "wrong-password-2")
        assert policy.get_person(s, "alice").failed_logins == 2
        store.authenticate(s, "alice", PASSWORD)
        assert policy.get_person(s, "alice").failed_logins == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unknown_user_costs_as_much_as_a_known_one(db, world):
    """No timing oracle for which accounts exist: both paths run one argon2 verify."""
    store = LocalIdentityStore()

    def median_seconds(username: str) -> float:
        times = []
        with transaction(db) as s:
            for _ in range(5):
                start = time.perf_counter()
                store.authenticate(s, username, "wrong-password-x")
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    known, unknown = median_seconds("alice"), median_seconds("nobody")
    assert unknown > 0.5 * known, (known, unknown)


@pytest.mark.parametrize("raw, expected", [("Alice", "alice"), ("ａｌｉｃｅ", "alice"), ("_svc.x-1", "_svc.x-1")])
def test_canonical_username(raw, expected):
    assert canonical_username(raw) == expected


@pytest.mark.parametrize("raw", ["", "a b", "ａ ｂ", "αlice", "-x", "x" * 40, "a\u0000"])
def test_canonical_username_refuses(raw):
    with pytest.raises(UserError, match="not allowed"):
        canonical_username(raw)


@pytest.mark.parametrize("prechecked", [False, True], ids=["hashed-in-transaction", "hub-precheck"])
def test_parallel_guesses_are_all_counted(db, world, prechecked):
    """A brute force spread over parallel requests cannot lose failure counts, also on the hub's path
    (the hash checked by `precheck` outside the transaction, then `check_login` in it)."""
    import threading

    store = LocalIdentityStore(max_failed_logins=100)

    def guess(k: int) -> None:
        checked = None
        if prechecked:
            with db() as s:
                checked = store.precheck(s, "alice", f"parallel-guess-{k}")
        with transaction(db) as s:
            assert store.check_login(s, "alice", f"parallel-guess-{k}", checked=checked).person is None

    threads = [threading.Thread(target=guess, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db() as s:
        assert policy.get_person(s, "alice").failed_logins == 8
        assert len(login_failures(s)) == 8


class CountingHasher(PasswordHasher):
    """argon2 as it is, counting verifications."""

    verifications = 0

    def verify(self, hash, password):  # noqa: A002 (argon2's own parameter name)
        CountingHasher.verifications += 1
        return super().verify(hash, password)


def test_a_precheck_stands_only_for_the_hash_it_verified(db, world):
    """The hash is verified before the write transaction (`precheck`); `check_login` takes that verdict only
    while the stored hash is the same, so a password changed in between is not let in on the old one."""
    store = LocalIdentityStore(hasher=CountingHasher())
    with db() as s:
        right = store.precheck(s, "alice", PASSWORD)
    assert right.ok
    CountingHasher.verifications = 0
    with transaction(db) as s:
        assert store.check_login(s, "alice", PASSWORD, checked=right).person.username == "alice"
    assert CountingHasher.verifications == 0  # the verdict was used, not hashed again under the lock
    with transaction(db) as s:
        policy.set_password(s, "alice", "a new passphrase 2026", actor=ACTOR)
    with transaction(db) as s:  # the precheck of the old password, after the change: verified again, refused
        assert store.check_login(s, "alice", PASSWORD, checked=right).reason is DenialReason.BAD_CREDENTIALS
    assert CountingHasher.verifications == 1

