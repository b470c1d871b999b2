"""The SQLite store is private from the moment it exists, and ledger anchors have a file of their own
per store, outside the state directory. Real files, real SQLite; no hub."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from access_control.audit import SYSTEM_ANCHOR_DIR, default_anchor_file
from onsite_base.db import make_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_store_and_its_folder_are_private(tmp_path, usual_umask):
    store = tmp_path / "state" / "onsite.sqlite"
    engine = make_engine(f"sqlite:///{store}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        wal = store.with_name(store.name + "-wal")
        assert wal.exists() and mode(wal) == 0o600  # SQLite gives its WAL the store's mode
    engine.dispose()
    assert (mode(store), mode(store.parent)) == (0o600, 0o700)


def test_an_existing_store_others_could_read_is_closed(tmp_path, usual_umask):
    store = tmp_path / "onsite.sqlite"
    for path in (store, store.with_name(store.name + "-wal")):
        path.touch()
        os.chmod(path, 0o644)
    folder_mode = mode(tmp_path)
    make_engine(f"sqlite:///{store}").dispose()
    assert mode(store) == 0o600 and mode(store.with_name(store.name + "-wal")) == 0o600
    assert mode(tmp_path) == folder_mode  # an existing folder is the operator's to set


def test_each_store_has_its_own_anchor_file_named_without_its_password():
    a = default_anchor_file("postgresql+psycopg://onsite:secret@db/onsite")
    assert a == default_anchor_file("postgresql+psycopg://onsite:other@db/onsite")  # a password change keeps it
    assert a != default_anchor_file("postgresql+psycopg://onsite:secret@db/onsite_test")
    assert "secret" not in str(a)
    if os.geteuid() == 0:
        assert a.parent == SYSTEM_ANCHOR_DIR


def test_an_account_without_root_keeps_anchors_in_its_state_directory(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("the per-user place is for accounts other than root")
    path = default_anchor_file("sqlite:////srv/onsite/onsite.sqlite", {"XDG_STATE_HOME": str(tmp_path)})
    assert path.parent == tmp_path / "onsite-anchors"
