"""Writing ``rollups`` rows with the raw drivers (no SQLAlchemy per row on the write
path): stdlib ``sqlite3`` in a thread, ``asyncpg`` for PostgreSQL.  Both upsert with
``INSERT ... ON CONFLICT (key) DO UPDATE`` the cumulative values
:class:`~campusgate.observe.rollup_state.RollupState` hands over."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]

from campusgate.observe.rollup_state import Key, Row, stored_row
from campusgate.store.dsn import async_url, sqlite_path
from campusgate.store.rollup_tables import rollups

__all__ = ["PostgresRollupStore", "RollupStore", "SqliteRollupStore", "open_rollup_store"]

_COLUMNS = [column.name for column in rollups.columns]
_KEY = [column.name for column in rollups.primary_key.columns]
_VALUES = [name for name in _COLUMNS if name not in _KEY]
#: Key columns without ``worker_id``, in :data:`~campusgate.observe.rollup_state.Key` order.
_KEY_NO_WORKER = [name for name in _KEY if name != "worker_id"]


def _upsert_sql(placeholders: Sequence[str]) -> str:
    return (f"INSERT INTO rollups ({', '.join(_COLUMNS)}) VALUES ({', '.join(placeholders)}) "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
            + ", ".join(f"{name} = excluded.{name}" for name in _VALUES))


def _select_sql(placeholders: Sequence[str]) -> str:
    where = " AND ".join(f"{name} = {mark}" for name, mark in zip(_KEY, placeholders, strict=True))
    return f"SELECT {', '.join(_VALUES)} FROM rollups WHERE {where}"


def _key_params(key: Key, worker_id: str) -> tuple[Any, ...]:
    values = dict(zip(_KEY_NO_WORKER, key, strict=True), worker_id=worker_id)
    return tuple(values[name] for name in _KEY)


class RollupStore(Protocol):
    async def load(self, keys: Sequence[Key], worker_id: str) -> dict[Key, Row]:
        """What the store holds for ``keys`` of ``worker_id`` (absent keys left out)."""
        ...

    async def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    async def close(self) -> None: ...


class SqliteRollupStore:
    """One ``sqlite3`` connection, used from one thread at a time (the stage never
    writes twice at once)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        marks = ["?"] * len(_COLUMNS)
        self._upsert = _upsert_sql(marks)
        self._select = _select_sql(["?"] * len(_KEY))

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, timeout=30.0, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
            self._db = db
        return self._db

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(self._upsert, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _read(self, keys: Sequence[Key], worker_id: str) -> dict[Key, Row]:
        db = self._connect()
        found: dict[Key, Row] = {}
        for key in keys:
            values = db.execute(self._select, _key_params(key, worker_id)).fetchone()
            if values is not None:
                found[key] = stored_row(values)
        return found

    async def load(self, keys: Sequence[Key], worker_id: str) -> dict[Key, Row]:
        return await asyncio.to_thread(self._read, keys, worker_id)

    async def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            await asyncio.to_thread(self._write, rows)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)


class PostgresRollupStore:
    """One ``asyncpg`` connection, opened on first use and again after a failure."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._db: Any = None
        self._upsert = _upsert_sql([f"${n}" for n in range(1, len(_COLUMNS) + 1)])
        self._select = _select_sql([f"${n}" for n in range(1, len(_KEY) + 1)])

    async def _connect(self) -> Any:
        if self._db is None or self._db.is_closed():
            self._db = await asyncpg.connect(self._dsn, timeout=10)
        return self._db

    async def load(self, keys: Sequence[Key], worker_id: str) -> dict[Key, Row]:
        db = await self._connect()
        found: dict[Key, Row] = {}
        for key in keys:
            values = await db.fetchrow(self._select, *_key_params(key, worker_id))
            if values is not None:
                found[key] = stored_row(tuple(values))
        return found

    async def upsert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        db = await self._connect()
        async with db.transaction():
            await db.executemany(self._upsert, rows)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()


def open_rollup_store(storage: str) -> RollupStore:
    """The writer for a storage DSN (connections open on first use)."""
    url = async_url(storage)
    path = sqlite_path(url)
    if path is not None:
        return SqliteRollupStore(path)
    return PostgresRollupStore(url.set(drivername="postgresql").render_as_string(
        hide_password=False))
