"""Administrative actions on the policy store, and the reads others rely on.

The one service layer of `onsite admin …` and the admin pages: both call these
functions, in the transaction `access_control.admin.change` gives them, with
input read by `access_control.forms`. Each action validates its input first
(a `PolicyError` saying what to fix, in Japanese and English; nothing changed)
and writes its audit event in the caller's transaction, so the change and its
record commit together. The caller passes the session and `actor`.

With LDAP as the directory, role and membership changes also take the
`directory` (an `access_control.ldap.LdapDirectory`): its groups are changed
after the database change and before the caller commits, so a directory
failure raises and the caller's transaction rolls the database change back.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control import audit
from access_control.accounts import canonical_username
from access_control.enums import AuditEventType, Role
from access_control.errors import ChangeInvalid, InputInvalid, Label, PolicyError, RecordNotFound
from access_control.forms import (
    format_hours,
    parse_accreditation_kind,
    parse_seats,
    parse_network,
    parse_opening_hours,
    parse_role,
    parse_timezone,
    shown_hours,
    text_field,
)
from access_control.identity import LocalIdentityStore
from access_control.models import (
    MAX_ADDRESS,
    MAX_EMAIL,
    MAX_NAME,
    MAX_PURPOSE,
    MAX_REASON,
    MAX_TITLE,
    Accreditation,
    Booking,
    Dataset,
    Facility,
    FacilityClosure,
    FacilityManager,
    Grant,
    Membership,
    OpeningHours,
    Person,
    PersonRole,
    Project,
    ProjectStatus,
    Terminal,
    is_override_network,
)
from dataplane.ids import is_dataset_id
from onsite_base import times

PROJECT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_BOOKING = timedelta(hours=24)
T = TypeVar("T")


class GroupDirectory(Protocol):
    """The LDAP groups the admin changes maintain (`access_control.ldap.LdapDirectory`)."""

    def grant_role(self, username: str, role: Role) -> bool: ...
    def revoke_role(self, username: str, role: Role) -> bool: ...
    def add_to_project(self, project_id: str, username: str) -> bool: ...
    def remove_from_project(self, project_id: str, username: str) -> bool: ...


@functools.cache
def _store() -> LocalIdentityStore:
    """Created on first use: building one hashes a timing-equaliser password."""
    return LocalIdentityStore()


# ---------------------------------------------------------------- who may administer what


@dataclass(frozen=True)
class Scope:
    """What an actor may administer: everything (an administrator, or the operator's `onsite admin` under an OS
    login that is nobody in the store), or only the facilities named (a facility manager: their terminals, hours,
    closures, seats, bookings, entry log and live sessions, nothing of people, projects, grants or other facilities)."""

    facilities: frozenset[str] | None = None
    """None: everything."""

    @property
    def everything(self) -> bool:
        return self.facilities is None

    def covers(self, facility: str) -> bool:
        return self.facilities is None or facility in self.facilities


EVERYTHING = Scope()


class OutOfScope(RecordNotFound):
    """A facility (or its terminal, booking or session) the actor does not manage: refused in the same words as one
    that does not exist, so that a manager learns nothing of other facilities. The faces record the attempt."""


def actor_scope(session: Session, username: str) -> Scope:
    """The scope of a person using the admin faces: everything for an administrator, their facilities for a
    facility manager; anyone else (or a disabled account) is refused."""
    person = get_person(session, username)
    roles = person.role_set if person is not None and not person.disabled else set()
    if Role.ADMINISTRATOR in roles:
        return EVERYTHING
    if Role.FACILITY_MANAGER in roles and person is not None:
        return Scope(frozenset(f.name for f in managed_facilities(session, person.username)))
    raise PolicyError("not_admin", name=username)


def require_everything(scope: Scope) -> None:
    """Refuse a facility manager an administrator's action (people, projects, grants, facilities as a whole)."""
    if not scope.everything:
        raise PolicyError("administrators_only")


# ---------------------------------------------------------------- reads


def get_person(session: Session, username: str) -> Person | None:
    try:
        name = canonical_username(username)
    except InputInvalid:
        return None
    return session.scalar(select(Person).where(Person.username == name))


def require_person(session: Session, username: str) -> Person:
    person = get_person(session, username)
    if person is None:
        raise RecordNotFound("unknown_person", name=username)
    return person


def require_project(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise RecordNotFound("unknown_project", id=project_id)
    return project


def require_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise RecordNotFound("unknown_dataset", id=dataset_id)
    return dataset


def require_facility(session: Session, name: str, scope: Scope = EVERYTHING) -> Facility:
    """The facility by name; one outside `scope` is refused as if it did not exist."""
    facility = session.scalar(select(Facility).where(Facility.name == name))
    if facility is None:
        raise RecordNotFound("unknown_facility", name=name)
    if not scope.covers(facility.name):
        raise OutOfScope("unknown_facility", name=name)
    return facility


def get_dataset(session: Session, dataset_id: str) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def person_roles(session: Session, username: str) -> set[Role]:
    """The person's roles; empty for an unknown person."""
    person = get_person(session, username)
    return person.role_set if person else set()


def projects_of(session: Session, username: str) -> list[Project]:
    """Every project the person is a member of, whatever its dates or status."""
    person = get_person(session, username)
    if person is None:
        return []
    return list(
        session.scalars(
            select(Project)
            .join(Membership, Membership.project_id == Project.id)
            .where(Membership.person_id == person.id)
            .order_by(Project.id)
        )
    )


def active_projects(session: Session, username: str, on: date) -> list[Project]:
    """The person's projects that are ACTIVE and within their dates on `on`
    (a date in the facility's time zone: see entry.decide_entry)."""
    return [p for p in projects_of(session, username) if p.is_active_on(on)]


def members_of(session: Session, project_id: str) -> list[Person]:
    require_project(session, project_id)
    return list(
        session.scalars(
            select(Person)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.project_id == project_id)
            .order_by(Person.username)
        )
    )


