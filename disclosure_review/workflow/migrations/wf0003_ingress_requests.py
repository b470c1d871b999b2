"""workflow: ingress requests (reference data brought in) and reviewers' votes on them

Revision ID: wf0003
Revises: wf0002
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "wf0003"
down_revision = "wf0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingress_request",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("file_format", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_ingress_request_project_id", "ingress_request", ["project_id"])
    op.create_index("ix_ingress_request_requester", "ingress_request", ["requester"])
    op.create_index("ix_ingress_request_status", "ingress_request", ["status"])
    op.create_table(
        "ingress_vote",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer(),
            sa.ForeignKey("ingress_request.id", ondelete="CASCADE", name="fk_ingress_vote_request_id_ingress_request"),
            nullable=False,
        ),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(length=40), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("request_id", "reviewer", name="uq_ingress_vote_request_id"),
    )
    op.create_index("ix_ingress_vote_request_id", "ingress_vote", ["request_id"])


def downgrade() -> None:
    op.drop_table("ingress_vote")
    op.drop_table("ingress_request")
