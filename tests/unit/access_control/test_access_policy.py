"""Policy actions: each happy path, and bad input refused with nothing changed."""
from __future__ import annotations

import functools
import json
from datetime import date

import pytest
from sqlalchemy import select

from access_control import policy
from onsite_base.db import transaction
from access_control.enums import AuditEventType, Role
from access_control.models import AuditEvent, Grant, ProjectStatus, Terminal
from disclosure_review.sdc.rules import preset_names

ACTOR = "admin:test"
SHA = "cd" * 32


def last_event(session) -> AuditEvent:
    return session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()


# ---------------------------------------------------------------- people and roles


def test_add_person_normalises_full_width_name_and_records_event(db):
    with transaction(db) as s:
        person = policy.add_person(s, username="ｂｏｂ", display_name="Bob", roles=[Role.RESEARCHER, Role.REVIEWER], actor=ACTOR)
        assert person.username == "bob"
    with transaction(db) as s:
        assert policy.person_roles(s, "bob") == {Role.RESEARCHER, Role.REVIEWER}
        assert policy.get_person(s, "BOB").username == "bob"
        event = last_event(s)
        assert (event.action, event.actor, event.object) == (AuditEventType.PERSON_ADD, ACTOR, "person:bob")
        assert json.loads(event.details) == {"roles": ["RESEARCHER", "REVIEWER"], "password_set": False}


@pytest.mark.parametrize(
    "username, fragment",
    [
        ("alice)(|(uid=*", "not allowed"),
        ("*)(uid=*", "not allowed"),
        ("root user", "not allowed"),
        ("1abc", "not allowed"),
        ("a" * 33, "not allowed"),
        ("аlice", "not allowed"),  # Cyrillic а: a look-alike that NFKC does not map to ASCII
        ("ａｌｉｃｅ", "already exists"),  # full-width: the same account as alice
    ],
)
def test_add_person_refuses_bad_or_ambiguous_names(db, world, refused, username, fragment):
    message = refused(lambda s: policy.add_person(s, username=username, display_name="X", actor=ACTOR))
    assert fragment in message


def test_add_person_refuses_bad_email_and_short_password(db, world, refused):
    assert "e-mail" in refused(lambda s: policy.add_person(s, username="carol", display_name="C", email="nope", actor=ACTOR))
    assert "too short" in refused(lambda s: policy.add_person(s, username="carol", display_name="C", password="short", actor=ACTOR))
    assert "user name" in refused(lambda s: policy.add_person(s, username="carol", display_name="C", password="xx-carol-yy-1", actor=ACTOR))
    assert "empty" in refused(lambda s: policy.add_person(s, username="carol", display_name="  ", actor=ACTOR))


def test_roles_grant_and_revoke(db, world, refused):
    with transaction(db) as s:
        policy.grant_role(s, "alice", Role.REVIEWER, actor=ACTOR)
    with transaction(db) as s:
        assert policy.person_roles(s, "alice") == {Role.RESEARCHER, Role.REVIEWER}
        policy.revoke_role(s, "alice", Role.RESEARCHER, actor=ACTOR)
    with transaction(db) as s:
        assert policy.person_roles(s, "alice") == {Role.REVIEWER}
        assert last_event(s).action is AuditEventType.ROLE_REVOKE
    assert "already has" in refused(lambda s: policy.grant_role(s, "alice", Role.REVIEWER, actor=ACTOR))
    assert "does not have" in refused(lambda s: policy.revoke_role(s, "alice", Role.ADMINISTRATOR, actor=ACTOR))
    assert "unknown person" in refused(lambda s: policy.grant_role(s, "nobody", Role.REVIEWER, actor=ACTOR))


def test_disable_enable_unlock(db, world, refused):
    with transaction(db) as s:
        policy.set_disabled(s, "alice", True, actor=ACTOR)
    with transaction(db) as s:
        assert policy.get_person(s, "alice").disabled
    assert "already disabled" in refused(lambda s: policy.set_disabled(s, "alice", True, actor=ACTOR))
    with transaction(db) as s:
        policy.set_disabled(s, "alice", False, actor=ACTOR)
    assert "not locked" in refused(lambda s: policy.unlock_person(s, "alice", actor=ACTOR))