def granted_datasets(session: Session, project_id: str, on: date) -> list[Dataset]:
    """Datasets the project may read on `on`: a grant valid that day and not
    revoked, and the project itself active that day. Unknown project: UserError."""
    project = require_project(session, project_id)
    if not project.is_active_on(on):
        return []
    grants = session.scalars(
        select(Grant).where(Grant.project_id == project_id, Grant.revoked_at.is_(None), Grant.valid_from <= on, Grant.valid_until >= on)
    )
    datasets = {g.dataset_id: g.dataset for g in grants}
    return [datasets[k] for k in sorted(datasets)]


def list_people(session: Session) -> list[Person]:
    return list(session.scalars(select(Person).order_by(Person.username)))


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def list_grants(session: Session, project_id: str | None = None) -> list[Grant]:
    query = select(Grant).order_by(Grant.id)
    if project_id is not None:
        require_project(session, project_id)
        query = query.where(Grant.project_id == project_id)
    return list(session.scalars(query))


def list_facilities(session: Session, scope: Scope = EVERYTHING) -> list[Facility]:
    query = select(Facility).order_by(Facility.name)
    if not scope.everything:
        query = query.where(Facility.name.in_(sorted(scope.facilities or ())))
    return list(session.scalars(query))


def list_terminals(session: Session, scope: Scope = EVERYTHING) -> list[Terminal]:
    query = select(Terminal).order_by(Terminal.facility_id, Terminal.address)
    if not scope.everything:
        query = query.join(Facility, Terminal.facility_id == Facility.id).where(Facility.name.in_(sorted(scope.facilities or ())))
    return list(session.scalars(query))


# ---------------------------------------------------------------- validation


def _nonempty(value: str, what: str, max_length: int) -> str:
    """`what` is the field's message key (field_…)."""
    return text_field(value, what, max_length, required=True)


def _check_dates(start: date, end: date, what: str = "field_end_date") -> None:
    if end < start:
        raise InputInvalid("dates_reversed", what=Label(what), end=end.isoformat(), start=start.isoformat())


def _not_past(end: date, today: date | None, key: str, what: str = "field_end_date") -> None:
    """A period that is over before it starts to count is refused (`key` says what to do instead)."""
    today = today or date.today()
    if end < today:
        raise InputInvalid(key, what=Label(what), end=end.isoformat(), today=today.isoformat())


