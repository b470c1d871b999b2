"""Fail closed: when the ledger cannot be written, the actions it must record are refused and nothing changes.

The attacks on the store, each against the real `onsite` command in a fresh process: the disk is
full (the SQLite store on a tiny tmpfs, filled), the store is read-only (the SQLite store's folder
bind-mounted read-only; PostgreSQL switched to read-only transactions), the database is gone
(PostgreSQL refusing connections). The session events' side of it (code does not run unrecorded)
is tests/security/test_audit_fail_closed.py.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.integration

REFUSED = "refused: the audit ledger cannot record this action"


def onsite(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onsite.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def environment(tmp_path: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    return env | {"ONSITE_HOME": str(tmp_path / "home"), "ONSITE_DB_URL": db_url, "LANG": "C.UTF-8",
                  "ONSITE_ANCHOR_FILE": str(tmp_path / "anchor.jsonl"),
                  "ONSITE_LEDGER_KEY_FILE": str(tmp_path / "keys" / "ledger.pem")}


@contextlib.contextmanager
def mounted(*mount_args: str, target: Path):
    target.mkdir(exist_ok=True)
    result = subprocess.run(["mount", *mount_args, str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {result.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def people_and_events(path: Path) -> tuple[int, int]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return (con.execute("SELECT COUNT(*) FROM person").fetchone()[0],
                con.execute("SELECT COUNT(*) FROM audit_event").fetchone()[0])
    finally:
        con.close()


def test_a_full_disk_refuses_the_change_and_records_nothing(tmp_path, sqlite_template):
    with mounted("-t", "tmpfs", "-o", "size=2m", "tmpfs", target=tmp_path / "small") as disk:
        store = Path(shutil.copyfile(sqlite_template, disk / "onsite.sqlite"))
        env = environment(tmp_path, f"sqlite:///{store}")
        assert onsite(env, "admin", "person", "add", "before", "--name", "B", "--no-password").returncode == 0
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
        result = onsite(env, "admin", "person", "add", "during", "--name", "D" * 150, "--email", "d@example.jp",
                        "--no-password")
        assert result.returncode == 2, result.stderr
        assert REFUSED in result.stderr and "Check the disk space" in result.stderr and "Traceback" not in result.stderr
        filler.unlink()
        assert people_and_events(store) == (1, 1)  # the refused person is neither stored nor recorded
        assert onsite(env, "audit", "verify").returncode == 0


def test_a_read_only_store_refuses_the_change(tmp_path, sqlite_template):
    folder = tmp_path / "store"
    folder.mkdir()
    store = Path(shutil.copyfile(sqlite_template, folder / "onsite.sqlite"))
    env = environment(tmp_path, f"sqlite:///{tmp_path / 'ro' / 'onsite.sqlite'}")
    with mounted("--bind", str(folder), target=tmp_path / "ro") as ro:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        result = onsite(env, "admin", "person", "add", "during", "--name", "D", "--no-password")
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert REFUSED in result.stderr or "cannot connect to the Onsite store" in result.stderr, result.stderr
        assert "nothing was changed" in result.stderr
    assert people_and_events(store) == (0, 0)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_read_only_or_gone_refuses_the_change(tmp_path, pg_admin_url, db_url):
    name = make_url(db_url).database
    plain = db_url.replace("+psycopg", "", 1)
    env = environment(tmp_path, db_url)

    def alter(setting: str) -> None:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" {setting}')

    try:
        assert onsite(env, "admin", "person", "add", "before", "--name", "B", "--no-password").returncode == 0
        alter("SET default_transaction_read_only = on")
        result = onsite(env, "admin", "person", "add", "during", "--name", "D", "--no-password")
        assert result.returncode == 2 and REFUSED in result.stderr and "Traceback" not in result.stderr, result.stderr
        ja = onsite(env | {"LANG": "ja_JP.UTF-8"}, "admin", "person", "add", "during", "--name", "D", "--no-password")
        assert ja.returncode == 2 and "監査台帳に記録できないため" in ja.stderr, ja.stderr
        alter("RESET default_transaction_read_only")
        alter("ALLOW_CONNECTIONS false")
        gone = onsite(env, "admin", "person", "add", "during", "--name", "D", "--no-password")
        assert gone.returncode == 2 and "cannot connect to the Onsite store" in gone.stderr, gone.stderr
        assert "nothing was changed" in gone.stderr and "Traceback" not in gone.stderr
    finally:
        alter("ALLOW_CONNECTIONS true")
    with psycopg.connect(plain) as con:
        assert con.execute("SELECT COUNT(*) FROM person").fetchone()[0] == 1
        assert con.execute("SELECT COUNT(*) FROM audit_event").fetchone()[0] == 1
    assert onsite(env, "audit", "verify").returncode == 0
