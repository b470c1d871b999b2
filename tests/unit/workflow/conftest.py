"""Fixtures of the workflow tests (helpers in workflow_factories.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from workflow_factories import World, make_world, write_world_datasets


@pytest.fixture(scope="session")
def world_datasets(tmp_path_factory) -> Path:
    """The world's dataset files written once a session; each world copies them (removed redundancy: every
    test wrote them again, ~0.1 CPU-s)."""
    folder = tmp_path_factory.mktemp("world-datasets")
    write_world_datasets(folder)
    return folder


@pytest.fixture
def world(db, settings, world_datasets) -> World:
    return make_world(db, settings, world_datasets)


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
