"""Fixtures of the workflow tests (helpers in workflow_factories.py)."""
from __future__ import annotations

import pytest
from workflow_factories import World, make_world


@pytest.fixture
def world(db, settings) -> World:
    return make_world(db, settings)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at(request, tmp_path):
    """`url, cfg, engine = database_at("wf0002")`: a database migrated up to that revision, for migration tests."""
    from alembic import command

    from onsite_base.db import make_engine
    from onsite.migrations import alembic_config

    url = f"sqlite:///{tmp_path / 'old.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engines = []

    def at(revision: str):
        cfg = alembic_config(url)
        command.upgrade(cfg, "ac0001")  # the access-control tables the workflow's refer to
        command.upgrade(cfg, revision)
        engines.append(make_engine(url))
        return url, cfg, engines[-1]

    yield at
    for engine in engines:
        engine.dispose()