def _detail(value: object) -> audit.DetailValue:
    """A value as the ledger stores it: dates as ISO text, enums by value."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (Role, ProjectStatus)):
        return value.value
    return value  # type: ignore[return-value]  (str, int, bool, None)


def _details(**values: object) -> dict[str, audit.DetailValue]:
    return {key: _detail(value) for key, value in values.items()}


# ---------------------------------------------------------------- people and roles


def add_person(
    session: Session,
    *,
    username: str,
    display_name: str,
    actor: str,
    email: str = "",
    roles: Iterable[Role] = (),
    password: str | None = None,
    directory: GroupDirectory | None = None,
) -> Person:
    name = canonical_username(username)
    display_name = _nonempty(display_name, "field_display_name", MAX_NAME)
    email = text_field(email, "field_email", MAX_EMAIL)
    if email and not EMAIL_PATTERN.fullmatch(email):
        raise InputInvalid("email_malformed", email=email)
    if session.scalar(select(Person.id).where(Person.username == name)) is not None:
        raise ChangeInvalid("person_exists", name=name)
    password_hash = _store().hash_password(password, name) if password is not None else None
    role_set = sorted(set(roles), key=lambda r: r.value)
    person = Person(username=name, display_name=display_name, email=email, password_hash=password_hash)
    person.roles = [PersonRole(role=r) for r in role_set]
    session.add(person)
    session.flush()
    audit.record(
        session,
        AuditEventType.PERSON_ADD,
        actor=actor,
        object=f"person:{name}",
        details={"roles": [r.value for r in role_set], "password_set": password is not None},
    )
    if directory is not None:
        for role in role_set:
            directory.grant_role(name, role)
    return person


def set_password(session: Session, username: str, password: str, *, actor: str) -> None:
    person = require_person(session, username)
    person.password_hash = _store().hash_password(password, person.username)
    person.failed_logins = 0
    audit.record(session, AuditEventType.PERSON_CHANGE, actor=actor, object=f"person:{person.username}", details={"change": "password"})


def set_disabled(session: Session, username: str, disabled: bool, *, actor: str) -> None:
    person = require_person(session, username)
    if person.disabled == disabled:
        raise ChangeInvalid("already_disabled" if disabled else "already_enabled", name=person.username)
    person.disabled = disabled
    audit.record(
        session,
        AuditEventType.PERSON_CHANGE,
        actor=actor,
        object=f"person:{person.username}",
        details={"change": "disable" if disabled else "enable"},
    )


def unlock_person(session: Session, username: str, *, actor: str) -> None:
    """Lift a lock-out after failed logins and reset the failure count."""
    person = require_person(session, username)
    if person.locked_until is None and person.failed_logins == 0:
        raise ChangeInvalid("not_locked", name=person.username)
    was_locked = person.locked_until.isoformat() if person.locked_until else None
    person.locked_until = None
    person.failed_logins = 0
    audit.record(
        session,
        AuditEventType.PERSON_CHANGE,
        actor=actor,
        object=f"person:{person.username}",
        details={"change": "unlock", "locked_until": was_locked},
    )


def grant_role(session: Session, username: str, role: Role, *, actor: str, directory: GroupDirectory | None = None) -> None:
    if role is Role.FACILITY_MANAGER:
        raise InputInvalid("manager_needs_facility", name=username)  # a manager of nothing: see grant_facility_manager
    person = require_person(session, username)
    if role in person.role_set:
        raise ChangeInvalid("role_held", name=person.username, role=Label(f"role_{role.value}"))
    person.roles.append(PersonRole(role=role))
    session.flush()
    audit.record(session, AuditEventType.ROLE_GRANT, actor=actor, object=f"person:{person.username}", details={"role": role.value})
    if directory is not None:
        directory.grant_role(person.username, role)


def revoke_role(session: Session, username: str, role: Role, *, actor: str, directory: GroupDirectory | None = None) -> None:
    person = require_person(session, username)
    held = [r for r in person.roles if r.role is role]
    if not held:
        raise ChangeInvalid("role_not_held", name=person.username, role=Label(f"role_{role.value}"))
    person.roles.remove(held[0])
    details: dict[str, audit.DetailValue] = {"role": role.value}
    if role is Role.FACILITY_MANAGER:  # the scope goes with the role
        managed = list(session.scalars(select(FacilityManager).where(FacilityManager.person_id == person.id)))
        details["facilities"] = sorted(m.facility.name for m in managed)
        for row in managed:
            session.delete(row)
    session.flush()
    audit.record(session, AuditEventType.ROLE_REVOKE, actor=actor, object=f"person:{person.username}", details=details)
    if directory is not None:
        directory.revoke_role(person.username, role)


# ---------------------------------------------------------------- projects and members


def _known_preset(preset: str, presets: Collection[str]) -> str:
    """`preset` when it is one of `presets`: a project with a preset the review service does not know
    could build no output."""
    name = _nonempty(preset, "field_preset", 64)
    if name not in presets:
        raise InputInvalid("preset_unknown", text=preset, choices=", ".join(sorted(presets)))
    return name


def add_project(
    session: Session,
    *,
    project_id: str,
    title: str,
    start_date: date,
    end_date: date,
    actor: str,
    purpose: str = "",
    legal_basis: str = "",
    presets: Collection[str],
    preset: str = "acro-default",
    status: ProjectStatus = ProjectStatus.ACTIVE,
    today: date | None = None,
) -> Project:
    """Register a project. `preset` must be one of `presets`, the rule presets the review service knows
    (`disclosure_review.sdc.rules.preset_names()`, given by the caller: this layer may not import it); a
    project that has already ended (before `today`, default today) is refused."""
    if not PROJECT_ID_PATTERN.fullmatch(project_id):
        raise InputInvalid("project_id_invalid", id=project_id)
    title = _nonempty(title, "field_project_title", MAX_TITLE)
    purpose = text_field(purpose, "field_purpose", MAX_PURPOSE)
    legal_basis = text_field(legal_basis, "field_legal_basis", MAX_TITLE)
    _check_dates(start_date, end_date)
    _not_past(end_date, today, "project_past")
    preset = _known_preset(preset, presets)
    if session.get(Project, project_id) is not None:
        raise ChangeInvalid("project_exists", id=project_id)
    project = Project(
        id=project_id,
        title=title,
        purpose=purpose,
        legal_basis=legal_basis,
        start_date=start_date,
        end_date=end_date,
        status=status,
        preset=preset,
    )
    session.add(project)
    session.flush()
    audit.record(
        session,
        AuditEventType.PROJECT_ADD,
        actor=actor,
        object=f"project:{project_id}",
        details=_details(start_date=start_date, end_date=end_date, status=status, preset=preset),
    )
    return project


def change_project(
    session: Session,
    project_id: str,
    *,
    actor: str,
    title: str | None = None,
    purpose: str | None = None,
    legal_basis: str | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    status: ProjectStatus | None = None,
    preset: str | None = None,
    presets: Collection[str] = (),
    today: date | None = None,
) -> Project:
    """Change the given fields; the others (None) stay. '' clears purpose or legal basis
    (see forms.parse_change). A new `preset` must be one of `presets` (as for add_project; none given
    refuses every preset). Dates are checked as they will end up; a new end date already
    past (before `today`) is refused: a project is ended now by closing it."""
    project = require_project(session, project_id)
    changes = {
        "title": None if title is None else _nonempty(title, "field_project_title", MAX_TITLE),
        "purpose": None if purpose is None else text_field(purpose, "field_purpose", MAX_PURPOSE),
        "legal_basis": None if legal_basis is None else text_field(legal_basis, "field_legal_basis", MAX_TITLE),
        "start_date": start_date,
        "end_date": end_date,
        "status": status,
        "preset": None if preset is None else _known_preset(preset, presets),
    }
    changes = {k: v for k, v in changes.items() if v is not None and v != getattr(project, k)}
    if not changes:
        raise ChangeInvalid("project_unchanged", id=project_id)
    _check_dates(start_date or project.start_date, end_date or project.end_date)
    if "end_date" in changes:
        _not_past(changes["end_date"], today, "project_end_past")  # type: ignore[arg-type]
    before = {k: getattr(project, k) for k in changes}
    for key, value in changes.items():
        setattr(project, key, value)
    audit.record(
        session,
        AuditEventType.PROJECT_CHANGE,
        actor=actor,
        object=f"project:{project_id}",
        details={"before": _details(**before), "after": _details(**changes)},
    )
    return project


def add_member(
    session: Session, project_id: str, username: str, *, actor: str, directory: GroupDirectory | None = None
) -> Membership:
    project = require_project(session, project_id)
    person = require_person(session, username)
    exists = session.scalar(select(Membership.id).where(Membership.project_id == project.id, Membership.person_id == person.id))
    if exists is not None:
        raise ChangeInvalid("member_exists", name=person.username, id=project.id)
    membership = Membership(project=project, person=person)
    session.add(membership)
    session.flush()
    audit.record(session, AuditEventType.MEMBER_ADD, actor=actor, object=f"project:{project.id}", details={"person": person.username})
    if directory is not None:
        directory.add_to_project(project.id, person.username)
    return membership


def remove_member(session: Session, project_id: str, username: str, *, actor: str, directory: GroupDirectory | None = None) -> None:
    project = require_project(session, project_id)
    person = require_person(session, username)
    membership = session.scalar(select(Membership).where(Membership.project_id == project.id, Membership.person_id == person.id))
    if membership is None:
        raise ChangeInvalid("member_missing", name=person.username, id=project.id)
    session.delete(membership)
    session.flush()
    audit.record(session, AuditEventType.MEMBER_REMOVE, actor=actor, object=f"project:{project.id}", details={"person": person.username})
    if directory is not None:
        directory.remove_from_project(project.id, person.username)


# ---------------------------------------------------------------- datasets and grants


def register_dataset(
    session: Session,
    *,
    dataset_id: str,
    title_ja: str,
    title_en: str,
    path: str,
    rows: int,
    source_sha256: str,
    actor: str,
    replace: bool = False,
) -> Dataset:
    """Record an ingested dataset (called by the dataset ingest command).
    An existing id is refused unless `replace` (a re-ingest of the same dataset)."""
    if not is_dataset_id(dataset_id):
        raise InputInvalid("dataset_id_invalid", id=dataset_id)
    title_ja = _nonempty(title_ja, "field_title_ja", 300)
    title_en = _nonempty(title_en, "field_title_en", 300)
    path = _nonempty(str(path), "field_dataset_path", 1024)
    if not isinstance(rows, int) or rows < 0:
        raise InputInvalid("row_count_invalid", rows=rows)
    source_sha256 = source_sha256.lower()
    if not SHA256_PATTERN.fullmatch(source_sha256):
        raise InputInvalid("sha256_malformed", value=source_sha256)
    dataset = session.get(Dataset, dataset_id)
    existed = dataset is not None
    if existed and not replace:
        raise ChangeInvalid("dataset_exists", id=dataset_id)
    if dataset is None:
        dataset = Dataset(id=dataset_id)
        session.add(dataset)
    dataset.title_ja, dataset.title_en, dataset.path = title_ja, title_en, path
    dataset.rows, dataset.source_sha256 = rows, source_sha256
    dataset.ingested_at = datetime.now(timezone.utc)
    session.flush()
    audit.record(
        session,
        AuditEventType.DATASET_INGEST,
        actor=actor,
        object=f"dataset:{dataset_id}",
        details={"rows": rows, "source_sha256": source_sha256, "path": path, "replaced": existed},
    )
    return dataset


def add_grant(
    session: Session,
    *,
    project_id: str,
    dataset_id: str,
    actor: str,
    valid_from: date | None = None,
    valid_until: date | None = None,
    today: date | None = None,
) -> Grant:
    """Grant a dataset to a project from `valid_from` through `valid_until` (default: the project's dates).
    Refused: dates outside the project's, or a grant that has already ended (before `today`)."""
    project = require_project(session, project_id)
    dataset = require_dataset(session, dataset_id)
    valid_from = valid_from or project.start_date
    valid_until = valid_until or project.end_date
    _check_dates(valid_from, valid_until, "field_grant_end")
    if valid_from < project.start_date or valid_until > project.end_date:
        raise InputInvalid(
            "grant_outside_project", start=valid_from.isoformat(), end=valid_until.isoformat(), project=project.id,
            project_start=project.start_date.isoformat(), project_end=project.end_date.isoformat(),
        )
    _not_past(valid_until, today, "grant_past", "field_grant_end")
    overlapping = session.scalar(
        select(Grant.id).where(
            Grant.project_id == project.id,
            Grant.dataset_id == dataset.id,
            Grant.revoked_at.is_(None),
            Grant.valid_from <= valid_until,
            Grant.valid_until >= valid_from,
        )
    )
    if overlapping is not None:
        raise ChangeInvalid("grant_overlaps", dataset=dataset.id, project=project.id, grant=overlapping)
    grant = Grant(project=project, dataset=dataset, valid_from=valid_from, valid_until=valid_until, created_by=actor)
    session.add(grant)
    session.flush()
    audit.record(
        session,
        AuditEventType.GRANT_ADD,
        actor=actor,
        object=f"grant:{grant.id}",
        details=_details(project=project.id, dataset=dataset.id, valid_from=valid_from, valid_until=valid_until),
    )
    return grant


def revoke_grant(session: Session, grant_id: int, *, actor: str) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise RecordNotFound("unknown_grant", id=grant_id)
    if grant.revoked_at is not None:
        raise ChangeInvalid("grant_revoked", id=grant_id, when=grant.revoked_at)
    grant.revoked_at = datetime.now(timezone.utc)
    audit.record(
        session,
        AuditEventType.GRANT_REVOKE,
        actor=actor,
        object=f"grant:{grant.id}",
        details={"project": grant.project_id, "dataset": grant.dataset_id},
    )
    return grant


# ---------------------------------------------------------------- facilities and terminals


def add_facility(
    session: Session, *, name: str, actor: str, address: str = "", timezone_name: str = "Asia/Tokyo", scope: Scope = EVERYTHING
) -> Facility:
    require_everything(scope)
    name = _nonempty(name, "field_facility_name", MAX_NAME)
    address = text_field(address, "field_facility_address", MAX_ADDRESS)
    timezone_name = parse_timezone(timezone_name)
    if session.scalar(select(Facility.id).where(Facility.name == name)) is not None:
        raise ChangeInvalid("facility_exists", name=name)
    facility = Facility(name=name, address=address, timezone=timezone_name)
    session.add(facility)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_ADD, actor=actor, object=f"facility:{name}", details={"timezone": timezone_name})
    return facility


