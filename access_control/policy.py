"""Administrative actions on the policy store, and the reads others rely on.

Each action validates its input first (UserError saying what to fix, nothing
changed) and writes its audit event in the caller's transaction, so the change
and its record commit together. The caller passes the session and `actor`.

With LDAP as the directory, role and membership changes also take the
`directory` (an `access_control.ldap.LdapDirectory`): its groups are changed
after the database change and before the caller commits, so a directory
failure raises and the caller's transaction rolls the database change back.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control import audit
from access_control.entry import MINUTES_PER_DAY, OpeningInterval
from access_control.enums import AuditEventType, Role
from access_control.identity import LocalIdentityStore, canonical_username
from access_control.models import (
    Accreditation,
    Booking,
    Dataset,
    Facility,
    FacilityClosure,
    Grant,
    Membership,
    OpeningHours,
    Person,
    PersonRole,
    Project,
    ProjectStatus,
    Terminal,
)
from dataplane.ids import is_dataset_id
from onsite_base.errors import UserError

PROJECT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ACCREDITATION_KIND_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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
    directory: GroupDirectory | None = None,
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


def grant_role(session: Session, username: str, role: Role, *, actor: str, directory: GroupDirectory | None = None) -> None:
    person = require_person(session, username)
    if role in person.role_set:
        raise UserError(f"person {person.username!r} already has role {role.value}")
    person.roles.append(PersonRole(role=role))
    session.flush()
    audit.record(session, AuditEventType.ROLE_GRANT, actor=actor, object=f"person:{person.username}", details={"role": role.value})
    if directory is not None:
        directory.grant_role(person.username, role)


def revoke_role(session: Session, username: str, role: Role, *, actor: str, directory: GroupDirectory | None = None) -> None:
    person = require_person(session, username)
    held = [r for r in person.roles if r.role is role]
    if not held:
        raise UserError(f"person {person.username!r} does not have role {role.value}")
    person.roles.remove(held[0])
    session.flush()
    audit.record(session, AuditEventType.ROLE_REVOKE, actor=actor, object=f"person:{person.username}", details={"role": role.value})
    if directory is not None:
        directory.revoke_role(person.username, role)


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


def add_member(
    session: Session, project_id: str, username: str, *, actor: str, directory: GroupDirectory | None = None
) -> Membership:
    project = require_project(session, project_id)
    person = require_person(session, username)
    exists = session.scalar(select(Membership.id).where(Membership.project_id == project.id, Membership.person_id == person.id))
    if exists is not None:
        raise UserError(f"{person.username!r} is already a member of project {project.id!r}")
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
        raise UserError(f"{person.username!r} is not a member of project {project.id!r}")
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
    session: Session,
    name: str,
    *,
    actor: str,
    address: str | None = None,
    timezone_name: str | None = None,
    booking_required: bool | None = None,
    accreditation_kind: str | None = None,
) -> Facility:
    """Change a facility's address, time zone (in which project dates, opening hours and
    accreditation expiry are read), whether entry needs a booking, or the kind of
    accreditation researchers need there (`accreditation_kind=""`: none needed)."""
    facility = require_facility(session, name)
    changes: dict[str, object] = {
        "address": None if address is None else address.strip(),
        "timezone": None if timezone_name is None else _check_timezone(timezone_name),
        "booking_required": booking_required,
    }
    changes = {k: v for k, v in changes.items() if v is not None and v != getattr(facility, k)}
    if accreditation_kind is not None:
        kind = check_accreditation_kind(accreditation_kind) if accreditation_kind.strip() else None
        if kind != facility.accreditation_kind:
            changes["accreditation_kind"] = kind
    if not changes:
        raise UserError(
            f"nothing to change for facility {name!r}: give a new --address, --timezone, --booking-required/--no-booking-required "
            "or --accreditation-kind"
        )
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
                raise UserError(f"column {', '.join(missing)} is empty")
            roles = _split_list(row.get("roles"), role_from_text)
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


# ---------------------------------------------------------------- accreditations


def check_accreditation_kind(kind: str) -> str:
    kind = kind.strip().lower()
    if not ACCREDITATION_KIND_PATTERN.fullmatch(kind):
        raise UserError(f"accreditation kind {kind!r} is not allowed: use 1-64 characters a-z, 0-9, '.', '_' and '-', e.g. onsite-training")
    return kind


def list_accreditations(session: Session, username: str | None = None) -> list[Accreditation]:
    """Accreditations, revoked ones included, of one person or everyone."""
    query = select(Accreditation).order_by(Accreditation.id)
    if username is not None:
        query = query.where(Accreditation.person_id == require_person(session, username).id)
    return list(session.scalars(query))


def add_accreditation(session: Session, *, username: str, kind: str, issued: date, expiry: date, actor: str) -> Accreditation:
    """Record that a person holds an accreditation of `kind` from `issued` through `expiry` (inclusive)."""
    person = require_person(session, username)
    kind = check_accreditation_kind(kind)
    _check_dates(issued, expiry, "expiry")
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
        raise UserError(f"{person.username!r} already holds this {kind} accreditation (number {duplicate})")
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
        raise UserError(f"unknown accreditation {accreditation_id}: see `onsite admin accreditation list`")
    if accreditation.revoked_at is not None:
        raise UserError(f"accreditation {accreditation_id} was already revoked at {accreditation.revoked_at.isoformat()}")
    accreditation.revoked_at = datetime.now(timezone.utc)
    audit.record(
        session,
        AuditEventType.ACCREDITATION_REVOKE,
        actor=actor,
        object=f"accreditation:{accreditation.id}",
        details={"person": accreditation.person.username, "kind": accreditation.kind},
    )
    return accreditation


# ---------------------------------------------------------------- opening hours and closed days


def parse_minute(text: str) -> int:
    """'09:00' -> 540; '24:00' is the end of the day."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    minute = int(match[1]) * 60 + int(match[2]) if match and int(match[2]) < 60 else -1
    if not 0 <= minute <= MINUTES_PER_DAY:
        raise UserError(f"{text!r} is not a time of day: use HH:MM from 00:00 to 24:00")
    return minute


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_opening_hours(text: str) -> list[OpeningInterval]:
    """A weekly schedule such as 'mon-fri 09:00-17:30, sat 10:00-12:00' (days mon…sun,
    ranges or single days; several intervals a day are separate entries). Empty: always open."""
    intervals: list[OpeningInterval] = []
    for entry in filter(None, (e.strip() for e in re.split(r"[,;]", text.lower()))):
        match = re.fullmatch(r"([a-z]{3})(?:-([a-z]{3}))?\s+(\S+)-(\S+)", entry)
        if match is None or match[1] not in WEEKDAYS or (match[2] and match[2] not in WEEKDAYS):
            raise UserError(f"opening hours {entry!r} not understood: write e.g. 'mon-fri 09:00-17:30' (days mon, tue, wed, thu, fri, sat, sun)")
        first = WEEKDAYS.index(match[1])
        last = WEEKDAYS.index(match[2]) if match[2] else first
        if last < first:
            raise UserError(f"opening hours {entry!r}: the day range runs backwards (write mon-fri, not fri-mon)")
        opens, closes = parse_minute(match[3]), parse_minute(match[4])
        if closes <= opens:
            raise UserError(f"opening hours {entry!r}: closing time must be after opening time (intervals cannot pass midnight)")
        intervals += [OpeningInterval(day, opens, closes) for day in range(first, last + 1)]
    intervals.sort(key=lambda i: (i.weekday, i.opens))
    for before, after in zip(intervals, intervals[1:]):
        if before.weekday == after.weekday and after.opens < before.closes:
            raise UserError(f"opening hours overlap on {WEEKDAYS[before.weekday]}: {format_hours([before])} and {format_hours([after])}")
    return intervals