def test_set_password_replaces_hash_and_refuses_weak(db, world, refused):
    with db() as s:
        old = policy.get_person(s, "alice").password_hash
    with transaction(db) as s:
        policy.set_password(s, "alice", "a new long passphrase", actor=ACTOR)
    with db() as s:
        new = policy.get_person(s, "alice").password_hash
    assert new != old and new.startswith("$argon2id$")
    assert "too short" in refused(lambda s: policy.set_password(s, "alice", "abc", actor=ACTOR))
    assert "too simple" in refused(lambda s: policy.set_password(s, "alice", "aaaaaaaaaaaaaaa", actor=ACTOR))
    assert "unknown person" in refused(lambda s: policy.set_password(s, "zed", "a new long passphrase", actor=ACTOR))


# ---------------------------------------------------------------- projects and members


def test_add_and_change_project(db, world, refused):
    with transaction(db) as s:
        policy.add_project(
            s, project_id="p2026-002", title="Wages", start_date=date(2026, 1, 1), end_date=date(2026, 6, 30), actor=ACTOR, legal_basis="Art. 33",
            today=world.start, presets=preset_names(),
        )
    with transaction(db) as s:
        policy.change_project(s, "p2026-002", end_date=date(2026, 9, 30), status=ProjectStatus.SUSPENDED, actor=ACTOR, today=world.start)
    with transaction(db) as s:
        project = policy.require_project(s, "p2026-002")
        assert (project.end_date, project.status, project.legal_basis) == (date(2026, 9, 30), ProjectStatus.SUSPENDED, "Art. 33")
        details = json.loads(last_event(s).details)
        assert details == {
            "before": {"end_date": "2026-06-30", "status": "ACTIVE"},
            "after": {"end_date": "2026-09-30", "status": "SUSPENDED"},
        }


def test_project_bad_input(db, world, refused):
    def add(s, **values):
        return policy.add_project(s, presets=preset_names(), **values, today=world.start)
    assert "before the start" in refused(
        lambda s: add(s, project_id="p2026-009", title="T", start_date=date(2026, 5, 1), end_date=date(2026, 4, 30), actor=ACTOR)
    )
    assert "already exists" in refused(
        lambda s: add(s, project_id=world.project, title="T", start_date=date(2026, 5, 1), end_date=date(2026, 6, 1), actor=ACTOR)
    )
    assert "not allowed" in refused(
        lambda s: add(s, project_id="P 1", title="T", start_date=date(2026, 5, 1), end_date=date(2026, 6, 1), actor=ACTOR)
    )
    # A change that would put the end before the (unchanged) start.
    assert "before the start" in refused(lambda s: policy.change_project(s, world.project, end_date=date(2026, 3, 1), actor=ACTOR, today=world.start))
    assert "nothing to change" in refused(lambda s: policy.change_project(s, world.project, title="Income", actor=ACTOR))
    assert "unknown project" in refused(lambda s: policy.change_project(s, "p1999-001", title="X", actor=ACTOR))


def test_a_preset_the_review_service_does_not_know_is_refused_by_policy_itself(db, world, refused):
    """Not only the faces' forms: policy called directly checks the preset against the names it is given."""
    def add(s, **values):
        return policy.add_project(s, project_id="p2026-010", title="T", start_date=date(2026, 4, 1),
                                  end_date=date(2026, 9, 30), actor=ACTOR, today=world.start, **values)
    assert "unknown rule preset 'acro-defualt'" in refused(lambda s: add(s, preset="acro-defualt", presets=preset_names()))
    assert "unknown rule preset 'acro-default'" in refused(lambda s: add(s, presets=()))  # no names given: none passes
    assert "unknown rule preset 'nope'" in refused(
        lambda s: policy.change_project(s, world.project, preset="nope", presets=preset_names(), actor=ACTOR))
    assert "unknown rule preset 'jp-onsite'" in refused(
        lambda s: policy.change_project(s, world.project, preset="jp-onsite", actor=ACTOR))
    with transaction(db) as s:
        policy.change_project(s, world.project, preset="jp-onsite", presets=preset_names(), actor=ACTOR)
        assert policy.require_project(s, world.project).preset == "jp-onsite"


