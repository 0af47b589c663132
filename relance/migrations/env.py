"""Alembic environment: the URL comes from the caller (relance.core.migrate) or RELANCE_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from relance.core.db import ensure_sqlite_dir, sync_url
from relance.core.settings import get_settings
from relance.models.tables import broadcast as broadcast_tables  # noqa: F401 (their tables join the metadata)
from relance.models.tables.base import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url()
ensure_sqlite_dir(url)
config.set_main_option("sqlalchemy.url", sync_url(url).render_as_string(hide_password=False))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
    with connectable.connect() as connection:
        # render_as_batch: SQLite alters tables by copying them.
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
