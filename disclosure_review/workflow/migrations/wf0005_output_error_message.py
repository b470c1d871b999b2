"""workflow: an output's recomputation error as a message id and arguments, for the review pages' languages

Revision ID: wf0005
Revises: wf0004
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "wf0005"
down_revision = "wf0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Outputs stored before keep only their English `error`, which the pages show as it is.
    with op.batch_alter_table("release_output") as batch:
        batch.add_column(sa.Column("error_message", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release_output") as batch:
        batch.drop_column("error_message")
