"""Helpers for access_control tests: a small policy world and a 'refused and
nothing changed' assertion that compares every policy and ledger row."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access_control import policy
from onsite_base.db import Base, transaction
from access_control.enums import Role
from access_control.identity import LocalIdentityStore
from onsite_base.errors import UserError
from disclosure_review.sdc.rules import preset_names

ACTOR = "admin:test"
POLICY_TABLES = (
    "person", "person_role", "project", "membership", "dataset", "dataset_grant", "facility", "terminal", "audit_event",
    "facility_hours", "facility_closure", "accreditation", "booking", "facility_manager",
)
PASSWORD = "correct horse battery"
SHA = "ab" * 32


def snapshot(db: sessionmaker[Session]) -> dict[str, list[tuple]]:
    """Every row of every policy and ledger table, for before/after comparison."""
    with db() as session:
        return {
            name: sorted(tuple(row) for row in session.execute(select(Base.metadata.tables[name])))
            for name in POLICY_TABLES
        }


@pytest.fixture
def refused(db) -> Callable[[Callable[[Session], object]], str]:
    """`refused(action)` runs action in a transaction, asserts it raises UserError
    and changed no row; returns the message."""

    def check(action: Callable[[Session], object]) -> str:
        before = snapshot(db)
        with pytest.raises(UserError) as caught:
            with transaction(db) as session:
                action(session)
        assert snapshot(db) == before
        return str(caught.value)

    return check


@dataclass(frozen=True)
class World:
    """alice: researcher in p2026-001 (2026-04-01..2027-03-31) with dataset lfs granted;
    rita: reviewer; adam: administrator; facility Tokyo with terminals 127.0.0.1 and 2001:db8::/64."""

    project: str = "p2026-001"
    start: date = date(2026, 4, 1)
    end: date = date(2027, 3, 31)
    """Changes are made as on `start` (today=…): the dates stay fixed while the calendar moves on."""


@pytest.fixture(scope="session")
def password_hash() -> str:
    """alice's password hashed once a session by the production store (argon2id, its password rules):
    each hash costs ~0.2 CPU-s, which the world fixture paid for every test."""
    return LocalIdentityStore().hash_password(PASSWORD, "alice")


@pytest.fixture
def world(db, password_hash) -> World:
    """alice's PASSWORD is stored as the session's one hash of it (her PERSON_ADD event says no
    password was given); add_person's own hashing is tested in test_access_identity."""
    w = World()
    with transaction(db) as s:
        policy.add_person(s, username="alice", display_name="Alice", roles=[Role.RESEARCHER], actor=ACTOR).password_hash = password_hash
        policy.add_person(s, username="rita", display_name="Rita", roles=[Role.REVIEWER], actor=ACTOR)
        policy.add_person(s, username="adam", display_name="Adam", roles=[Role.ADMINISTRATOR], actor=ACTOR)
        policy.add_project(s, presets=preset_names(), project_id=w.project, title="Income", start_date=w.start, end_date=w.end, actor=ACTOR, today=w.start)
        policy.add_member(s, w.project, "alice", actor=ACTOR)
        policy.register_dataset(
            s, dataset_id="lfs", title_ja="労働力調査", title_en="Labour force survey", path="/d/lfs.duckdb", rows=10, source_sha256=SHA, actor=ACTOR
        )
        policy.add_grant(s, project_id=w.project, dataset_id="lfs", valid_from=w.start, valid_until=w.end, actor=ACTOR, today=w.start)
        policy.add_facility(s, name="Tokyo", actor=ACTOR)
        policy.add_terminal(s, facility="Tokyo", address="127.0.0.1", label="seat 1", actor=ACTOR)
        policy.add_terminal(s, facility="Tokyo", address="2001:db8::/64", actor=ACTOR)
    return w


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url_empty(request, tmp_path) -> str:
    """An empty (unmigrated) store on each backend in turn."""
    return f"sqlite:///{tmp_path / 'empty.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