def change_facility(
    session: Session,
    name: str,
    *,
    actor: str,
    address: str | None = None,
    timezone_name: str | None = None,
    booking_required: bool | None = None,
    accreditation_kind: str | None = None,
    seats: str | None = None,
    scope: Scope = EVERYTHING,
) -> Facility:
    """Change a facility's address, time zone (in which project dates, opening hours and
    accreditation expiry are read), whether entry needs a booking, the kind of
    accreditation researchers need there, or its seats. None leaves a field as it is; `address=""`
    clears the address, `accreditation_kind=""` means none needed, `seats=""` not limited (see
    forms.parse_change). The accreditation kind is about people: administrators only."""
    facility = require_facility(session, name, scope)
    changes: dict[str, object] = {
        "address": None if address is None else text_field(address, "field_facility_address", MAX_ADDRESS),
        "timezone": None if timezone_name is None else parse_timezone(timezone_name),
        "booking_required": booking_required,
    }
    changes = {k: v for k, v in changes.items() if v is not None and v != getattr(facility, k)}
    if accreditation_kind is not None:
        require_everything(scope)
        kind = parse_accreditation_kind(accreditation_kind) if accreditation_kind.strip() else None
        if kind != facility.accreditation_kind:
            changes["accreditation_kind"] = kind
    if seats is not None:
        count = parse_seats(seats)
        if count != facility.seats:
            changes["seats"] = count
    if not changes:
        raise ChangeInvalid("facility_unchanged", name=name)
    before = {k: getattr(facility, k) for k in changes}
    for key, value in changes.items():
        setattr(facility, key, value)
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{name}", details={"before": before, "after": changes})
    return facility


