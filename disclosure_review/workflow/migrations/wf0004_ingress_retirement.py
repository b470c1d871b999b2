"""workflow: retirement of approved reference data (who, when, why)

Revision ID: wf0004
Revises: wf0003
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "wf0004"
down_revision = "wf0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingress_request") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("retired_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("retired_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # Code before wf0004 cannot read these statuses, and who retired what and why would be lost.
    closed = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM ingress_request WHERE status IN ('WITHDRAWN', 'RETIRED')")).scalar()
    if closed:
        raise RuntimeError(f"{closed} ingress request(s) are WITHDRAWN or RETIRED, which code before wf0004 cannot "
                           "read: keep this revision")
    with op.batch_alter_table("ingress_request") as batch:
        batch.drop_column("retired_reason")
        batch.drop_column("retired_by")
        batch.drop_column("retired_at")
