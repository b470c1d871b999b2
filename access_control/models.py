"""Policy and audit tables: people, roles, projects, memberships, datasets,
grants, facilities (with opening hours, closed days, seats and managers), terminals,
accreditations, bookings and the audit ledger.

Enums are stored by value as plain strings (no native or CHECK constraint), so
adding a member needs no migration; renaming or removing one does.
Times are stored as UTC and always come back timezone-aware.
"""
from __future__ import annotations

import enum
import ipaddress
import json
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onsite_base.db import Base
from access_control.enums import AuditEventType, Outcome, Role


MAX_NAME = 200
"""Display names, facility names, terminal labels, closed-day notes (characters)."""
MAX_TITLE = 300
"""Project and dataset titles, a project's legal basis."""
MAX_PURPOSE = 2000
"""A project's purpose of use (a Text column: the limit is the service's, the same on both admin faces)."""
MAX_ADDRESS = 500
"""A facility's postal address."""
MAX_EMAIL = 254
MAX_PRESET = 64
MAX_REASON = 300
"""The reason of an emergency closure."""
NARROWEST_OVERRIDE_PREFIX = {4: 24, 6: 56}
"""A terminal network broader than this (a shorter prefix) is an override: registered only when asked for explicitly."""


class ProjectStatus(enum.Enum):
    """Administrative state of a project; only ACTIVE projects admit researchers."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned timezone-aware on every backend
    (SQLite keeps no offset), so values and their ISO text round-trip exactly."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def stored_enum(enum_class: type[enum.Enum]) -> SAEnum:
    return SAEnum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=40,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    """Canonical (NFKC, lower case) and shaped like an OS account name."""
    display_name: Mapped[str] = mapped_column(String(MAX_NAME))
    email: Mapped[str] = mapped_column(String(MAX_EMAIL), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    roles: Mapped[list[PersonRole]] = relationship(
        back_populates="person", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_set(self) -> set[Role]:
        return {r.role for r in self.roles}


class PersonRole(Base):
    __tablename__ = "person_role"
    __table_args__ = (UniqueConstraint("person_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(stored_enum(Role))

    person: Mapped[Person] = relationship(back_populates="roles")


class Project(Base):
    __tablename__ = "project"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    purpose: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(String(MAX_TITLE), default="")
    """Reference to the approval, e.g. the article of the Statistics Act."""
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    """Last day on which the project is valid (inclusive)."""
    status: Mapped[ProjectStatus] = mapped_column(stored_enum(ProjectStatus), default=ProjectStatus.ACTIVE)
    preset: Mapped[str] = mapped_column(String(MAX_PRESET), default="acro-default")
    """Disclosure-control rule preset the review service applies."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def is_active_on(self, day: date) -> bool:
        return self.status is ProjectStatus.ACTIVE and self.start_date <= day <= self.end_date


