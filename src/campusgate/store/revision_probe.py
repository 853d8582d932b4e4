"""What a worker reads of the store on its hot loop, without SQLAlchemy.

Workers poll the newest revision number twice a second and load the newest
entities when it changes.  Going through the async engine costs a thread hop
(aiosqlite) or a greenlet switch and pool checkout (SQLAlchemy) per poll, about a
millisecond of the event loop's time, and importing SQLAlchemy costs a worker some
35 MB.  These readers use the drivers directly: SQLite through a stdlib connection
in the loop's thread (a WAL reader never waits on writers), PostgreSQL through one
dedicated asyncpg connection.  Writes (admin API, file reloads) still go through
:class:`~campusgate.store.ConfigStore`, which a worker opens only when needed.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

__all__ = ["PostgresRevisionReader", "RevisionReader", "SqliteRevisionReader",
           "revision_reader"]

REVISION = "SELECT max(revision) FROM config_revisions"
LATEST = "SELECT revision, entities FROM config_revisions ORDER BY revision DESC LIMIT 1"


class RevisionReader(Protocol):
    async def read(self) -> int:
        """The newest revision number (0 when none)."""
        ...

    async def latest(self) -> tuple[int, str | None]:
        """The newest revision and its entities as JSON (None when none)."""
        ...

    async def close(self) -> None: ...


class SqliteRevisionReader:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0,
                                     isolation_level=None, check_same_thread=False)

    async def read(self) -> int:
        row = self._conn.execute(REVISION).fetchone()
        return int(row[0] or 0) if row else 0

    async def latest(self) -> tuple[int, str | None]:
        row = self._conn.execute(LATEST).fetchone()
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    async def close(self) -> None:
        self._conn.close()


class PostgresRevisionReader:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None

    async def _connection(self) -> Any:
        import asyncpg  # type: ignore[import-untyped]

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=5)
        return self._conn

    async def read(self) -> int:
        conn = await self._connection()
        try:
            value = await conn.fetchval(REVISION)
        except Exception:
            await self.close()
            raise
        return int(value or 0)

    async def latest(self) -> tuple[int, str | None]:
        conn = await self._connection()
        try:
            row = await conn.fetchrow(LATEST)
        except Exception:
            await self.close()
            raise
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()


def revision_reader(dsn: str) -> RevisionReader:
    """A reader for a storage DSN (``sqlite:///path`` or ``postgresql://...``)."""
    parts = urlsplit(dsn)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        return SqliteRevisionReader(unquote(dsn.split(":///", 1)[1]))
    if scheme in ("postgresql", "postgres"):
        return PostgresRevisionReader(f"postgresql:{dsn.split(':', 1)[1]}")
    raise ValueError(f"unsupported storage DSN scheme {parts.scheme!r}")
