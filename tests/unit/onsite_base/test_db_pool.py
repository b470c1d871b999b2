"""A pooled PostgreSQL connection the server has dropped is replaced at checkout (onsite_base.db.make_engine): the
pool checks the socket instead of a pre-ping round trip (issue 17), so a restart or a terminated backend must still
cost no caller its transaction."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from access_control import audit
from access_control.enums import AuditEventType
from onsite_base.db import transaction

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def backend_pid(db) -> int:
    with transaction(db) as s:
        return s.scalar(text("SELECT pg_backend_pid()"))


def test_a_terminated_pooled_connection_is_replaced_at_checkout(db, db_url, pg_admin_url):
    first = backend_pid(db)
    assert backend_pid(db) == first  # the pool hands the same connection back
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,)).fetchone()[0]
    with transaction(db) as s:  # on the dropped connection this would fail: "terminating connection"
        audit.record(s, AuditEventType.SESSION_ACTIVITY, actor="tanaka", object="session:tanaka")
        assert s.scalar(text("SELECT pg_backend_pid()")) != first
    with db() as s:
        assert audit.count(s) == 1 and audit.verify(s).ok


def test_a_live_pooled_connection_is_kept(db):
    """The check must not drop healthy connections: every checkout would then connect afresh."""
    pids = {backend_pid(db) for _ in range(20)}
    assert len(pids) == 1
