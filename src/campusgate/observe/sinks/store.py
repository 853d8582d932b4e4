"""The store sink: access records into the ``access_records`` table of the configured
storage, for log search and CSV export.

Built for CPU per record, since it runs on the worker's own CPU: no SQLAlchemy on
the write path.  A record becomes a plain tuple (one C-level ``attrgetter`` call plus
the time in milliseconds and the redaction counts as JSON); a batch is one
transaction.

- SQLite: the stdlib driver in a dedicated thread (the event loop never waits on the
  file), WAL, ``synchronous=NORMAL``, a busy timeout, ``executemany`` in one
  ``BEGIN IMMEDIATE`` transaction per batch.
- PostgreSQL: one asyncpg connection and ``COPY ... FROM STDIN`` (binary) per batch.

A database that is down, locked past the busy timeout or missing the table makes
``write`` raise: the writer counts the batch as failed for this sink.  The
connection is then dropped and opened again on the next batch, so the sink recovers
by itself when the database is back.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import Sink, SinkEnv
from campusgate.store.access_tables import ACCESS_COLUMNS
from campusgate.store.dsn import async_url, sqlite_path

__all__ = ["PostgresRecordWriter", "SqliteRecordWriter", "build", "record_rows"]

#: Seconds a write waits on a locked SQLite file or a slow PostgreSQL before failing.
WRITE_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0

_MIDDLE = ACCESS_COLUMNS[1:-3]  # between time_ms and ai_redactions: same names as fields
_get_middle: Callable[[AccessRecord], tuple[Any, ...]] = attrgetter(*_MIDDLE)
assert ACCESS_COLUMNS[0] == "time_ms" and ACCESS_COLUMNS[-3:] == (
    "ai_redactions", "request_body", "response_body")


def record_rows(batch: Sequence[AccessRecord]) -> list[tuple[Any, ...]]:
    """The rows of ``batch``, in :data:`ACCESS_COLUMNS` order."""
    get = _get_middle
    dumps = json.dumps
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for r in batch:
        redactions = r.ai_redactions
        append((int(r.time * 1000), *get(r),
                None if redactions is None else dumps(redactions), r.request_body,
                r.response_body))
    return rows


class SqliteRecordWriter:
    """Writes batches into a SQLite file from one thread of its own."""

    name = "store"

    def __init__(self, path: Path, timeout: float = WRITE_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cg-store-sink")
        self._conn: sqlite3.Connection | None = None
        marks = ", ".join("?" for _ in ACCESS_COLUMNS)
        self._insert = (f"INSERT INTO access_records ({', '.join(ACCESS_COLUMNS)}) "
                        f"VALUES ({marks})")

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        if batch:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._write, batch)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._disconnect)
        self._thread.shutdown(wait=False)

    # ---- in the sink's thread
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _write(self, batch: Sequence[AccessRecord]) -> None:
        rows = record_rows(batch)
        conn = self._conn if self._conn is not None else self._connect()
        self._conn = conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(self._insert, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error:
            self._disconnect()
            raise

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class PostgresRecordWriter:
    """Writes batches into PostgreSQL with ``COPY``, over one connection."""

    name = "store"

    def __init__(self, dsn: str, timeout: float = WRITE_TIMEOUT) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._conn: Any = None

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        if not batch:
            return
        rows = record_rows(batch)
        conn = self._conn
        if conn is None or conn.is_closed():
            conn = self._conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
        try:
            await conn.copy_records_to_table("access_records", records=rows,
                                             columns=ACCESS_COLUMNS, timeout=self.timeout)
        except BaseException:
            # whatever broke (server gone, timeout, asyncpg's own state), the
            # connection is in an unknown state: the next batch starts afresh
            await self._drop()
            raise

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


def build(spec: StoreSink, env: SinkEnv) -> Sink:
    """The store sink for ``env.storage`` (``sqlite:///...`` or ``postgresql://...``)."""
    url = async_url(env.storage)
    path = sqlite_path(url)
    if path is not None:
        return SqliteRecordWriter(path)
    return PostgresRecordWriter(url.set(drivername="postgresql")
                                .render_as_string(hide_password=False))
