"""The store sink: access records into the configured storage, for log search and CSV
export.

Built for CPU per record, since it runs on the worker's own CPU: a batch becomes
**one** ``access_segments`` row (:mod:`campusgate.observe.segments`: the records as
one compressed body) plus an ``access_request_ids`` row for each request id a search
could not find by the segment's id range (a client's own ``X-Request-Id``; usually
none), written in one transaction.  No SQLAlchemy on the write path.  The segment is
encoded in the sink's own thread, so the event loop does not wait on it (zstd also
lets go of the GIL while it compresses).

- SQLite: the stdlib driver in that thread (the event loop never waits on the file),
  WAL, ``synchronous=NORMAL``, a busy timeout, one ``BEGIN IMMEDIATE`` transaction
  per batch.
- PostgreSQL: one asyncpg connection and one statement per batch (the segment and its
  loose ids in a single ``INSERT``, so a single implicit transaction and round trip).

A database that is down, locked past the busy timeout or missing the tables makes
``write`` raise: the writer counts the batch as failed for this sink.  The
connection is then dropped and opened again on the next batch, so the sink recovers
by itself when the database is back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe import segments
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import Sink, SinkEnv
from campusgate.store.dsn import async_url, sqlite_path

__all__ = ["PostgresRecordWriter", "SqliteRecordWriter", "build"]

#: Seconds a write waits on a locked SQLite file or a slow PostgreSQL before failing.
WRITE_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0

_SEGMENT_COLUMNS = "time_min_ms, time_max_ms, records, rid_min, rid_max, terms, body"
_SQLITE_SEGMENT = f"INSERT INTO access_segments ({_SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_SQLITE_IDS = "INSERT INTO access_request_ids (request_id, segment_id, time_ms) VALUES (?, ?, ?)"
#: A data-modifying ``WITH`` runs once even when no loose id joins it.
_POSTGRES_SEGMENT = (
    f"WITH segment AS (INSERT INTO access_segments ({_SEGMENT_COLUMNS}) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id) "
    "INSERT INTO access_request_ids (request_id, segment_id, time_ms) "
    "SELECT loose.request_id, segment.id, loose.time_ms "
    "FROM segment, unnest($8::text[], $9::bigint[]) AS loose(request_id, time_ms)")


def _segment_row(segment: segments.Segment) -> tuple[Any, ...]:
    """The ``access_segments`` values of ``segment``, in ``_SEGMENT_COLUMNS`` order."""
    return (segment.time_min_ms, segment.time_max_ms, segment.records, segment.rid_min,
            segment.rid_max, segment.terms, segment.body)


class SqliteRecordWriter:
    """Writes batches into a SQLite file from one thread of its own."""

    name = "store"

    def __init__(self, path: Path, timeout: float = WRITE_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cg-store-sink")
        self._conn: sqlite3.Connection | None = None

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
        segment = segments.encode(batch)
        conn = self._conn if self._conn is not None else self._connect()
        self._conn = conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                segment_id = conn.execute(_SQLITE_SEGMENT, _segment_row(segment)).lastrowid
                if segment.loose_ids:
                    conn.executemany(_SQLITE_IDS, [(request_id, segment_id, time_ms)
                                                   for request_id, time_ms
                                                   in segment.loose_ids])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full)
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
    """Writes batches into PostgreSQL over one connection, one statement per batch."""

    name = "store"

    def __init__(self, dsn: str, timeout: float = WRITE_TIMEOUT) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cg-store-sink")
        self._conn: Any = None

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        if not batch:
            return
        loop = asyncio.get_running_loop()
        segment = await loop.run_in_executor(self._thread, segments.encode, batch)
        loose = segment.loose_ids
        conn = self._conn
        if conn is None or conn.is_closed():
            conn = self._conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
        try:
            await conn.execute(_POSTGRES_SEGMENT, *_segment_row(segment),
                               [request_id for request_id, _ in loose],
                               [time_ms for _, time_ms in loose], timeout=self.timeout)
        except BaseException:
            # whatever broke (server gone, timeout, asyncpg's own state), the
            # connection is in an unknown state: the next batch starts afresh
            await self._drop()
            raise

    async def close(self) -> None:
        await self._drop()
        self._thread.shutdown(wait=False)

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