def test_members(db, world, refused):
    with transaction(db) as s:
        policy.add_member(s, world.project, "rita", actor=ACTOR)
    with transaction(db) as s:
        assert [p.username for p in policy.members_of(s, world.project)] == ["alice", "rita"]
        assert [p.id for p in policy.projects_of(s, "rita")] == [world.project]
        policy.remove_member(s, world.project, "rita", actor=ACTOR)
    with transaction(db) as s:
        assert policy.projects_of(s, "rita") == []
    assert "already a member" in refused(lambda s: policy.add_member(s, world.project, "alice", actor=ACTOR))
    assert "not a member" in refused(lambda s: policy.remove_member(s, world.project, "rita", actor=ACTOR))
    assert "unknown person" in refused(lambda s: policy.add_member(s, world.project, "ghost", actor=ACTOR))
    assert "unknown project" in refused(lambda s: policy.add_member(s, "p0000-000", "alice", actor=ACTOR))


def test_active_projects_respect_dates_and_status(db, world):
    with transaction(db) as s:
        assert policy.active_projects(s, "alice", world.start) != []
        assert policy.active_projects(s, "alice", world.end) != []  # end date is inclusive
        assert policy.active_projects(s, "alice", date(2026, 3, 31)) == []
        assert policy.active_projects(s, "alice", date(2027, 4, 1)) == []
        assert policy.active_projects(s, "nobody", world.start) == []
        policy.change_project(s, world.project, status=ProjectStatus.CLOSED, actor=ACTOR)
    with transaction(db) as s:
        assert policy.active_projects(s, "alice", date(2026, 6, 1)) == []


# ---------------------------------------------------------------- datasets and grants


def test_register_dataset_and_refusals(db, world, refused):
    def register(s, **overrides):
        values = dict(dataset_id="census", title_ja="国勢調査", title_en="Census", path="/d/c.duckdb", rows=5, source_sha256=SHA, actor=ACTOR)
        return policy.register_dataset(s, **(values | overrides))

    with transaction(db) as s:
        register(s)
    with transaction(db) as s:
        assert policy.get_dataset(s, "census").title_ja == "国勢調査"
    assert "already registered" in refused(lambda s: register(s))
    assert "not allowed" in refused(lambda s: register(s, dataset_id="Census"))
    assert "not allowed" in refused(lambda s: register(s, dataset_id="drop table;"))
    assert "malformed" in refused(lambda s: register(s, dataset_id="c2", source_sha256="xyz"))
    assert "row count" in refused(lambda s: register(s, dataset_id="c2", rows=-1))
    with transaction(db) as s:
        register(s, rows=7, replace=True)
    with transaction(db) as s:
        assert policy.get_dataset(s, "census").rows == 7
        assert json.loads(last_event(s).details)["replaced"] is True


def test_granted_datasets_by_date_revocation_and_project_state(db, world, refused):
    day = date(2026, 6, 1)
    with transaction(db) as s:
        assert [d.id for d in policy.granted_datasets(s, world.project, day)] == ["lfs"]
        assert policy.granted_datasets(s, world.project, date(2027, 4, 1)) == []  # after the project
        policy.register_dataset(s, dataset_id="fies", title_ja="家計", title_en="FIES", path="/d/f", rows=1, source_sha256=SHA, actor=ACTOR)
        grant = policy.add_grant(s, project_id=world.project, dataset_id="fies", valid_from=date(2026, 7, 1), valid_until=date(2026, 7, 31), actor=ACTOR,
                                 today=world.start)
        grant_id = grant.id
    with transaction(db) as s:
        assert [d.id for d in policy.granted_datasets(s, world.project, day)] == ["lfs"]  # fies not yet
        assert [d.id for d in policy.granted_datasets(s, world.project, date(2026, 7, 31))] == ["fies", "lfs"]
        policy.revoke_grant(s, grant_id, actor=ACTOR)
    with transaction(db) as s:
        assert [d.id for d in policy.granted_datasets(s, world.project, date(2026, 7, 15))] == ["lfs"]
        assert s.get(Grant, grant_id).revoked_at is not None
        policy.change_project(s, world.project, status=ProjectStatus.SUSPENDED, actor=ACTOR)
    with transaction(db) as s:
        assert policy.granted_datasets(s, world.project, day) == []
    assert "already revoked" in refused(lambda s: policy.revoke_grant(s, grant_id, actor=ACTOR))
    assert "unknown grant" in refused(lambda s: policy.revoke_grant(s, 999, actor=ACTOR))
    assert "unknown project" in refused(lambda s: policy.granted_datasets(s, "p9", day))