class Membership(Base):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("project_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("project.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship()
    person: Mapped[Person] = relationship()


class Dataset(Base):
    __tablename__ = "dataset"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    """Also the SQL view name in sessions: ^[a-z][a-z0-9_]{0,62}$."""
    title_ja: Mapped[str] = mapped_column(String(MAX_TITLE))
    title_en: Mapped[str] = mapped_column(String(MAX_TITLE))
    path: Mapped[str] = mapped_column(String(1024))
    rows: Mapped[int] = mapped_column(BigInteger)
    source_sha256: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Grant(Base):
    """A dataset granted to a project for a period (inclusive dates)."""

    __tablename__ = "dataset_grant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("project.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("dataset.id"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship()
    dataset: Mapped[Dataset] = relationship()

    def is_valid_on(self, day: date) -> bool:
        return self.revoked_at is None and self.valid_from <= day <= self.valid_until


class Facility(Base):
    __tablename__ = "facility"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    address: Mapped[str] = mapped_column(String(MAX_ADDRESS), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    """IANA zone in which the facility's dates (project validity) are read."""
    booking_required: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether entry here needs a booking of the person covering the moment of entry."""
    accreditation_kind: Mapped[str | None] = mapped_column(String(64), default=None)
    """Kind of accreditation researchers need to enter here; None: none needed."""
    seats: Mapped[int | None] = mapped_column(Integer, default=None)
    """How many people may be booked at once; None: not limited."""
    emergency_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """Set while the facility is closed for an emergency (until reopened): nobody enters, live sessions were ended."""
    emergency_reason: Mapped[str] = mapped_column(String(MAX_REASON), default="")

    terminals: Mapped[list[Terminal]] = relationship(back_populates="facility", lazy="selectin")
    hours: Mapped[list[OpeningHours]] = relationship(
        back_populates="facility", cascade="all, delete-orphan", lazy="selectin", order_by="(OpeningHours.weekday, OpeningHours.opens)"
    )
    closures: Mapped[list[FacilityClosure]] = relationship(
        back_populates="facility", cascade="all, delete-orphan", lazy="selectin", order_by="FacilityClosure.day"
    )
    managers: Mapped[list[FacilityManager]] = relationship(back_populates="facility", cascade="all, delete-orphan")


class FacilityManager(Base):
    """A person who manages a facility (Role.FACILITY_MANAGER, scoped): its terminals, hours, closures, seats,
    bookings, entry log and live sessions, and nothing else."""

    __tablename__ = "facility_manager"
    __table_args__ = (UniqueConstraint("person_id", "facility_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship()
    facility: Mapped[Facility] = relationship(back_populates="managers")


class OpeningHours(Base):
    """One opening interval of a weekday, in minutes after local midnight: open
    from `opens` (inclusive) until `closes` (exclusive; 1440 is midnight). A
    facility without any row is always open; with rows, a weekday without one is closed."""

    __tablename__ = "facility_hours"
    __table_args__ = (UniqueConstraint("facility_id", "weekday", "opens"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    """0 Monday … 6 Sunday (date.weekday())."""
    opens: Mapped[int] = mapped_column(Integer)
    closes: Mapped[int] = mapped_column(Integer)

    facility: Mapped[Facility] = relationship(back_populates="hours")


class FacilityClosure(Base):
    """A whole day (in the facility's time zone) on which the facility is closed, e.g. a holiday."""

    __tablename__ = "facility_closure"
    __table_args__ = (UniqueConstraint("facility_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(MAX_NAME), default="")

    facility: Mapped[Facility] = relationship(back_populates="closures")


class Terminal(Base):
    __tablename__ = "terminal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    """Normalised CIDR text, IPv4 or IPv6 (a single host is /32 or /128)."""
    label: Mapped[str] = mapped_column(String(MAX_NAME), default="")

    facility: Mapped[Facility] = relationship(back_populates="terminals")

    @property
    def is_override(self) -> bool:
        return is_override_network(self.address)


def is_override_network(address: str) -> bool:
    """Whether a terminal network (CIDR text) is broader than a /24 (IPv4) or /56 (IPv6): registered only
    with an explicit override, and flagged wherever terminals are shown."""
    network = ipaddress.ip_network(address, strict=False)
    return network.prefixlen < NARROWEST_OVERRIDE_PREFIX[network.version]


class Accreditation(Base):
    """A person's accreditation of a kind (e.g. completed on-site training), valid
    from `issued` through `expiry` (inclusive dates in the facility's time zone)."""

    __tablename__ = "accreditation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    issued: Mapped[date] = mapped_column(Date)
    expiry: Mapped[date] = mapped_column(Date)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship()


class Booking(Base):
    """A seat booked by a person at a facility from `starts_at` (inclusive) until `ends_at` (exclusive)."""

    __tablename__ = "booking"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship()
    facility: Mapped[Facility] = relationship()


class AuditEvent(Base):
    """One event of the hash-chained ledger. Rows are only ever appended
    (access_control.audit.record); `hash` covers every other column."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[AuditEventType] = mapped_column(stored_enum(AuditEventType), index=True)
    object: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[Outcome] = mapped_column(stored_enum(Outcome))
    details: Mapped[str] = mapped_column(Text, default="{}")
    """Canonical JSON text (sorted keys)."""
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """Unique: two events can never follow the same one, so the chain cannot fork."""
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def details_dict(self) -> dict[str, Any]:
        return json.loads(self.details)


class AuditTreeNode(Base):
    """A complete subtree of the ledger's Merkle tree (access_control.ledger): the RFC 9162 hash of the
    2**level events from seq (idx << level) + 1. Only subtrees of at least 16 events are kept; smaller
    ones are recomputed from the events. Written once, when a tree head is signed."""

    __tablename__ = "audit_tree_node"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditTreeHead(Base):
    """A signed tree head: the ledger's first `tree_size` events have Merkle root `root_hash`, signed by
    the log key `key_id` (SHA-256 of its raw public key) at `timestamp` (the signed ISO text)."""

    __tablename__ = "audit_tree_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))


class AuditCosignature(Base):
    """A witness's co-signature of a tree head it checked against the last head it had seen
    (`onsite audit witness`); `witness_key` is its raw Ed25519 public key, base64."""

    __tablename__ = "audit_cosignature"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    witness: Mapped[str] = mapped_column(String(200), index=True)
    witness_key: Mapped[str] = mapped_column(String(64))
    tree_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    root_hash: Mapped[str] = mapped_column(String(64))
    head_timestamp: Mapped[str] = mapped_column(String(40))
    witnessed_at: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(100))