def add_terminal(
    session: Session, *, facility: str, address: str, actor: str, label: str = "", override: bool = False, scope: Scope = EVERYTHING
) -> Terminal:
    """Register a terminal (an address or network) at a facility. A network that
    overlaps another facility's terminal is refused: the facility, and so the
    time zone of the entry decision, would be ambiguous. A network broader than a /24 (IPv4)
    or /56 (IPv6) needs `override` (recorded in the ledger): it lets many machines in."""
    place = require_facility(session, facility, scope)
    network = parse_network(address)
    label = text_field(label, "field_terminal_label", MAX_NAME)
    for other in list_terminals(session):
        other_network = ipaddress.ip_network(other.address)
        clash = other_network == network or (
            other.facility_id != place.id and other_network.version == network.version and other_network.overlaps(network))
        if clash and not scope.covers(other.facility.name):  # say nothing of the other facility's terminals
            raise ChangeInvalid("terminal_taken", network=str(network))
        if other_network == network:
            raise ChangeInvalid("terminal_exists", network=str(network), facility=other.facility.name)
        if clash:
            raise ChangeInvalid("terminal_overlaps", network=str(network), other=str(other_network), facility=other.facility.name)
    broad = is_override_network(str(network))  # after the overlaps, which no override could lift
    if broad and not override:
        raise InputInvalid("network_broad", text=address, network=str(network))
    terminal = Terminal(facility=place, address=str(network), label=label)
    session.add(terminal)
    session.flush()
    details: dict[str, audit.DetailValue] = {"facility": place.name, "label": terminal.label}
    if broad:
        details["override"] = True
    audit.record(session, AuditEventType.TERMINAL_ADD, actor=actor, object=f"terminal:{network}", details=details)
    return terminal


def remove_terminal(session: Session, *, address: str, actor: str, scope: Scope = EVERYTHING) -> None:
    network = parse_network(address, registering=False)  # one stored before today's rules can still go
    terminal = session.scalar(select(Terminal).where(Terminal.address == str(network)))
    if terminal is None:
        raise RecordNotFound("unknown_terminal", network=str(network))
    if not scope.covers(terminal.facility.name):
        raise OutOfScope("unknown_terminal", network=str(network))
    facility = terminal.facility.name
    session.delete(terminal)
    session.flush()
    audit.record(session, AuditEventType.TERMINAL_REMOVE, actor=actor, object=f"terminal:{network}", details={"facility": facility})


# ---------------------------------------------------------------- facility managers


def managed_facilities(session: Session, username: str) -> list[Facility]:
    """The facilities the person manages (none for an unknown person)."""
    person = get_person(session, username)
    if person is None:
        return []
    return list(
        session.scalars(
            select(Facility).join(FacilityManager, FacilityManager.facility_id == Facility.id)
            .where(FacilityManager.person_id == person.id).order_by(Facility.name)
        )
    )


def managers_of(session: Session, facility: str) -> list[Person]:
    place = require_facility(session, facility)
    return sorted((m.person for m in place.managers), key=lambda p: p.username)


def grant_facility_manager(
    session: Session, username: str, facility: str, *, actor: str, scope: Scope = EVERYTHING, directory: GroupDirectory | None = None
) -> FacilityManager:
    """Make a person a manager of a facility (an administrator's action): the role FACILITY_MANAGER, scoped to
    the facilities granted this way. Recorded as ROLE_GRANT with the facility."""
    require_everything(scope)
    person = require_person(session, username)
    place = require_facility(session, facility)
    if any(m.person_id == person.id for m in place.managers):
        raise ChangeInvalid("manager_exists", name=person.username, facility=place.name)
    row = FacilityManager(person=person, facility=place, created_by=actor)
    session.add(row)
    first = Role.FACILITY_MANAGER not in person.role_set
    if first:
        person.roles.append(PersonRole(role=Role.FACILITY_MANAGER))
    session.flush()
    audit.record(session, AuditEventType.ROLE_GRANT, actor=actor, object=f"person:{person.username}",
                 details={"role": Role.FACILITY_MANAGER.value, "facility": place.name})
    if first and directory is not None:
        directory.grant_role(person.username, Role.FACILITY_MANAGER)
    return row


