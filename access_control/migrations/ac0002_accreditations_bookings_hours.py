"""access control: accreditations, bookings, facility opening hours and closed days

Revision ID: ac0002
Revises: ac0001
Create Date: 2026-11-26

New facility columns get server defaults so existing facilities stay as they
were: no booking needed, no accreditation needed, no hours (always open).
"""
from alembic import op
import sqlalchemy as sa

revision = "ac0002"
down_revision = "ac0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("facility") as batch:
        batch.add_column(sa.Column("booking_required", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("accreditation_kind", sa.String(length=64), nullable=True))
    op.create_table(
        "facility_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("closes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_facility_hours_facility_id_facility"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility_hours")),
        sa.UniqueConstraint("facility_id", "weekday", "opens", name=op.f("uq_facility_hours_facility_id")),
    )
    op.create_index(op.f("ix_facility_hours_facility_id"), "facility_hours", ["facility_id"])
    op.create_table(
        "facility_closure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_facility_closure_facility_id_facility"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility_closure")),
        sa.UniqueConstraint("facility_id", "day", name=op.f("uq_facility_closure_facility_id")),
    )
    op.create_index(op.f("ix_facility_closure_facility_id"), "facility_closure", ["facility_id"])
    op.create_table(
        "accreditation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("issued", sa.Date(), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_accreditation_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accreditation")),
    )
    op.create_index(op.f("ix_accreditation_person_id"), "accreditation", ["person_id"])
    op.create_table(
        "booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], name=op.f("fk_booking_facility_id_facility")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_booking_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking")),
    )
    op.create_index(op.f("ix_booking_ends_at"), "booking", ["ends_at"])
    op.create_index(op.f("ix_booking_facility_id"), "booking", ["facility_id"])
    op.create_index(op.f("ix_booking_person_id"), "booking", ["person_id"])


def downgrade() -> None:
    for table in ("booking", "accreditation", "facility_closure", "facility_hours"):
        op.drop_table(table)
    with op.batch_alter_table("facility") as batch:
        batch.drop_column("accreditation_kind")
        batch.drop_column("booking_required")
