"""workflow: each output's size (cells, stored bytes), so that limits and the queue never read the contents

Revision ID: wf0006
Revises: wf0005
Create Date: 2026-12-07
"""
import json

from alembic import op
import sqlalchemy as sa

revision = "wf0006"
down_revision = "wf0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_output") as batch:
        batch.add_column(sa.Column("cells", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("size_bytes", sa.Integer(), nullable=False, server_default="0"))
    # Outputs stored before: measured once here, as `service.stored_size` measures new ones.
    outputs = sa.table("release_output", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                       sa.column("recomputed", sa.JSON), sa.column("shadow", sa.JSON), sa.column("report", sa.JSON),
                       sa.column("mismatch", sa.JSON), sa.column("claimed", sa.JSON), sa.column("content", sa.LargeBinary),
                       sa.column("cells", sa.Integer), sa.column("size_bytes", sa.Integer))
    connection = op.get_bind()
    for row in connection.execute(sa.select(outputs)).all():
        recomputed = row.recomputed or {}
        cells = len(recomputed.get("rows", [])) or recomputed.get("records", 0) * len(recomputed.get("columns", []))
        stored = sum(len(json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode())
                     for v in (row.recomputed, row.shadow, row.report, row.mismatch, row.claimed) if v is not None)
        connection.execute(sa.update(outputs).where(outputs.c.id == row.id)
                           .values(cells=cells, size_bytes=stored + len(row.content or b"")))


def downgrade() -> None:
    with op.batch_alter_table("release_output") as batch:
        batch.drop_column("size_bytes")
        batch.drop_column("cells")
