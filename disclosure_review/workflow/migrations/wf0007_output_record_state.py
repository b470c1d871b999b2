"""workflow: each table output's record state, so that differencing compares outputs by their records

Revision ID: wf0007
Revises: wf0006
Create Date: 2026-12-07

Outputs stored before have none: differencing cannot compare them and leaves them to reviewers (`review`).
"""
from alembic import op
import sqlalchemy as sa

revision = "wf0007"
down_revision = "wf0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_output") as batch:
        batch.add_column(sa.Column("record_state", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release_output") as batch:
        batch.drop_column("record_state")