def revoke_facility_manager(
    session: Session, username: str, facility: str, *, actor: str, scope: Scope = EVERYTHING, directory: GroupDirectory | None = None
) -> None:
    """Take a facility from a manager; with their last facility the role goes too. Recorded as ROLE_REVOKE."""
    require_everything(scope)
    person = require_person(session, username)
    place = require_facility(session, facility)
    row = next((m for m in place.managers if m.person_id == person.id), None)
    if row is None:
        raise ChangeInvalid("manager_missing", name=person.username, facility=place.name)
    place.managers.remove(row)
    session.flush()
    last = not managed_facilities(session, person.username)
    if last:
        person.roles[:] = [r for r in person.roles if r.role is not Role.FACILITY_MANAGER]
        session.flush()
    audit.record(session, AuditEventType.ROLE_REVOKE, actor=actor, object=f"person:{person.username}",
                 details={"role": Role.FACILITY_MANAGER.value, "facility": place.name, "role_removed": last})
    if last and directory is not None:
        directory.revoke_role(person.username, Role.FACILITY_MANAGER)


# ---------------------------------------------------------------- bulk import

IMPORT_COLUMNS = ("username", "display_name", "email", "roles", "projects")
"""CSV header for `import_people`; roles and projects are lists separated by ';'."""


@dataclass(frozen=True)
class ImportSummary:
    people_added: int
    roles_granted: int
    memberships_added: int


def import_people(
    session: Session, rows: Iterable[Mapping[str, str | None]], *, actor: str, directory: GroupDirectory | None = None
) -> ImportSummary:
    """Add people and their roles and memberships from CSV rows (see IMPORT_COLUMNS).

    A person already registered keeps their details and gains any listed role or
    membership they lack, so importing the same file twice changes nothing. Any
    bad row refuses the whole import (the caller's transaction rolls back) with
    a message naming its line. Nobody gets a password: set one with `set_password`.
    """
    added = granted = joined = 0
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            missing = [c for c in ("username", "display_name") if not (row.get(c) or "").strip()]
            if missing:
                raise InputInvalid("import_empty_column", columns=", ".join(missing))
            roles = _split_list(row.get("roles"), parse_role)
            projects = _split_list(row.get("projects"), str)
            person = get_person(session, row["username"] or "")
            if person is None:
                person = add_person(
                    session,
                    username=row["username"] or "",
                    display_name=row["display_name"] or "",
                    email=row.get("email") or "",
                    roles=roles,
                    actor=actor,
                    directory=directory,
                )
                added += 1
            else:
                for role in sorted(set(roles) - person.role_set, key=lambda r: r.value):
                    grant_role(session, person.username, role, actor=actor, directory=directory)
                    granted += 1
            member_of = {p.id for p in projects_of(session, person.username)}
            for project_id in projects:
                if project_id not in member_of:
                    add_member(session, project_id, person.username, actor=actor, directory=directory)
                    member_of.add(project_id)
                    joined += 1
        except PolicyError as e:
            raise InputInvalid("import_line", line=line, error=e) from None
    return ImportSummary(added, granted, joined)


def _split_list(cell: str | None, parse: Callable[[str], T]) -> list[T]:
    return [parse(item.strip()) for item in (cell or "").split(";") if item.strip()]


# ---------------------------------------------------------------- accreditations


def list_accreditations(session: Session, username: str | None = None) -> list[Accreditation]:
    """Accreditations, revoked ones included, of one person or everyone."""
    query = select(Accreditation).order_by(Accreditation.id)
    if username is not None:
        query = query.where(Accreditation.person_id == require_person(session, username).id)
    return list(session.scalars(query))


def add_accreditation(
    session: Session, *, username: str, kind: str, expiry: date, actor: str, issued: date | None = None
) -> Accreditation:
    """Record that a person holds an accreditation of `kind` from `issued` (default today) through `expiry` (inclusive)."""
    person = require_person(session, username)
    issued = issued or date.today()
    kind = parse_accreditation_kind(kind)
    _check_dates(issued, expiry, "field_expiry")
    duplicate = session.scalar(
        select(Accreditation.id).where(
            Accreditation.person_id == person.id,
            Accreditation.kind == kind,
            Accreditation.revoked_at.is_(None),
            Accreditation.issued == issued,
            Accreditation.expiry == expiry,
        )
    )
    if duplicate is not None:
        raise ChangeInvalid("accreditation_duplicate", name=person.username, kind=kind, id=duplicate)
    accreditation = Accreditation(person=person, kind=kind, issued=issued, expiry=expiry, created_by=actor)
    session.add(accreditation)
    session.flush()
    audit.record(
        session,
        AuditEventType.ACCREDITATION_ADD,
        actor=actor,
        object=f"accreditation:{accreditation.id}",
        details=_details(person=person.username, kind=kind, issued=issued, expiry=expiry),
    )
    return accreditation


def revoke_accreditation(session: Session, accreditation_id: int, *, actor: str) -> Accreditation:
    accreditation = session.get(Accreditation, accreditation_id)
    if accreditation is None:
        raise RecordNotFound("unknown_accreditation", id=accreditation_id)
    if accreditation.revoked_at is not None:
        raise ChangeInvalid("accreditation_revoked", id=accreditation_id, when=accreditation.revoked_at)
    accreditation.revoked_at = datetime.now(timezone.utc)
    audit.record(
        session,
        AuditEventType.ACCREDITATION_REVOKE,
        actor=actor,
        object=f"accreditation:{accreditation.id}",
        details={"person": accreditation.person.username, "kind": accreditation.kind},
    )
    return accreditation


# ---------------------------------------------------------------- opening hours, closed days, emergency closures


