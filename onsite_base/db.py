"""Database plumbing shared by policy, workflow and audit tables.

SQLite is the embedded default, PostgreSQL the production store. The schema is
owned by the Alembic migrations (`onsite.migrations.migrate()` brings any
database to the newest revision); this module knows no table of its own.
"""
from __future__ import annotations

import os
import select
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


READ_ONLY = "onsite_read_only"
"""Execution option marking a read-only transaction (see read_transaction)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside the store; it creates them with the store's own mode."""


def make_private_sqlite(path: Path) -> None:
    """The SQLite store `path` readable by its owner only, from the moment it exists.

    A missing directory is made 0700 and a missing store 0600 before SQLite opens
    it (SQLite would create it 0644 under the usual umask: the policy store,
    password hashes and ledger readable by every account until the first spawn
    tightened it). An existing store, or WAL file, that others may read loses those bits.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=PRIVATE_DIR)
        os.chmod(path.parent, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                os.chmod(file, mode & 0o700)
        except FileNotFoundError:
            pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:":
            make_private_sqlite(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Several processes (hub, review service, CLI) share the file.
            # pysqlite's own BEGIN handling is switched off so that _begin_immediate
            # below decides how every transaction starts (SQLAlchemy's documented recipe).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            # Take the write lock at BEGIN: transactions that read then write (the
            # ledger append reads the chain head) queue on busy_timeout instead of
            # failing with "database is locked" or forking the chain. Declared
            # read-only work (read_transaction) reads a snapshot without blocking writers.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url)
    event.listen(engine, "checkout", _refuse_a_dropped_connection)
    return engine


def _refuse_a_dropped_connection(dbapi_conn, _record, _proxy) -> None:
    """The pool's check that a PostgreSQL connection is still there, without the round trip of SQLAlchemy's
    pre-ping: a connection the server has closed (a restart, a terminated backend, an idle timeout) has its socket
    readable at once, its goodbye or EOF, where an idle live one has nothing to read. The pool then connects
    afresh. The pre-ping's round trip was a third of a ledger append's client CPU with 8 writers (issue 17)."""
    if dbapi_conn.closed:  # psycopg saw it go
        raise DisconnectionError("this pooled connection is closed")
    poll = select.poll()  # not select.select: a hub's descriptors may pass 1024
    poll.register(dbapi_conn.fileno(), select.POLLIN)
    if poll.poll(0):
        raise DisconnectionError("the server closed this pooled connection")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A consistent read that never blocks writers (long reads: ledger verify, export, the usage pages): every
    statement in it sees one snapshot, taken at its first. Nothing may be written in it: on SQLite a write here can
    fail with "database is locked", and PostgreSQL refuses it."""
    with factory() as session, session.begin():
        options: dict[str, Any] = {READ_ONLY: True}
        if session.get_bind().dialect.name == "postgresql":
            # PostgreSQL's default (READ COMMITTED) takes a new snapshot per statement: two statements could see
            # a writer's commit between them (a live session whose month the grouped count had not yet seen).
            options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        session.connection(execution_options=options)
        yield session
        session.rollback()
