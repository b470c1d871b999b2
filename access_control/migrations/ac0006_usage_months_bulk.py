"""access control: the usage projection keeps each session's local month and length, and when it was caught up

Revision ID: ac0006
Revises: ac0005
Create Date: 2026-12-07

The usage statistics group sessions by (facility, month in the facility's time
zone) in SQL, over `usage_session.month` and `.seconds`; `usage_cursor.caught_up_at`
is the "as of" of the operations pages, which no longer fold the ledger
themselves. The projection is emptied and its cursor set to 0: the admin
service folds the ledger again at its next start, filling the new columns
(the projection holds nothing the ledger does not).
"""
from alembic import op
import sqlalchemy as sa

revision = "ac0006"
down_revision = "ac0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_session") as batch:
        batch.add_column(sa.Column("month", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("seconds", sa.Float(), nullable=True))
    op.create_index("ix_usage_session_facility_month", "usage_session", ["facility_id", "month"])
    with op.batch_alter_table("usage_cursor") as batch:
        batch.add_column(sa.Column("caught_up_at", sa.DateTime(), nullable=True))
    for table in ("usage_session", "usage_refusal", "usage_terminal_seen"):
        op.execute(sa.text(f"DELETE FROM {table}"))
    op.execute(sa.text("UPDATE usage_cursor SET seq = 0, caught_up_at = NULL"))


def downgrade() -> None:
    with op.batch_alter_table("usage_cursor") as batch:
        batch.drop_column("caught_up_at")
    op.drop_index("ix_usage_session_facility_month", table_name="usage_session")
    with op.batch_alter_table("usage_session") as batch:
        batch.drop_column("seconds")
        batch.drop_column("month")
