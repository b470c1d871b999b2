"""Schema migrations of the one Onsite store: one Alembic environment (`env.py`),
one version branch per area, kept beside its models (`access_control/migrations`,
`disclosure_review/workflow/migrations`). `migrate()` is what every entry point calls."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from access_control.errors import PolicyError

ROOT = Path(__file__).resolve().parent.parent.parent
VERSION_DIRS = ("access_control/migrations", "disclosure_review/workflow/migrations")


def alembic_config(url: str):
    """Alembic configuration for `url`: the shared env plus each area's versions."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option(
        "version_locations",
        " ".join(str(ROOT / d) for d in VERSION_DIRS),
    )
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def applied_revisions(url: str) -> set[str]:
    """The revisions the store at `url` is at (one per area); none for a store not set up yet (nothing is created)."""
    if not store_exists(url):
        return set()
    with connected(url) as connection:
        return set(connection.scalars(text("SELECT version_num FROM alembic_version")))


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema revision of every area."""
    config = alembic_config(url)
    if applied_revisions(url) == set(ScriptDirectory.from_config(config).get_heads()):
        return  # current: Alembic's environment (every area's models) need not be loaded, the usual case of a command
    # Alembic announces every step at INFO; an up-to-date store should be silent.
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    if not alembic_log.isEnabledFor(logging.DEBUG):
        alembic_log.setLevel(logging.WARNING)
    try:
        command.upgrade(config, "heads")
    finally:
        alembic_log.setLevel(level)


def store_exists(url: str) -> bool:
    """Whether `url` names a store `migrate()` has set up (Alembic's version table is there). Creates nothing:
    an SQLite file that is not there is not opened (opening would create it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            return False
    with connected(url) as connection:
        return inspect(connection).has_table("alembic_version")


@contextmanager
def connected(url: str) -> Iterator[Connection]:
    """A connection to the store at `url`. One that cannot be made (the server down or unreachable, a wrong port,
    database, user or password) is refused naming the store and what to check, not left as a driver traceback."""
    engine = create_engine(url)
    try:
        try:
            connection = engine.connect()
        except DBAPIError as e:
            reason = str(e.orig or e).strip().splitlines()[0]
            raise PolicyError("store_unreachable", store=make_url(url).render_as_string(hide_password=True),
                              error=reason) from e
        with connection:
            yield connection
    finally:
        engine.dispose()
