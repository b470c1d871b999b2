"""access control: people, roles, projects, memberships, datasets, grants,
facilities, terminals and the audit ledger

Revision ID: ac0001
Revises:
Create Date: 2026-11-26

Enum columns are plain VARCHAR(40) holding the member's value (no CHECK), so
adding a member needs no migration. Timestamps are naive UTC.
"""
from alembic import op
import sqlalchemy as sa

revision = "ac0001"
down_revision = None
branch_labels = ("access_control",)
depends_on = None

ENUM = sa.String(length=40)


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", ENUM, nullable=False),
        sa.Column("object", sa.String(length=500), nullable=False),
        sa.Column("outcome", ENUM, nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_event_hash")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_event_prev_hash")),
    )
    op.create_index(op.f("ix_audit_event_action"), "audit_event", ["action"])

    op.create_table(
        "dataset",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("title_ja", sa.String(length=300), nullable=False),
        sa.Column("title_en", sa.String(length=300), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset")),
    )
    op.create_table(
        "facility",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility")),
        sa.UniqueConstraint("name", name=op.f("uq_facility_name")),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("username", name=op.f("uq_person_username")),
    )
    op.create_table(
        "project",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.String(length=300), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("preset", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
    )
    op.create_table(
        "dataset_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=63), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], name=op.f("fk_dataset_grant_dataset_id_dataset")),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_dataset_grant_project_id_project")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_grant")),
    )
    op.create_index(op.f("ix_dataset_grant_dataset_id"), "dataset_grant", ["dataset_id"])
    op.create_index(op.f("ix_dataset_grant_project_id"), "dataset_grant", ["project_id"])
    op.create_table(
        "membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_membership_person_id_person")),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_membership_project_id_project")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership")),
        sa.UniqueConstraint("project_id", "person_id", name=op.f("uq_membership_project_id")),
    )
    op.create_index(op.f("ix_membership_person_id"), "membership", ["person_id"])
    op.create_index(op.f("ix_membership_project_id"), "membership", ["project_id"])
    op.create_table(
        "person_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", ENUM, nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_person_role_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_role")),
        sa.UniqueConstraint("person_id", "role", name=op.f("uq_person_role_person_id")),
    )
    op.create_index(op.f("ix_person_role_person_id"), "person_role", ["person_id"])
    op.create_table(
        "terminal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], name=op.f("fk_terminal_facility_id_facility")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal")),
        sa.UniqueConstraint("address", name=op.f("uq_terminal_address")),
    )
    op.create_index(op.f("ix_terminal_facility_id"), "terminal", ["facility_id"])


def downgrade() -> None:
    for table in ("terminal", "person_role", "membership", "dataset_grant", "project", "person", "facility", "dataset", "audit_event"):
        op.drop_table(table)
