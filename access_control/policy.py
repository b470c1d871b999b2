"""Administrative actions on the policy store, and the reads others rely on.

Each action validates its input first (UserError saying what to fix, nothing
changed) and writes its audit event in the caller's transaction, so the change
and its record commit together. The caller passes the session and `actor`.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control import audit
from access_control.enums import AuditEventType, Role
from access_control.identity import LocalIdentityStore, canonical_username
from access_control.models import (
    Dataset,
    Facility,
    Grant,
    Membership,
    Person,
    PersonRole,
    Project,
    ProjectStatus,
    Terminal,
)
from onsite.errors import UserError

PROJECT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
DATASET_ID_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
T = TypeVar("T")

@functools.cache
def _store() -> LocalIdentityStore:
    """Created on first use: building one hashes a timing-equaliser password."""
    return LocalIdentityStore()


# ---------------------------------------------------------------- reads


def get_person(session: Session, username: str) -> Person | None:
    try:
        name = canonical_username(username)
    except UserError:
        return None
    return session.scalar(select(Person).where(Person.username == name))


def require_person(session: Session, username: str) -> Person:
    person = get_person(session, username)
    if person is None:
        raise UserError(f"unknown person {username!r}: add them first with `onsite admin person add`")
    return person


def require_project(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise UserError(f"unknown project {project_id!r}: see `onsite admin project list`")
    return project


def require_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise UserError(f"unknown dataset {dataset_id!r}: ingest it first with `onsite admin dataset ingest`")
    return dataset


def require_facility(session: Session, name: str) -> Facility:
    facility = session.scalar(select(Facility).where(Facility.name == name))
    if facility is None:
        raise UserError(f"unknown facility {name!r}: see `onsite admin facility list`")
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


def list_facilities(session: Session) -> list[Facility]:
    return list(session.scalars(select(Facility).order_by(Facility.name)))


def list_terminals(session: Session) -> list[Terminal]:
    return list(session.scalars(select(Terminal).order_by(Terminal.facility_id, Terminal.address)))


# ---------------------------------------------------------------- validation


def _nonempty(value: str, what: str, max_length: int) -> str:
    value = value.strip()
    if not value:
        raise UserError(f"{what} must not be empty")
    if len(value) > max_length:
        raise UserError(f"{what} is too long: at most {max_length} characters")
    return value


def _check_dates(start: date, end: date, what: str = "end date") -> None:
    if end < start:
        raise UserError(f"{what} {end.isoformat()} is before the start {start.isoformat()}: swap or correct them")


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A terminal address: an IPv4/IPv6 address or CIDR network, host bits clear."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as e:
        hint = ""
        try:
            hint = f" (did you mean {ipaddress.ip_network(text.strip(), strict=False)}?)"
        except ValueError:
            pass
        raise UserError(f"malformed terminal address {text!r}: give an IP address or CIDR network{hint}; {e}") from None


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
) -> Person:
    name = canonical_username(username)
    display_name = _nonempty(display_name, "display name", 200)
    email = email.strip()
    if email and not EMAIL_PATTERN.fullmatch(email):
        raise UserError(f"malformed e-mail address {email!r}")
    if session.scalar(select(Person.id).where(Person.username == name)) is not None:
        raise UserError(f"person {name!r} already exists: use `onsite admin person show {name}`")
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
    return person


def set_password(session: Session, username: str, password: str, *, actor: str) -> None:
    person = require_person(session, username)
    person.password_hash = _store().hash_password(password, person.username)
    person.failed_logins = 0
    audit.record(session, AuditEventType.PERSON_CHANGE, actor=actor, object=f"person:{person.username}", details={"change": "password"})


def set_disabled(session: Session, username: str, disabled: bool, *, actor: str) -> None:
    person = require_person(session, username)
    if person.disabled == disabled:
        raise UserError(f"person {person.username!r} is already {'disabled' if disabled else 'enabled'}")
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
        raise UserError(f"person {person.username!r} is not locked")
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


def grant_role(session: Session, username: str, role: Role, *, actor: str) -> None:
    person = require_person(session, username)
    if role in person.role_set:
        raise UserError(f"person {person.username!r} already has role {role.value}")
    person.roles.append(PersonRole(role=role))
    session.flush()
    audit.record(session, AuditEventType.ROLE_GRANT, actor=actor, object=f"person:{person.username}", details={"role": role.value})


def revoke_role(session: Session, username: str, role: Role, *, actor: str) -> None:
    person = require_person(session, username)
    held = [r for r in person.roles if r.role is role]
    if not held:
        raise UserError(f"person {person.username!r} does not have role {role.value}")
    person.roles.remove(held[0])
    session.flush()
    audit.record(session, AuditEventType.ROLE_REVOKE, actor=actor, object=f"person:{person.username}", details={"role": role.value})


# ---------------------------------------------------------------- projects and members


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
    preset: str = "acro-default",
    status: ProjectStatus = ProjectStatus.ACTIVE,
) -> Project:
    if not PROJECT_ID_PATTERN.fullmatch(project_id):
        raise UserError(f"project id {project_id!r} is not allowed: use 1-32 characters a-z, 0-9 and '-', e.g. p2026-001")
    title = _nonempty(title, "project title", 300)
    _check_dates(start_date, end_date)
    preset = _nonempty(preset, "rule preset", 64)
    if session.get(Project, project_id) is not None:
        raise UserError(f"project {project_id!r} already exists: use `onsite admin project change`")
    project = Project(
        id=project_id,
        title=title,
        purpose=purpose.strip(),
        legal_basis=legal_basis.strip(),
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
) -> Project:
    """Change the given fields; the others stay. Dates are checked as they will end up."""
    project = require_project(session, project_id)
    changes = {
        "title": None if title is None else _nonempty(title, "project title", 300),
        "purpose": None if purpose is None else purpose.strip(),
        "legal_basis": None if legal_basis is None else legal_basis.strip(),
        "start_date": start_date,
        "end_date": end_date,
        "status": status,
        "preset": None if preset is None else _nonempty(preset, "rule preset", 64),
    }
    changes = {k: v for k, v in changes.items() if v is not None and v != getattr(project, k)}
    if not changes:
        raise UserError(f"nothing to change for project {project_id!r}: give at least one new value")
    _check_dates(start_date or project.start_date, end_date or project.end_date)
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


def add_member(session: Session, project_id: str, username: str, *, actor: str) -> Membership:
    project = require_project(session, project_id)
    person = require_person(session, username)
    exists = session.scalar(select(Membership.id).where(Membership.project_id == project.id, Membership.person_id == person.id))
    if exists is not None:
        raise UserError(f"{person.username!r} is already a member of project {project.id!r}")
    membership = Membership(project=project, person=person)
    session.add(membership)
    session.flush()
    audit.record(session, AuditEventType.MEMBER_ADD, actor=actor, object=f"project:{project.id}", details={"person": person.username})
    return membership


def remove_member(session: Session, project_id: str, username: str, *, actor: str) -> None:
    project = require_project(session, project_id)
    person = require_person(session, username)
    membership = session.scalar(select(Membership).where(Membership.project_id == project.id, Membership.person_id == person.id))
    if membership is None:
        raise UserError(f"{person.username!r} is not a member of project {project.id!r}")
    session.delete(membership)
    session.flush()
    audit.record(session, AuditEventType.MEMBER_REMOVE, actor=actor, object=f"project:{project.id}", details={"person": person.username})


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
    if not DATASET_ID_PATTERN.fullmatch(dataset_id):
        raise UserError(f"dataset id {dataset_id!r} is not allowed: use a-z, 0-9 and '_', starting with a letter (at most 63)")
    title_ja = _nonempty(title_ja, "Japanese title", 300)
    title_en = _nonempty(title_en, "English title", 300)
    path = _nonempty(str(path), "dataset path", 1024)
    if not isinstance(rows, int) or rows < 0:
        raise UserError(f"row count must be a whole number ≥ 0, not {rows!r}")
    source_sha256 = source_sha256.lower()
    if not SHA256_PATTERN.fullmatch(source_sha256):
        raise UserError(f"source SHA-256 {source_sha256!r} is malformed: 64 hex digits expected")
    dataset = session.get(Dataset, dataset_id)
    existed = dataset is not None
    if existed and not replace:
        raise UserError(f"dataset {dataset_id!r} is already registered: choose another id or re-ingest to replace it")
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
    valid_from: date,
    valid_until: date,
    actor: str,
) -> Grant:
    project = require_project(session, project_id)
    dataset = require_dataset(session, dataset_id)
    _check_dates(valid_from, valid_until, "grant end")
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
        raise UserError(
            f"dataset {dataset.id!r} is already granted to project {project.id!r} for overlapping dates (grant {overlapping}): "
            "revoke that grant first or choose other dates"
        )
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
        raise UserError(f"unknown grant {grant_id}: see `onsite admin grant list`")
    if grant.revoked_at is not None:
        raise UserError(f"grant {grant_id} was already revoked at {grant.revoked_at.isoformat()}")
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


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"unknown time zone {name!r}: use an IANA name such as Asia/Tokyo") from None
    return name


def add_facility(session: Session, *, name: str, actor: str, address: str = "", timezone_name: str = "Asia/Tokyo") -> Facility:
    name = _nonempty(name, "facility name", 200)
    _check_timezone(timezone_name)
    if session.scalar(select(Facility.id).where(Facility.name == name)) is not None:
        raise UserError(f"facility {name!r} already exists")
    facility = Facility(name=name, address=address.strip(), timezone=timezone_name)
    session.add(facility)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_ADD, actor=actor, object=f"facility:{name}", details={"timezone": timezone_name})
    return facility


def change_facility(
    session: Session, name: str, *, actor: str, address: str | None = None, timezone_name: str | None = None
) -> Facility:
    """Change a facility's address or time zone (the zone in which project dates are read)."""
    facility = require_facility(session, name)
    changes = {
        "address": None if address is None else address.strip(),
        "timezone": None if timezone_name is None else _check_timezone(timezone_name),
    }
    changes = {k: v for k, v in changes.items() if v is not None and v != getattr(facility, k)}
    if not changes:
        raise UserError(f"nothing to change for facility {name!r}: give a new --address or --timezone")
    before = {k: getattr(facility, k) for k in changes}
    for key, value in changes.items():
        setattr(facility, key, value)
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{name}", details={"before": before, "after": changes})
    return facility