def format_hours(intervals: Iterable[OpeningInterval | OpeningHours]) -> str:
    """The inverse of parse_opening_hours, one entry per day and interval ('' when always open)."""
    return ", ".join(f"{WEEKDAYS[i.weekday]} {format_minute(i.opens)}-{format_minute(i.closes)}" for i in intervals)


def set_opening_hours(session: Session, facility: str, schedule: str, *, actor: str) -> Facility:
    """Replace the facility's weekly opening hours (see parse_opening_hours; '' = always open)."""
    place = require_facility(session, facility)
    intervals = parse_opening_hours(schedule)
    before = format_hours(place.hours)
    after = format_hours(intervals)
    if before == after:
        raise UserError(f"facility {place.name!r} already has these opening hours ({after or 'always open'})")
    place.hours.clear()
    session.flush()
    place.hours.extend(OpeningHours(weekday=i.weekday, opens=i.opens, closes=i.closes) for i in intervals)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}", details={"before": {"hours": before}, "after": {"hours": after}})
    return place


def add_closed_day(session: Session, facility: str, day: date, *, actor: str, note: str = "") -> FacilityClosure:
    """Close the facility for a whole day in its time zone (a holiday)."""
    place = require_facility(session, facility)
    if any(c.day == day for c in place.closures):
        raise UserError(f"facility {place.name!r} is already closed on {day.isoformat()}")
    closure = FacilityClosure(day=day, note=_nonempty(note, "note", 200) if note.strip() else "")
    place.closures.append(closure)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}", details={"closed_day_added": day.isoformat(), "note": closure.note})
    return closure