def test_add_grant_bad_input(db, world, refused):
    def grant(s, **overrides):
        values = dict(project_id=world.project, dataset_id="lfs", valid_from=date(2027, 1, 1), valid_until=date(2027, 2, 1), actor=ACTOR,
                      today=world.start)
        return policy.add_grant(s, **(values | overrides))

    assert "overlapping" in refused(grant)  # lfs is already granted for the whole project
    assert "unknown dataset" in refused(lambda s: grant(s, dataset_id="nope"))
    assert "unknown project" in refused(lambda s: grant(s, project_id="p0"))
    assert "before the start" in refused(lambda s: grant(s, valid_from=date(2027, 2, 2)))


# ---------------------------------------------------------------- facilities and terminals


def test_facilities_and_terminals(db, world, refused):
    with transaction(db) as s:
        policy.add_facility(s, name="Osaka", timezone_name="Asia/Tokyo", address="Osaka", actor=ACTOR)
        terminal = policy.add_terminal(s, facility="Osaka", address="2001:DB9:0:0::/64", label="room", actor=ACTOR)
        assert terminal.address == "2001:db9::/64"  # stored normalised
        policy.add_terminal(s, facility="Tokyo", address="127.0.0.2/32", actor=ACTOR)  # overlaps nothing
    with transaction(db) as s:
        assert sorted(t.address for t in policy.list_terminals(s)) == ["127.0.0.1/32", "127.0.0.2/32", "2001:db8::/64", "2001:db9::/64"]
        policy.remove_terminal(s, address="2001:db9::/64", actor=ACTOR)
    with transaction(db) as s:
        assert "2001:db9::/64" not in {t.address for t in policy.list_terminals(s)}
        assert last_event(s).action is AuditEventType.TERMINAL_REMOVE


@pytest.mark.parametrize(
    "facility, address, fragment",
    [
        ("Tokyo", "10.0.0.300", "malformed terminal address"),
        ("Tokyo", "10.0.0.5/24", "did you mean 10.0.0.0/24"),
        ("Tokyo", "not-an-ip", "malformed terminal address"),
        ("Tokyo", "127.0.0.1", "already registered"),
        ("Nowhere", "10.0.0.1", "unknown facility"),
        ("Osaka", "127.0.0.0/8", "overlaps 127.0.0.1/32"),
        ("Osaka", "2001:db8::1", "overlaps 2001:db8::/64"),
    ],
)
def test_add_terminal_bad_input(db, world, refused, facility, address, fragment):
    with transaction(db) as s:
        policy.add_facility(s, name="Osaka", actor=ACTOR)
    assert fragment in refused(lambda s: policy.add_terminal(s, facility=facility, address=address, actor=ACTOR))


def test_facility_bad_input(db, world, refused):
    assert "time zone" in refused(lambda s: policy.add_facility(s, name="Kobe", timezone_name="Mars/Olympus", actor=ACTOR))
    assert "already exists" in refused(lambda s: policy.add_facility(s, name="Tokyo", actor=ACTOR))
    assert "no terminal" in refused(lambda s: policy.remove_terminal(s, address="192.0.2.1", actor=ACTOR))