def add_terminal(session: Session, *, facility: str, address: str, actor: str, label: str = "") -> Terminal:
    """Register a terminal (an address or network) at a facility. A network that
    overlaps another facility's terminal is refused: the facility, and so the
    time zone of the entry decision, would be ambiguous."""
    place = require_facility(session, facility)
    network = parse_network(address)
    for other in list_terminals(session):
        other_network = ipaddress.ip_network(other.address)
        if other_network == network:
            raise UserError(f"terminal {network} is already registered at facility {other.facility.name!r}")
        if other.facility_id != place.id and other_network.version == network.version and other_network.overlaps(network):
            raise UserError(f"terminal {network} overlaps {other_network} of facility {other.facility.name!r}")
    terminal = Terminal(facility=place, address=str(network), label=label.strip())
    session.add(terminal)
    session.flush()
    audit.record(
        session, AuditEventType.TERMINAL_ADD, actor=actor, object=f"terminal:{network}", details={"facility": place.name, "label": terminal.label}
    )
    return terminal


def remove_terminal(session: Session, *, address: str, actor: str) -> None:
    network = parse_network(address)
    terminal = session.scalar(select(Terminal).where(Terminal.address == str(network)))
    if terminal is None:
        raise UserError(f"no terminal {network} is registered: see `onsite admin terminal list`")
    facility = terminal.facility.name
    session.delete(terminal)
    session.flush()
    audit.record(session, AuditEventType.TERMINAL_REMOVE, actor=actor, object=f"terminal:{network}", details={"facility": facility})


