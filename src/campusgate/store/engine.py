"""Create the async engine for a storage URL, with SQLite made safe for several processes.

SQLite: WAL journal (readers never block the writer; set once per file by
:func:`enable_sqlite_wal`), a 30 s busy timeout, and real
transactions (the driver's own implicit transaction handling is switched off, as the
SQLAlchemy documentation recommends).  Transactions begun through :func:`writer` start
with ``BEGIN IMMEDIATE`` so that two processes that read-then-write wait for each
other instead of failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["create_engine", "enable_sqlite_wal", "writer"]

_WRITE_OPTION = "campusgate_write"
_SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def create_engine(url: URL) -> AsyncEngine:
    """An async engine for ``url`` (an async-driver URL from :func:`dsn.async_url`)."""
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    engine = create_async_engine(
        url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_SECONDS}
    )
    event.listen(engine.sync_engine, "connect", _sqlite_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool), whose transactions take SQLite's write lock up front."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; per connection
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def enable_sqlite_wal(path: Path) -> None:
    """Put the database file in WAL mode (it stays so).  Switching the journal mode does
    not wait on SQLite's busy handler, so a process racing us while the file is being
    created makes it fail with "database is locked": retry until the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            async with aiosqlite.connect(path, timeout=_SQLITE_BUSY_TIMEOUT_SECONDS) as db:
                await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() >= deadline:
                raise
            await asyncio.sleep(0.05)
