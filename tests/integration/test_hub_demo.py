"""`onsite up`'s set-up: everything the demo needs, and nothing twice (SQLite and PostgreSQL)."""
from __future__ import annotations

import stat
from datetime import date, datetime, timezone

import duckdb
import pytest

from access_control import policy
from onsite_base.db import make_engine, session_factory
from access_control.entry import decide_entry, load_entry_facts
from access_control.identity import LocalIdentityStore
from onsite.demo import DEMO_DATASET, DEMO_PROJECT, LOGINS_FILE, banner, read_logins, set_up_demo

pytestmark = pytest.mark.integration


def snapshot(settings):
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as session:
            return {
                "people": {p.username: sorted(r.value for r in p.role_set) for p in policy.list_people(session)},
                "projects": [p.id for p in policy.list_projects(session)],
                "members": sorted(p.username for p in policy.members_of(session, DEMO_PROJECT)),
                "grants": [(g.project_id, g.dataset_id) for g in policy.list_grants(session)],
                "terminals": sorted(t.address for t in policy.list_terminals(session)),
                "granted_today": [d.id for d in policy.granted_datasets(session, DEMO_PROJECT, date.today())],
            }
    finally:
        engine.dispose()


def test_set_up_twice_creates_everything_once(settings):
    first = set_up_demo(settings, rows=400, progress=False)
    dataset_file = settings.datasets_dir / f"{DEMO_DATASET}.duckdb"
    built = dataset_file.stat().st_mtime_ns
    before = snapshot(settings)
    second = set_up_demo(settings, rows=400, progress=False)

    assert [(l.username, l.password) for l in second] == [(l.username, l.password) for l in first]
    assert dataset_file.stat().st_mtime_ns == built  # not ingested again
    assert snapshot(settings) == before
    assert before["people"] == {"sato": ["REVIEWER"], "suzuki": ["REVIEWER"], "takahashi": ["ADMINISTRATOR"],
                                "tanaka": ["RESEARCHER"]}
    assert before["members"] == ["tanaka"]
    assert before["grants"] == [(DEMO_PROJECT, DEMO_DATASET)]
    assert before["granted_today"] == [DEMO_DATASET]
    assert len(before["terminals"]) == 2
    with duckdb.connect(str(dataset_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM microdata").fetchone()[0] == 400


def test_demo_logins_are_kept_private_and_work(settings):
    logins = set_up_demo(settings, rows=300, progress=False)
    path = settings.runtime_dir / LOGINS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_logins(path) == {l.username: l.password for l in logins}
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as session:
            store = LocalIdentityStore()
            for login in logins:
                assert store.authenticate(session, login.username, login.password) is not None
            # from this machine, every demo person may enter
            for login in logins:
                facts = load_entry_facts(session, login.username, "127.0.0.1")
                assert decide_entry(facts, datetime.now(timezone.utc)).allowed, login.username
            session.rollback()
    finally:
        engine.dispose()
    text = banner("http://127.0.0.1:8000/", logins, path)
    for login in logins:
        assert login.username in text and login.password in text


def test_lost_logins_file_issues_new_passwords(settings):
    first = {l.username: l.password for l in set_up_demo(settings, rows=300, progress=False)}
    (settings.runtime_dir / LOGINS_FILE).unlink()
    second = {l.username: l.password for l in set_up_demo(settings, rows=300, progress=False)}
    assert second.keys() == first.keys()
    assert all(second[name] != first[name] for name in first)
