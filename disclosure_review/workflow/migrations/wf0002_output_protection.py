"""workflow: protections applied by reviewers to table outputs

Revision ID: wf0002
Revises: wf0001
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "wf0002"
down_revision = "wf0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "output_protection",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "output_id",
            sa.Integer(),
            sa.ForeignKey("release_output.id", ondelete="CASCADE", name="fk_output_protection_output_id_release_output"),
            nullable=False,
        ),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("choice", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(length=40), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("invalidated", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("output_id", "revision", name="uq_output_protection_output_id"),
    )
    op.create_index("ix_output_protection_output_id", "output_protection", ["output_id"])


def downgrade() -> None:
    op.drop_table("output_protection")