def test_every_action_is_in_the_ledger(db, world):
    with db() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert actions == [
        AuditEventType.PERSON_ADD,
        AuditEventType.PERSON_ADD,
        AuditEventType.PERSON_ADD,
        AuditEventType.PROJECT_ADD,
        AuditEventType.MEMBER_ADD,
        AuditEventType.DATASET_INGEST,
        AuditEventType.GRANT_ADD,
        AuditEventType.FACILITY_ADD,
        AuditEventType.TERMINAL_ADD,
        AuditEventType.TERMINAL_ADD,
    ]


# ---------------------------------------------------------------- bulk import


def test_import_people_adds_and_is_idempotent(db, world):
    rows = [
        {"username": "ｔａｒｏ", "display_name": "山田太郎", "email": "taro@example.jp", "roles": "researcher", "projects": world.project},
        {"username": "jiro", "display_name": "Jiro", "email": "", "roles": "researcher; reviewer", "projects": ""},
        {"username": "rita", "display_name": "ignored for existing people", "roles": "reviewer;administrator", "projects": world.project},
    ]
    with transaction(db) as s:
        summary = policy.import_people(s, rows, actor=ACTOR)
    assert summary == policy.ImportSummary(people_added=2, roles_granted=1, memberships_added=2)
    with transaction(db) as s:
        assert policy.person_roles(s, "taro") == {Role.RESEARCHER}
        assert policy.person_roles(s, "jiro") == {Role.RESEARCHER, Role.REVIEWER}
        assert policy.person_roles(s, "rita") == {Role.REVIEWER, Role.ADMINISTRATOR}
        assert policy.get_person(s, "rita").display_name == "Rita"
        assert [p.username for p in policy.members_of(s, world.project)] == ["alice", "rita", "taro"]
        assert policy.import_people(s, rows, actor=ACTOR) == policy.ImportSummary(0, 0, 0)


@pytest.mark.parametrize(
    "bad_row, fragment",
    [
        ({"username": "kumi", "display_name": "Kumi", "roles": "wizard"}, "line 3: unknown role 'wizard'"),
        ({"username": "kumi", "display_name": "Kumi", "projects": "p404"}, "line 3: unknown project 'p404'"),
        ({"username": "ku mi", "display_name": "Kumi"}, "line 3: user name 'ku mi' is not allowed"),
        ({"username": "kumi", "display_name": ""}, "line 3: column display_name is empty"),
    ],
)
def test_import_people_refuses_the_whole_file_naming_the_line(db, world, refused, bad_row, fragment):
    good = {"username": "taro", "display_name": "Taro", "roles": "researcher", "projects": world.project}
    message = refused(lambda s: policy.import_people(s, [good, bad_row], actor=ACTOR))
    assert message.startswith(fragment) and message.endswith("nothing was imported")


def test_change_facility_time_zone_moves_the_entry_date(db, world, refused):
    from datetime import datetime, timezone

    from access_control.entry import DenialReason, decide_entry, load_entry_facts

    # 23:30 UTC on 31 March 2026: already 1 April (the project's first day) in Tokyo, still 31 March in New York.
    moment = datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc)
    with db() as s:
        assert decide_entry(load_entry_facts(s, "alice", "127.0.0.1"), moment).allowed
    with transaction(db) as s:
        policy.change_facility(s, "Tokyo", timezone_name="America/New_York", actor=ACTOR)
    with db() as s:
        assert decide_entry(load_entry_facts(s, "alice", "127.0.0.1"), moment).reasons == (DenialReason.NO_ACTIVE_PROJECT,)
        assert json.loads(last_event(s).details) == {"before": {"timezone": "Asia/Tokyo"}, "after": {"timezone": "America/New_York"}}
    assert "nothing to change" in refused(lambda s: policy.change_facility(s, "Tokyo", timezone_name="America/New_York", actor=ACTOR))
    assert "time zone" in refused(lambda s: policy.change_facility(s, "Tokyo", timezone_name="JST", actor=ACTOR))
    assert "unknown facility" in refused(lambda s: policy.change_facility(s, "Kyoto", address="x", actor=ACTOR))