# ---------------------------------------------------------------- bulk import

IMPORT_COLUMNS = ("username", "display_name", "email", "roles", "projects")
"""CSV header for `import_people`; roles and projects are lists separated by ';'."""


@dataclass(frozen=True)
class ImportSummary:
    people_added: int
    roles_granted: int
    memberships_added: int


def import_people(session: Session, rows: Iterable[Mapping[str, str | None]], *, actor: str) -> ImportSummary:
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
                raise UserError(f"column {', '.join(missing)} is empty")
            roles = _split_list(row.get("roles"), role_from_text)
            projects = _split_list(row.get("projects"), str)
            person = get_person(session, row["username"] or "")
            if person is None:
                person = add_person(
                    session, username=row["username"] or "", display_name=row["display_name"] or "", email=row.get("email") or "", roles=roles, actor=actor
                )
                added += 1
            else:
                for role in sorted(set(roles) - person.role_set, key=lambda r: r.value):
                    grant_role(session, person.username, role, actor=actor)
                    granted += 1
            member_of = {p.id for p in projects_of(session, person.username)}
            for project_id in projects:
                if project_id not in member_of:
                    add_member(session, project_id, person.username, actor=actor)
                    member_of.add(project_id)
                    joined += 1
        except UserError as e:
            raise UserError(f"line {line}: {e}; nothing was imported") from None
    return ImportSummary(added, granted, joined)


def role_from_text(text: str) -> Role:
    try:
        return Role(text.strip().upper())
    except ValueError:
        raise UserError(f"unknown role {text!r}: use {', '.join(r.value.lower() for r in Role)}") from None


def _split_list(cell: str | None, parse: Callable[[str], T]) -> list[T]:
    return [parse(item.strip()) for item in (cell or "").split(";") if item.strip()]
