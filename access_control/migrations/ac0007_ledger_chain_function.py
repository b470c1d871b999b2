"""audit ledger: the server chains an event under the ledger lock (PostgreSQL)

Revision ID: ac0007
Revises: ac0006
Create Date: 2026-12-07

`onsite_chain_event` takes the ledger lock, reads the head and inserts the event
chained on it, its hash SHA-256 of `access_control.audit.event_entry`'s bytes
built from the client's part (everything but seq and prev_hash) and the head.
The client sends it, its commit and the WAL flush in one message, so the lock is
held over no client round trip (issue 17). PL/pgSQL keeps the INSERT's plan per
connection. SQLite: nothing (its write lock spans the transaction).
"""
from alembic import op

revision = "ac0007"
down_revision = "ac0006"
branch_labels = None
depends_on = None

LEDGER_LOCK_KEY = 5714596551591283783  # access_control.audit.LEDGER_LOCK_KEY as of this revision
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
CREATE FUNCTION onsite_chain_event(p_created_at timestamp, p_actor text, p_action text, p_object text,
                                   p_outcome text, p_details text, p_entry_middle text,
                                   OUT o_seq bigint, OUT o_prev_hash text, OUT o_hash text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- group commit: the caller waits for the flush
    PERFORM pg_advisory_xact_lock({LEDGER_LOCK_KEY});
    WITH last AS (SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1),
    head AS (SELECT seq, hash FROM last UNION ALL SELECT 0, '{GENESIS_HASH}' WHERE NOT EXISTS (SELECT FROM last))
    INSERT INTO audit_event AS e (seq, created_at, actor, action, object, outcome, details, prev_hash, hash)
    SELECT head.seq + 1, p_created_at, p_actor, p_action, p_object, p_outcome, p_details, head.hash,
           encode(sha256(convert_to('[' || (head.seq + 1) || ',' || p_entry_middle || ',"' || head.hash || '"]',
                                    'UTF8')), 'hex')
    FROM head
    RETURNING e.seq, e.prev_hash, e.hash INTO o_seq, o_prev_hash, o_hash;
END $$""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION onsite_chain_event(timestamp, text, text, text, text, text, text)")
