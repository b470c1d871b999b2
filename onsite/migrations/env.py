"""Alembic environment: one schema, one version branch per area.

Each area keeps its revisions beside its models (`access_control/migrations`,
`disclosure_review/workflow/migrations`) on its own branch label, so the areas
evolve independently; `onsite_base.db.migrate()` upgrades all heads.
"""
from alembic import context

from onsite_base.db import Base, make_engine

import access_control.models  # noqa: F401  (registers tables on Base.metadata)
import disclosure_review.workflow.store  # noqa: F401

target_metadata = Base.metadata


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