def set_opening_hours(session: Session, facility: str, schedule: str, *, actor: str, scope: Scope = EVERYTHING) -> Facility:
    """Replace the facility's weekly opening hours (see forms.parse_opening_hours; '' or 'always' = always open)."""
    place = require_facility(session, facility, scope)
    intervals = parse_opening_hours(schedule)
    before = format_hours(place.hours)
    after = format_hours(intervals)
    if before == after:
        raise ChangeInvalid("hours_unchanged", name=place.name, hours=shown_hours(intervals))
    place.hours.clear()
    session.flush()
    place.hours.extend(OpeningHours(weekday=i.weekday, opens=i.opens, closes=i.closes) for i in intervals)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}", details={"before": {"hours": before}, "after": {"hours": after}})
    return place


def add_closed_day(
    session: Session, facility: str, day: date, *, actor: str, note: str = "", scope: Scope = EVERYTHING
) -> FacilityClosure:
    """Close the facility for a whole day in its time zone (a holiday)."""
    place = require_facility(session, facility, scope)
    if any(c.day == day for c in place.closures):
        raise ChangeInvalid("closed_already", name=place.name, day=day.isoformat())
    closure = FacilityClosure(day=day, note=text_field(note, "field_note", MAX_NAME))
    place.closures.append(closure)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}", details={"closed_day_added": day.isoformat(), "note": closure.note})
    return closure


def remove_closed_day(session: Session, facility: str, day: date, *, actor: str, scope: Scope = EVERYTHING) -> None:
    place = require_facility(session, facility, scope)
    closure = next((c for c in place.closures if c.day == day), None)
    if closure is None:
        raise ChangeInvalid("not_closed", name=place.name, day=day.isoformat())
    place.closures.remove(closure)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}", details={"closed_day_removed": day.isoformat()})


FIRST_HOLIDAY_YEAR = 1955
LAST_HOLIDAY_YEAR = 2099


def japanese_holidays(year: int) -> dict[date, str]:
    """Japan's public holidays of `year` (substitute and citizens' holidays included) with their Japanese names, from
    the maintained `holidays` package (its calendar follows the Act on National Holidays, amendments included)."""
    if not FIRST_HOLIDAY_YEAR <= year <= LAST_HOLIDAY_YEAR:
        raise InputInvalid("holiday_year", year=year, first=FIRST_HOLIDAY_YEAR, last=LAST_HOLIDAY_YEAR)
    return dict(sorted(holidays.country_holidays("JP", years=year, language="ja").items()))


def add_public_holidays(session: Session, facility: str, year: int, *, actor: str, scope: Scope = EVERYTHING) -> list[FacilityClosure]:
    """Close the facility on each Japanese public holiday of `year`, noted with the holiday's Japanese name; days
    already closed keep their note. One FACILITY_CHANGE event lists the days added."""
    place = require_facility(session, facility, scope)
    closed = {c.day for c in place.closures}
    added = [FacilityClosure(day=day, note=name[:MAX_NAME]) for day, name in japanese_holidays(year).items() if day not in closed]
    if not added:
        raise ChangeInvalid("holidays_closed_already", name=place.name, year=year)
    place.closures.extend(added)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}",
                 details={"public_holidays_added": [c.day.isoformat() for c in added], "year": year})
    return added


def close_for_emergency(session: Session, facility: str, reason: str, *, actor: str, scope: Scope = EVERYTHING,
                        now: datetime | None = None) -> Facility:
    """Close the facility now, until reopened: entry is refused (EMERGENCY_CLOSURE) whatever the hours. Ending the
    sessions running there is the caller's next step (`access_control.admin.close_for_emergency`)."""
    place = require_facility(session, facility, scope)
    reason = _nonempty(reason, "field_closure_reason", MAX_REASON)
    if place.emergency_closed_at is not None:
        raise ChangeInvalid("closed_for_emergency_already", name=place.name, reason=place.emergency_reason)
    place.emergency_closed_at = now or datetime.now(timezone.utc)
    place.emergency_reason = reason
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}",
                 details={"emergency_closure": reason})
    return place


def reopen_after_emergency(session: Session, facility: str, *, actor: str, scope: Scope = EVERYTHING) -> Facility:
    place = require_facility(session, facility, scope)
    if place.emergency_closed_at is None:
        raise ChangeInvalid("not_closed_for_emergency", name=place.name)
    reason, since = place.emergency_reason, place.emergency_closed_at
    place.emergency_closed_at, place.emergency_reason = None, ""
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}",
                 details={"emergency_reopened": reason, "closed_at": since.isoformat()})
    return place


# ---------------------------------------------------------------- bookings and seats


def list_bookings(
    session: Session, *, username: str | None = None, facility: str | None = None, ending_after: datetime | None = None,
    scope: Scope = EVERYTHING,
) -> list[Booking]:
    """Bookings by start time, cancelled ones included; optionally of one person, one facility, or still running after a
    moment; only those at facilities within `scope`."""
    query = select(Booking).order_by(Booking.starts_at, Booking.id)
    if username is not None:
        query = query.where(Booking.person_id == require_person(session, username).id)
    if facility is not None:
        query = query.where(Booking.facility_id == require_facility(session, facility, scope).id)
    elif not scope.everything:
        query = query.where(Booking.facility_id.in_([f.id for f in list_facilities(session, scope)]))
    if ending_after is not None:
        query = query.where(Booking.ends_at > ending_after)
    return list(session.scalars(query))