# ---------------------------------------------------------------- guard rails: dates, lengths


def test_periods_already_over_or_outside_the_project_are_refused(db, world, refused):
    today = date(2026, 8, 1)
    add = functools.partial(policy.add_project, presets=preset_names())
    message = refused(lambda s: add(s, project_id="p-old", title="T", start_date=date(2026, 1, 1), end_date=date(2026, 7, 31),
                                    actor=ACTOR, today=today))
    assert message == "end date 2026-07-31 is already past (today is 2026-08-01): a project must end today or later"
    with transaction(db) as s:  # ending today is not over yet
        add(s, project_id="p-today", title="T", start_date=date(2026, 1, 1), end_date=today, actor=ACTOR, today=today)
        policy.change_project(s, world.project, title="Income (revised)", actor=ACTOR, today=date(2027, 6, 1))  # other fields of a past project
    assert "to end the project now, set its status to closed" in refused(
        lambda s: policy.change_project(s, world.project, end_date=date(2026, 7, 1), actor=ACTOR, today=today))
    with transaction(db) as s:  # the world's lfs is granted for the whole project: grant another dataset
        policy.register_dataset(s, dataset_id="fies", title_ja="家計", title_en="FIES", path="/d/f", rows=1, source_sha256="ab" * 32, actor=ACTOR)

    def grant(s, **dates):
        return policy.add_grant(s, project_id=world.project, dataset_id="fies", actor=ACTOR, today=today, **dates)

    assert "grant end 2026-07-31 is already past" in refused(lambda s: grant(s, valid_from=date(2026, 5, 1), valid_until=date(2026, 7, 31)))
    outside = refused(lambda s: grant(s, valid_from=date(2026, 9, 1), valid_until=date(2027, 6, 30)))
    assert outside == ("the grant's dates 2026-09-01 to 2027-06-30 fall outside project 'p2026-001' (2026-04-01 to 2027-03-31): "
                       "keep them within the project's dates (leave them empty for the project's own)")
    assert "fall outside" in refused(lambda s: grant(s, valid_from=date(2026, 3, 1), valid_until=date(2026, 12, 31)))


@pytest.mark.parametrize("action, field", [
    (lambda s, long: policy.add_project(s, presets=preset_names(), project_id="p-long", title="T", purpose=long, start_date=date(2026, 4, 1),
                                        end_date=date(2027, 3, 31), actor=ACTOR, today=date(2026, 4, 1)), "purpose"),
    (lambda s, long: policy.change_project(s, "p2026-001", legal_basis=long, actor=ACTOR), "legal basis"),
    (lambda s, long: policy.add_terminal(s, facility="Tokyo", address="192.0.2.9", label=long, actor=ACTOR), "terminal label"),
    (lambda s, long: policy.add_facility(s, name="Kobe", address=long, actor=ACTOR), "facility address"),
    (lambda s, long: policy.change_facility(s, "Tokyo", address=long, actor=ACTOR), "facility address"),
    (lambda s, long: policy.add_person(s, username="long", display_name="L", email=long + "@example.jp", actor=ACTOR), "e-mail address"),
    (lambda s, long: policy.add_closed_day(s, "Tokyo", date(2026, 12, 31), note=long, actor=ACTOR), "note"),
])
def test_free_text_is_refused_past_its_limit_on_every_backend(db, world, refused, action, field):
    message = refused(lambda s: action(s, "字" * 2001))
    assert message.startswith(f"{field} is too long: at most ")


def test_a_terminal_stored_before_the_address_rules_can_still_be_removed(db, world):
    with transaction(db) as s:
        s.add(Terminal(facility=policy.require_facility(s, "Tokyo"), address="fe80::1%eth0/128", label="old"))
    with transaction(db) as s:
        policy.remove_terminal(s, address="fe80::1%eth0", actor=ACTOR)
    with transaction(db) as s:
        assert "fe80::1%eth0/128" not in {t.address for t in policy.list_terminals(s)}
