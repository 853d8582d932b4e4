"""Cheap reads of the newest revision number, for workers that poll it twice a second.

Going through the async engine costs a thread hop (aiosqlite) or a greenlet switch and
pool checkout (SQLAlchemy) on every poll, about a millisecond of the event loop's time:
requests queued behind it see it as latency.  These probes read the one integer
directly: SQLite through a stdlib connection in the loop's thread (a WAL reader never
waits on writers), PostgreSQL through one dedicated asyncpg connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import URL

__all__ = ["PostgresRevisionProbe", "RevisionProbe", "SqliteRevisionProbe", "revision_probe"]

QUERY = "SELECT max(revision) FROM config_revisions"


class RevisionProbe(Protocol):
    async def read(self) -> int: ...
    async def close(self) -> None: ...


class SqliteRevisionProbe:
    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05,
                                     isolation_level=None, check_same_thread=False)

    async def read(self) -> int:
        row = self._conn.execute(QUERY).fetchone()
        return int(row[0] or 0) if row else 0

    async def close(self) -> None:
        self._conn.close()


class PostgresRevisionProbe:
    def __init__(self, url: URL) -> None:
        self._url = url
        self._conn: Any = None

    async def read(self) -> int:
        import asyncpg  # type: ignore[import-untyped]

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                host=self._url.host, port=self._url.port, user=self._url.username,
                password=self._url.password, database=self._url.database, timeout=5)
        try:
            value = await self._conn.fetchval(QUERY)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self.close()
            raise
        return int(value or 0)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()


def revision_probe(url: URL) -> RevisionProbe:
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        return SqliteRevisionProbe(Path(url.database))
    return PostgresRevisionProbe(url)