def remove_closed_day(session: Session, facility: str, day: date, *, actor: str) -> None:
    place = require_facility(session, facility)
    closure = next((c for c in place.closures if c.day == day), None)
    if closure is None:
        raise UserError(f"facility {place.name!r} is not closed on {day.isoformat()}")
    place.closures.remove(closure)
    session.flush()
    audit.record(session, AuditEventType.FACILITY_CHANGE, actor=actor, object=f"facility:{place.name}", details={"closed_day_removed": day.isoformat()})


# ---------------------------------------------------------------- bookings


def list_bookings(
    session: Session, *, username: str | None = None, facility: str | None = None, ending_after: datetime | None = None
) -> list[Booking]:
    """Bookings by start time, cancelled ones included; optionally of one person, one facility, or still running after a moment."""
    query = select(Booking).order_by(Booking.starts_at, Booking.id)
    if username is not None:
        query = query.where(Booking.person_id == require_person(session, username).id)
    if facility is not None:
        query = query.where(Booking.facility_id == require_facility(session, facility).id)
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


def add_booking(
    session: Session,
    *,
    username: str,
    facility: str,
    starts_at: datetime,
    ends_at: datetime,
    actor: str,
    now: datetime | None = None,
) -> Booking:
    """Book a seat for a person at a facility from `starts_at` until `ends_at` (exclusive).

    Refused: an end not after the start, a slot already over, longer than a day,
    outside the facility's opening hours or on a closed day, or overlapping
    another booking of the same person (at any facility: nobody sits in two places)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise UserError("booking times need a time zone offset, e.g. 2026-12-01T09:00+09:00")
    person = require_person(session, username)
    place = require_facility(session, facility)
    if ends_at <= starts_at:
        raise UserError(f"booking end {ends_at.isoformat()} is not after its start {starts_at.isoformat()}: swap or correct them")
    if ends_at <= (now or datetime.now(timezone.utc)):
        raise UserError(f"booking end {ends_at.isoformat()} is already past: book a slot in the future")
    if ends_at - starts_at > MAX_BOOKING:
        raise UserError("a booking may last at most 24 hours: book each day separately")
    if not _within_opening_hours(place, starts_at, ends_at):
        raise UserError(
            f"the slot is outside the opening hours of {place.name!r} ({format_hours(place.hours) or 'always open'}, "
            f"time zone {place.timezone}) or on a closed day: see `onsite admin facility show`"
        )
    clash = session.scalar(
        select(Booking).where(
            Booking.person_id == person.id, Booking.cancelled_at.is_(None), Booking.starts_at < ends_at, Booking.ends_at > starts_at
        )
    )
    if clash is not None:
        raise UserError(
            f"{person.username!r} already has booking {clash.id} at {clash.facility.name!r} from {clash.starts_at.isoformat()} "
            f"to {clash.ends_at.isoformat()}, which overlaps: cancel it first or choose another slot"
        )
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


def cancel_booking(session: Session, booking_id: int, *, actor: str) -> Booking:
    """Cancel a booking; a session relying on it is stopped at its next re-check."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise UserError(f"unknown booking {booking_id}: see `onsite admin booking list`")
    if booking.cancelled_at is not None:
        raise UserError(f"booking {booking_id} was already cancelled at {booking.cancelled_at.isoformat()}")
    booking.cancelled_at = datetime.now(timezone.utc)
    audit.record(
        session,
        AuditEventType.BOOKING_CANCEL,
        actor=actor,
        object=f"booking:{booking.id}",
        details={"person": booking.person.username, "facility": booking.facility.name},
    )
    return booking
