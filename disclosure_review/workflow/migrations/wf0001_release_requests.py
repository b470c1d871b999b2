"""workflow: release requests, outputs, votes, release packages

Revision ID: wf0001
Revises:
Create Date: 2026-11-26

Enum columns are VARCHAR(40) holding the member's value; timestamps naive UTC.
Project, dataset and person are referenced by id/username, not foreign key.
"""
from alembic import op
import sqlalchemy as sa

revision = "wf0001"
down_revision = None
branch_labels = ("workflow",)
depends_on = "ac0001"

ENUM = sa.String(length=40)


def upgrade() -> None:
    op.create_table(
        "release_request",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("preset", sa.String(64), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("return_comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    for column in ("project_id", "requester", "status"):
        op.create_index(f"ix_release_request_{column}", "release_request", [column])
    op.create_table(
        "release_output",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer(),
            sa.ForeignKey("release_request.id", ondelete="CASCADE", name="fk_release_output_request_id_release_request"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("claimed", sa.JSON(), nullable=True),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("media_type", sa.String(64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("verdict", ENUM, nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("recomputed", sa.JSON(), nullable=True),
        sa.Column("shadow", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("mismatch", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("decision", ENUM, nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("request_id", "name", name="uq_release_output_request_id"),
    )
    op.create_index("ix_release_output_request_id", "release_output", ["request_id"])
    op.create_table(
        "output_vote",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "output_id",
            sa.Integer(),
            sa.ForeignKey("release_output.id", ondelete="CASCADE", name="fk_output_vote_output_id_release_output"),
            nullable=False,
        ),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("decision", ENUM, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("output_id", "reviewer", name="uq_output_vote_output_id"),
    )
    op.create_index("ix_output_vote_output_id", "output_vote", ["output_id"])
    op.create_table(
        "release_package",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer(),
            sa.ForeignKey("release_request.id", ondelete="CASCADE", name="fk_release_package_request_id_release_request"),
            nullable=False,
        ),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("request_id", name="uq_release_package_request_id"),
    )


def downgrade() -> None:
    for table in ("release_package", "output_vote", "release_output", "release_request"):
        op.drop_table(table)
