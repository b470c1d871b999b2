"""audit ledger: Merkle tree nodes, signed tree heads, witness co-signatures

Revision ID: ac0003
Revises: ac0002
Create Date: 2026-12-07

The events table is unchanged: the tree is built over the existing events, in
seq order, the first time a head is signed (access_control.ledger.extend_tree),
so an existing ledger still verifies as it did and gains a tree.
"""
from alembic import op
import sqlalchemy as sa

revision = "ac0003"
down_revision = "ac0002"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_tree_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", BIG, autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tree_node")),
    )
    op.create_table(
        "audit_tree_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", BIG, nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_tree_head")),
    )
    op.create_index(op.f("ix_audit_tree_head_tree_size"), "audit_tree_head", ["tree_size"])
    op.create_table(
        "audit_cosignature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("witness_key", sa.String(length=64), nullable=False),
        sa.Column("tree_size", BIG, nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("head_timestamp", sa.String(length=40), nullable=False),
        sa.Column("witnessed_at", sa.String(length=40), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_cosignature")),
    )
    op.create_index(op.f("ix_audit_cosignature_witness"), "audit_cosignature", ["witness"])


def downgrade() -> None:
    op.drop_table("audit_cosignature")
    op.drop_table("audit_tree_head")
    op.drop_table("audit_tree_node")
