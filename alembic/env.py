"""Alembic environment: async (asyncpg), URL from ordersvc, migrations serialised by an
advisory lock so several server processes starting at once do not race."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import ordersvc.models  # noqa: F401  (registers every table on SQLModel.metadata)
from ordersvc.config import get_settings
from ordersvc.db import resolve_database_url, to_asyncpg_url

config = context.config
if config.config_file_name is not None and not config.attributes.get("database_url"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata

# Any constant: the lock key for "a migration is running".
MIGRATION_LOCK_KEY = 0x0D3E5_5C


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return to_asyncpg_url(url) if url else resolve_database_url(get_settings())


def _run_sync(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Taken before Alembic reads the current revision; released at commit. A second process
        # waits here, then finds the schema already at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
