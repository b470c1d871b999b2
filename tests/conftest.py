"""Fixtures shared by every tier: databases on SQLite and on a real PostgreSQL."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from onsite_base.db import make_engine, session_factory
from onsite.migrations import migrate
from onsite_base.settings import Settings

PG_ADMIN_URL = os.environ.get("ONSITE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _pg_available():
        pytest.skip(f"no PostgreSQL answers at {PG_ADMIN_URL} (make test starts one)")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"onsite_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(pg_admin_url).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A migrated policy/workflow/audit store, on each backend in turn."""
    url = f"sqlite:///{tmp_path / 'onsite.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    migrate(url)
    return url


@pytest.fixture
def db(db_url):
    """A session factory over the migrated store."""
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(home=tmp_path / "home", db_url=db_url)


@pytest.fixture(scope="session", autouse=True)
def _remove_session_accounts_created_by_tests():
    """Hub tests running as root create OS accounts and dataset groups (hub_config.isolation);
    remove the ones this run created, leaving any that existed before."""
    import grp
    import pwd

    def onsite_names() -> tuple[set[str], set[str]]:
        users = {p.pw_name for p in pwd.getpwall() if p.pw_name.startswith("onsite")}
        groups = {g.gr_name for g in grp.getgrall() if g.gr_name.startswith("onsite")}
        return users, groups

    users_before, groups_before = onsite_names()
    yield
    if os.geteuid() != 0:
        return
    from hub_config.isolation import remove_account, remove_group

    users_after, groups_after = onsite_names()
    for name in users_after - users_before:
        remove_account(name)
    for name in groups_after - groups_before - (users_after - users_before):
        remove_group(name)
