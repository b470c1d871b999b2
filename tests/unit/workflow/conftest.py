"""Fixtures of the workflow tests (helpers in workflow_factories.py)."""
from __future__ import annotations

import pytest
from workflow_factories import World, make_world


@pytest.fixture
def world(db, settings) -> World:
    return make_world(db, settings)
