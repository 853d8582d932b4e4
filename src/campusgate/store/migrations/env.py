"""Alembic environment of the campusgate store.

At run time :func:`campusgate.store.migrate.upgrade_to_head` passes an open
connection in ``config.attributes["connection"]``.  For development (``alembic -c
src/campusgate/store/migrations/alembic.ini revision --autogenerate -m ...``) the
database comes from ``CAMPUSGATE_STORAGE`` (a storage DSN such as
``sqlite:///dev.db``).
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from campusgate.store.dsn import async_url
from campusgate.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_environment() -> None:
    dsn = os.environ.get("CAMPUSGATE_STORAGE")
    if not dsn:
        raise SystemExit("set CAMPUSGATE_STORAGE to the storage DSN to run alembic by hand")
    engine = create_async_engine(async_url(dsn))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")

_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    asyncio.run(_run_from_environment())
