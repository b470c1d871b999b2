"""Policy-store set-up shared by the hub tests: the demo, plus what each attack needs."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from access_control import policy
from onsite_base.db import make_engine, session_factory, transaction
from access_control.enums import Role
from access_control.models import AuditEvent
from onsite.demo import DEMO_PROJECT, DemoLogin, ensure_dataset, set_up_demo
from onsite_base.settings import Settings
from disclosure_review.sdc.rules import preset_names

OTHER_DATASET = "lfs_other"
EXPIRED_PROJECT = "p-expired"
EXPIRED_RESEARCHER = "yamada"
EXPIRED_PASSWORD = "Ended-project-2026"
LOCKED_RESEARCHER = "ito"
LOCKED_PASSWORD = "Right-password-2026"
SUSPENDED_PROJECT = "p-suspend-me"
SUSPENDED_RESEARCHER = "kimura"
SUSPENDED_PASSWORD = "Suspended-project-2026"


def seed_demo(home: Path, *, rows: int = 3000) -> tuple[Settings, dict[str, DemoLogin]]:
    """`onsite up`'s set-up on a small dataset, in `home` with the embedded SQLite store."""
    settings = Settings(home=home, db_url=f"sqlite:///{home / 'onsite.sqlite'}")
    logins = set_up_demo(settings, rows=rows, progress=False)
    return settings, {login.username: login for login in logins}


def seed_attacks(settings: Settings) -> None:
    """A dataset no project is granted, a researcher whose only project ended
    yesterday, and one whose project is active (until a test suspends it)."""
    engine = make_engine(settings.db_url)
    try:
        factory = session_factory(engine)
        ensure_dataset(settings, factory, dataset_id=OTHER_DATASET, rows=500, seed=7, progress=False)
        yesterday = date.today() - timedelta(days=1)
        with transaction(factory) as session:
            policy.add_person(session, username=EXPIRED_RESEARCHER, display_name="山田 太郎", actor="test",
                              roles=[Role.RESEARCHER], password=EXPIRED_PASSWORD)
            policy.add_project(session, presets=preset_names(), project_id=EXPIRED_PROJECT, title="Ended project",
                               start_date=yesterday - timedelta(days=60), end_date=yesterday, actor="test",
                               today=yesterday)  # registered while it ran
            policy.add_member(session, EXPIRED_PROJECT, EXPIRED_RESEARCHER, actor="test")
            policy.add_person(session, username=LOCKED_RESEARCHER, display_name="伊藤 蓮", actor="test",
                              roles=[Role.RESEARCHER], password=LOCKED_PASSWORD)
            policy.add_member(session, DEMO_PROJECT, LOCKED_RESEARCHER, actor="test")
            policy.add_person(session, username=SUSPENDED_RESEARCHER, display_name="木村 花子", actor="test",
                              roles=[Role.RESEARCHER], password=SUSPENDED_PASSWORD)
            policy.add_project(session, presets=preset_names(), project_id=SUSPENDED_PROJECT, title="Project about to be suspended",
                               start_date=yesterday, end_date=yesterday + timedelta(days=30), actor="test")
            policy.add_member(session, SUSPENDED_PROJECT, SUSPENDED_RESEARCHER, actor="test")
    finally:
        engine.dispose()


def audit_events(settings: Settings, action: str, actor: str | None = None) -> list[dict]:
    """Ledger events of one type (optionally by one actor), oldest first, details decoded."""
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as session:
            rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
            return [
                {"actor": e.actor, "outcome": e.outcome.value, "object": e.object, "details": json.loads(e.details)}
                for e in rows
                if e.action.value == action and (actor is None or e.actor == actor)
            ]
    finally:
        engine.dispose()


def suspend_project(settings: Settings, project_id: str) -> None:
    from access_control.models import ProjectStatus

    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            policy.change_project(session, project_id, actor="test", status=ProjectStatus.SUSPENDED)
    finally:
        engine.dispose()


def revoke_grant(settings: Settings, project_id: str, dataset_id: str) -> None:
    """Revoke the project's grant of the dataset, as an administrator would."""
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            grant = next(g for g in policy.list_grants(session, project_id) if g.dataset_id == dataset_id)
            policy.revoke_grant(session, grant.id, actor="test")
    finally:
        engine.dispose()