def _within_opening_hours(place: Facility, starts_at: datetime, ends_at: datetime) -> bool:
    """The slot lies in one opening interval of one local day that is not closed (always true without hours)."""
    zone = ZoneInfo(place.timezone)
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    if start.date() in {c.day for c in place.closures}:
        return False
    if not place.hours:
        return True
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    # Wall-clock minutes after the start day's midnight (same tzinfo: no DST shift), so an end at 24:00 is 1440.
    start_minute, end_minute = ((t.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds() / 60 for t in (start, end))
    return any(h.weekday == start.weekday() and h.opens <= start_minute and end_minute <= h.closes for h in place.hours)


def peak_overlap(slots: Iterable[tuple[datetime, datetime]], starts_at: datetime, ends_at: datetime) -> int:
    """The most of `slots` (start inclusive, end exclusive) running at one moment between `starts_at` and `ends_at`."""
    changes: list[tuple[datetime, int]] = []
    for start, end in slots:
        start, end = max(start, starts_at), min(end, ends_at)
        if start < end:
            changes += [(start, 1), (end, -1)]
    running = peak = 0
    for _, step in sorted(changes):  # at one moment an end (-1) sorts before a start (+1): back-to-back slots share a seat
        running += step
        peak = max(peak, running)
    return peak


def _booked_slots(session: Session, place: Facility, starts_at: datetime, ends_at: datetime) -> list[tuple[datetime, datetime]]:
    return [
        (b.starts_at, b.ends_at)
        for b in session.execute(
            select(Booking.starts_at, Booking.ends_at).where(
                Booking.facility_id == place.id, Booking.cancelled_at.is_(None), Booking.starts_at < ends_at, Booking.ends_at > starts_at
            )
        )
    ]


@dataclass(frozen=True)
class SeatDay:
    """A facility's seats on one local day: the most booked at one moment, and how many are left then (None: not limited)."""

    day: date
    booked: int
    free: int | None
    closed: bool


def seat_days(session: Session, facility: str, first: date, days: int, *, scope: Scope = EVERYTHING) -> list[SeatDay]:
    """Seats per local day from `first`, for the booking page: the day's peak of bookings and the seats still free then."""
    place = require_facility(session, facility, scope)
    zone = ZoneInfo(place.timezone)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    end = start + timedelta(days=days + 1)
    slots = _booked_slots(session, place, start.astimezone(timezone.utc), end.astimezone(timezone.utc))
    closed = {c.day for c in place.closures}
    weekdays_open = {h.weekday for h in place.hours}
    result = []
    for n in range(days):
        day = first + timedelta(days=n)
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        booked = peak_overlap(slots, midnight, next_midnight)
        is_closed = day in closed or (bool(place.hours) and day.weekday() not in weekdays_open)
        result.append(SeatDay(day, booked, None if place.seats is None else max(0, place.seats - booked), is_closed))
    return result


def add_booking(
    session: Session,
    *,
    username: str,
    facility: str,
    starts_at: datetime,
    ends_at: datetime,
    actor: str,
    now: datetime | None = None,
    scope: Scope = EVERYTHING,
) -> Booking:
    """Book a seat for a person at a facility from `starts_at` until `ends_at` (exclusive);
    a time without an offset is read in the facility's time zone.

    Refused: an end not after the start, a slot already over, longer than a day,
    outside the facility's opening hours or on a closed day, no seat free for all of the slot
    (the facility's `seats`), or overlapping another booking of the same person (at any facility:
    nobody sits in two places)."""
    place = require_facility(session, facility, scope)
    person = require_person(session, username)
    zone = ZoneInfo(place.timezone)
    starts_at, ends_at = (t if t.tzinfo else t.replace(tzinfo=zone) for t in (starts_at, ends_at))
    if ends_at <= starts_at:
        raise InputInvalid("booking_reversed", end=times.shown(ends_at, place.timezone), start=times.shown(starts_at, place.timezone))
    if ends_at <= (now or datetime.now(timezone.utc)):
        raise InputInvalid("booking_past", end=times.shown(ends_at, place.timezone))
    if ends_at - starts_at > MAX_BOOKING:
        raise InputInvalid("booking_too_long")
    if not _within_opening_hours(place, starts_at, ends_at):
        raise ChangeInvalid("booking_outside_hours", name=place.name, hours=shown_hours(place.hours), zone=place.timezone)
    clash = session.scalar(
        select(Booking).where(
            Booking.person_id == person.id, Booking.cancelled_at.is_(None), Booking.starts_at < ends_at, Booking.ends_at > starts_at
        )
    )
    if clash is not None and not scope.covers(clash.facility.name):  # say nothing of the other facility
        raise ChangeInvalid("booking_clash_elsewhere", name=person.username)
    if clash is not None:
        raise ChangeInvalid(
            "booking_clash", name=person.username, id=clash.id, facility=clash.facility.name,
            start=times.shown(clash.starts_at, clash.facility.timezone), end=times.shown(clash.ends_at, clash.facility.timezone),
        )
    if place.seats is not None and peak_overlap(_booked_slots(session, place, starts_at, ends_at), starts_at, ends_at) >= place.seats:
        raise ChangeInvalid("booking_no_seat", name=place.name, seats=place.seats,
                            start=times.shown(starts_at, place.timezone), end=times.shown(ends_at, place.timezone))
    booking = Booking(person=person, facility=place, starts_at=starts_at, ends_at=ends_at, created_by=actor)
    session.add(booking)
    session.flush()
    audit.record(
        session,
        AuditEventType.BOOKING_ADD,
        actor=actor,
        object=f"booking:{booking.id}",
        details={"person": person.username, "facility": place.name, "starts_at": booking.starts_at.isoformat(), "ends_at": booking.ends_at.isoformat()},
    )
    return booking


def cancel_booking(session: Session, booking_id: int, *, actor: str, scope: Scope = EVERYTHING) -> Booking:
    """Cancel a booking; a session relying on it is stopped at its next re-check."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise RecordNotFound("unknown_booking", id=booking_id)
    if not scope.covers(booking.facility.name):
        raise OutOfScope("unknown_booking", id=booking_id)
    if booking.cancelled_at is not None:
        raise ChangeInvalid("booking_cancelled", id=booking_id, when=booking.cancelled_at)
    booking.cancelled_at = datetime.now(timezone.utc)
    audit.record(
        session,
        AuditEventType.BOOKING_CANCEL,
        actor=actor,
        object=f"booking:{booking.id}",
        details={"person": booking.person.username, "facility": booking.facility.name},
    )
    return booking
