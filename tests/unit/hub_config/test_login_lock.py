"""A log-in's password hash runs outside the policy store's write lock (on SQLite, the whole store's)."""
from __future__ import annotations

import sqlite3

import pytest
from argon2 import PasswordHasher

from access_control import policy
from access_control.identity import LocalIdentityStore
from hub_config.authenticator import OnsiteAuthenticator
from onsite_base.db import make_engine, session_factory, transaction
from onsite_base.settings import Settings

PASSWORD = "correct horse battery"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_other_writers_are_not_held_up_by_a_password_hash(db_url, tmp_path):
    engine = make_engine(db_url)
    with transaction(session_factory(engine)) as s:
        policy.add_person(s, username="alice", display_name="Alice", password=PASSWORD, actor="admin:test")
    engine.dispose()
    store_file = db_url.split("///", 1)[1]
    writable_during_hash: list[bool] = []

    class Probe(PasswordHasher):
        """argon2, trying meanwhile to take the store's write lock as any other log-in or ledger append would."""

        def verify(self, hash, password):  # noqa: A002 (argon2's own parameter name)
            other = sqlite3.connect(store_file, timeout=0.2, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                writable_during_hash.append(True)
            except sqlite3.OperationalError:  # database is locked
                writable_during_hash.append(False)
            finally:
                other.close()
            return super().verify(hash, password)

    authenticator = OnsiteAuthenticator(settings=Settings(home=tmp_path / "home", db_url=db_url))
    authenticator._identity_store = LocalIdentityStore(hasher=Probe())
    assert authenticator._check_local_password("alice", PASSWORD) is None
    assert authenticator._check_local_password("alice", "a wrong guess 1") is not None
    assert writable_during_hash == [True, True]  # each log-in hashed once, and not under the lock
