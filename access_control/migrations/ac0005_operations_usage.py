"""access control: the usage projection of the ledger (operations view)

Revision ID: ac0005
Revises: ac0004
Create Date: 2026-12-07

Sessions by facility, entry refusals and terminals last seen, folded in from the
ledger by access_control.usage.catch_up; the cursor starts at 0, so an existing
ledger is read once, the first time the operations view is opened.
"""
from alembic import op
import sqlalchemy as sa

revision = "ac0005"
down_revision = "ac0004"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_session",
        sa.Column("start_seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("terminal", sa.String(length=64), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("stop_seq", SEQ, nullable=True),
        sa.PrimaryKeyConstraint("start_seq", name=op.f("pk_usage_session")),
    )
    op.create_index("ix_usage_session_facility_started", "usage_session", ["facility_id", "started_at"])
    op.create_index("ix_usage_session_username_started", "usage_session", ["username", "started_at"])
    op.create_index(op.f("ix_usage_session_started_at"), "usage_session", ["started_at"])
    op.create_index(op.f("ix_usage_session_ended_at"), "usage_session", ["ended_at"])
    op.create_table(
        "usage_refusal",
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_usage_refusal")),
    )
    op.create_index(op.f("ix_usage_refusal_created_at"), "usage_refusal", ["created_at"])
    op.create_table(
        "usage_terminal_seen",
        sa.Column("terminal", sa.String(length=64), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seq", SEQ, nullable=False),
        sa.PrimaryKeyConstraint("terminal", name=op.f("pk_usage_terminal_seen")),
    )
    cursor = op.create_table(
        "usage_cursor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_cursor")),
    )
    op.bulk_insert(cursor, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("usage_cursor")
    op.drop_table("usage_terminal_seen")
    op.drop_table("usage_refusal")
    op.drop_table("usage_session")
