"""access control: facility managers, seats, emergency closures

Revision ID: ac0004
Revises: ac0003
Create Date: 2026-12-07

Existing facilities keep their behaviour: seats not limited (NULL), not closed.
"""
from alembic import op
import sqlalchemy as sa

revision = "ac0004"
down_revision = "ac0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("facility") as batch:
        batch.add_column(sa.Column("seats", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("emergency_closed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("emergency_reason", sa.String(length=300), nullable=False, server_default=""))
    op.create_table(
        "facility_manager",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_facility_manager_person_id_person"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_facility_manager_facility_id_facility"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility_manager")),
        sa.UniqueConstraint("person_id", "facility_id", name=op.f("uq_facility_manager_person_id")),
    )
    op.create_index(op.f("ix_facility_manager_person_id"), "facility_manager", ["person_id"])
    op.create_index(op.f("ix_facility_manager_facility_id"), "facility_manager", ["facility_id"])


def downgrade() -> None:
    op.drop_table("facility_manager")
    with op.batch_alter_table("facility") as batch:
        batch.drop_column("emergency_reason")
        batch.drop_column("emergency_closed_at")
        batch.drop_column("seats")
