"""The web apps the integration tests start, a process per test, forked from one that imported the app
once per test worker (functional/appfork.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functional.appfork import AppForker

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def review_app() -> Iterator[AppForker]:
    forker = AppForker(HERE / "review_web_server.py")
    yield forker
    forker.close()


@pytest.fixture(scope="session")
def admin_app() -> Iterator[AppForker]:
    forker = AppForker(HERE / "admin_web_server.py")
    yield forker
    forker.close()
