"""Run the store's Alembic migrations programmatically, safely against a racing process.

The scripts ship inside the package (``migrations/``); no ``alembic.ini`` is read.
Migrations run in one transaction that first takes a database-wide lock: a PostgreSQL
advisory lock, or SQLite's write lock (``BEGIN IMMEDIATE``, see
:mod:`campusgate.store.engine`).  A second process opening the store at the same time
waits, then finds the schema already at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["MIGRATIONS_DIR", "current_heads", "head_revision", "upgrade_to_head"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Arbitrary 64-bit key of the PostgreSQL advisory lock held while migrating.
_PG_LOCK_KEY = 0x63676D6967726174  # "cgmigrat"


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of campusgate."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_heads(connection: Connection) -> tuple[str, ...]:
    """The migrations applied to the database behind ``connection``."""
    return MigrationContext.configure(connection).get_current_heads()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    if current_heads(connection) == (head_revision(),):
        return
    command.upgrade(_alembic_config(connection), "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database behind ``engine`` to the newest schema (a no-op when it is)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
