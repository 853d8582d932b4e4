"""Retention: delete access records and roll-up rows older than their configured
periods, in the background, without locking writers out.

Access records go a segment at a time (:mod:`campusgate.observe.segments`): a
segment is deleted once its newest record (``time_max_ms``) is older than the cutoff,
so a segment straddling the cutoff keeps its older records until the next round
after it has aged out whole.  The ``access_request_ids`` rows go by their own
``time_ms``.

Rows go in small chunks (each statement its own short transaction, with a pause
between chunks), so a store sink waiting on SQLite's write lock waits for one chunk at
most, never for the whole purge: :data:`SEGMENT_CHUNK` segments (a segment's body is
about as many bytes as a few hundred old one-record rows) or :data:`CHUNK` rows of the
other tables.  Each chunk selects row addresses (SQLite ``rowid``, PostgreSQL
``ctid``) and deletes them by address.

Several workers: on PostgreSQL one prunes at a time (a session advisory lock taken
with ``pg_try_advisory_lock``; the others skip the round).  On SQLite the chunks of two
workers simply take turns on the write lock, which is harmless: a row is deleted once.

The ``rollups`` table (roll-ups, by ``period`` in seconds and ``bucket`` in epoch
seconds) may be absent: it is then skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from campusgate.config.observe import Retention
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine, writer

__all__ = ["CHUNK", "SEGMENT_CHUNK", "Pruned", "prune_forever", "prune_once"]

log = logging.getLogger("campusgate.observe")

#: Rows deleted per statement, and the pause between two statements (seconds).
CHUNK = 5000
#: Segments deleted per statement: about the bytes of :data:`CHUNK` one-record rows.
SEGMENT_CHUNK = 20
PAUSE = 0.05
#: Arbitrary 64-bit key of the PostgreSQL advisory lock held while pruning.
_PG_LOCK_KEY = 0x63677072756E65  # "cgprune"
#: Roll-up periods (seconds) and the ``Retention`` field that keeps each.
_PERIODS = ((60, "minute"), (3600, "hour"), (86400, "day"))


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one round deleted (None: skipped, another worker was pruning)."""

    #: Access records, the sum of the deleted segments' ``records``.
    records: int = 0
    rollups: int = 0
    segments: int = 0
    #: ``access_request_ids`` rows (client-supplied request ids).
    request_ids: int = 0


def _address(conn: AsyncConnection) -> str:
    return "ctid" if conn.dialect.name == "postgresql" else "rowid"


async def _delete_chunks(engine: AsyncEngine, table: str, where: str,
                         params: dict[str, int], chunk: int, pause: float,
                         total: str | None = None) -> tuple[int, int]:
    """Delete the rows of ``table`` matching ``where``, ``chunk`` at a time: how many
    rows, and the sum of their column ``total`` (0 without one)."""
    deleted = summed = 0
    returning = f" RETURNING {total}" if total else ""
    while True:
        async with writer(engine).begin() as conn:
            addr = _address(conn)
            pick = f"SELECT {addr} FROM {table} WHERE {where} LIMIT {int(chunk)}"
            match = (f"{addr} = ANY(ARRAY({pick}))" if addr == "ctid"
                     else f"{addr} IN ({pick})")
            result = await conn.execute(
                text(f"DELETE FROM {table} WHERE {match}{returning}"), params)
            if total:
                values = result.scalars().all()
                count = len(values)
                summed += sum(values)
            else:
                count = max(result.rowcount, 0)
        deleted += count
        if count < chunk:
            return deleted, summed
        await asyncio.sleep(pause)


async def _has_table(engine: AsyncEngine, name: str) -> bool:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: c.dialect.has_table(c, name))


async def prune_once(engine: AsyncEngine, retention: Retention, now: float | None = None,
                     *, chunk: int = CHUNK, segment_chunk: int = SEGMENT_CHUNK,
                     pause: float = PAUSE) -> Pruned | None:
    """One round: delete what is older than ``retention`` at ``now`` (epoch seconds);
    ``chunk`` rows (``segment_chunk`` segments) per statement."""
    now = time.time() if now is None else now
    if engine.dialect.name == "postgresql":
        async with engine.connect() as lock:
            got = await lock.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            await lock.commit()
            if not got:
                return None
            try:
                return await _prune(engine, retention, now, chunk, segment_chunk, pause)
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                await lock.commit()
    return await _prune(engine, retention, now, chunk, segment_chunk, pause)


async def _prune(engine: AsyncEngine, retention: Retention, now: float, chunk: int,
                 segment_chunk: int, pause: float) -> Pruned:
    cutoff = {"cut": int((now - retention.records) * 1000)}
    segments, records = await _delete_chunks(
        engine, "access_segments", "time_max_ms < :cut", cutoff, segment_chunk, pause,
        total="records")
    request_ids, _ = await _delete_chunks(engine, "access_request_ids", "time_ms < :cut",
                                          cutoff, chunk, pause)
    rollups = 0
    if await _has_table(engine, "rollups"):
        for period, field in _PERIODS:
            keep: float = getattr(retention, field)
            deleted, _ = await _delete_chunks(
                engine, "rollups", "period = :period AND bucket < :cut",
                {"period": period, "cut": int(now - keep)}, chunk, pause)
            rollups += deleted
    return Pruned(records=records, rollups=rollups, segments=segments,
                  request_ids=request_ids)


async def prune_forever(storage: str, retention: Retention) -> None:
    """Prune every ``retention.interval`` seconds until cancelled (a worker's
    background task).  A failed round is logged and retried at the next interval."""
    engine = create_engine(async_url(storage))
    try:
        # Workers started together do not all prune at once.
        await asyncio.sleep(random.uniform(0, min(retention.interval, 60.0)))
        while True:
            try:
                pruned = await prune_once(engine, retention)
            except (DBAPIError, OSError) as exc:
                log.warning("pruning old access records failed (retrying in %.0f s): %s",
                            retention.interval, exc)
            else:
                if pruned is not None and pruned != Pruned():
                    log.info("pruned %d access records (%d segments, %d request ids) and "
                             "%d roll-up rows", pruned.records, pruned.segments,
                             pruned.request_ids, pruned.rollups)
            await asyncio.sleep(retention.interval)
    finally:
        await engine.dispose()
