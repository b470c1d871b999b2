"""Schema migrations of the one Onsite store: one Alembic environment (`env.py`),
one version branch per area, kept beside its models (`access_control/migrations`,
`disclosure_review/workflow/migrations`). `migrate()` is what every entry point calls."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

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
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


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
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table("alembic_version")
    finally:
        engine.dispose()
