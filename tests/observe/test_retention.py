"""Retention pruning against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from access_samples import series, write_segments
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.config.observe import Retention
from campusgate.observe.retention import Pruned, prune_once
from campusgate.observe.sinks.store import SqliteRecordWriter
from campusgate.store import ConfigStore
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine

NOW = 1_800_000_000.0
DAY = 86400.0


async def count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


async def test_old_segments_go_new_ones_stay(storage: str) -> None:
    old = series(120, start=NOW - 10 * DAY, step=60)  # 10 days ago, 2 hours
    straddling = series(10, start=NOW - 7 * DAY - 300, step=60)  # the cutoff inside
    new = series(30, start=NOW - 3600, step=60)  # the last hour
    await write_segments(storage, [old[:50], old[50:100], old[100:], straddling, new])
    engine = create_engine(async_url(storage))
    try:
        pruned = await prune_once(engine, Retention(records=7 * DAY), NOW, chunk=50,
                                  segment_chunk=2, pause=0)
        assert pruned == Pruned(records=120, segments=3, request_ids=120 + 5)
        # a segment goes when its newest record is older than the cutoff
        assert await count(engine, "SELECT sum(records) FROM access_segments") == 40
        assert await count(engine, "SELECT count(*) FROM access_request_ids") == 35
        again = await prune_once(engine, Retention(records=7 * DAY), NOW, pause=0)
        assert again == Pruned()
        later = await prune_once(engine, Retention(records=7 * DAY), NOW + 600, pause=0)
        assert later == Pruned(records=10, segments=1, request_ids=5)
    finally:
        await engine.dispose()


async def test_request_ids_are_pruned_through_their_time_index(tmp_path: Path) -> None:
    """Retention picks ``access_request_ids`` rows by ``time_ms``: an index, not a scan
    of every client-supplied id ever kept (migration 0008)."""
    store = await ConfigStore.open(f"sqlite:///{tmp_path}/ids.db")
    await store.close()
    engine = create_engine(async_url(f"sqlite:///{tmp_path}/ids.db"))
    try:
        async with engine.connect() as conn:
            plan = (await conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT rowid FROM access_request_ids "
                "WHERE time_ms < 5 LIMIT 10"))).all()
        assert any("ix_access_request_ids_time" in str(row[-1]) for row in plan), plan
    finally:
        await engine.dispose()


async def test_rollups_pruned_by_period(tmp_path: Path) -> None:
    engine = create_engine(async_url(f"sqlite:///{tmp_path}/r.db"))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE access_segments (time_max_ms BIGINT, "
                                    "records INT)"))
            await conn.execute(text("CREATE TABLE access_request_ids (time_ms BIGINT)"))
            await conn.execute(text("CREATE TABLE rollups (period INT, bucket BIGINT)"))
            rows = [{"p": p, "b": int(NOW - age)} for p in (60, 3600, 86400)
                    for age in (DAY, 3 * DAY, 100 * DAY, 500 * DAY)]
            await conn.execute(text("INSERT INTO rollups VALUES (:p, :b)"), rows)
        pruned = await prune_once(engine, Retention(minute=2 * DAY, hour=90 * DAY,
                                                    day=400 * DAY), NOW, pause=0)
        assert pruned == Pruned(records=0, rollups=3 + 2 + 1)
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT period, bucket FROM rollups"))).all()
        assert sorted((p, round((NOW - b) / DAY)) for p, b in left) == [
            (60, 1), (3600, 1), (3600, 3), (86400, 1), (86400, 3), (86400, 100)]
    finally:
        await engine.dispose()


async def test_a_concurrent_writer_keeps_writing_while_pruning(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path}/busy.db"
    await (await ConfigStore.open(dsn)).close()
    # a short busy timeout: a writer locked out for long would fail here
    sink = SqliteRecordWriter(tmp_path / "busy.db", timeout=2.0)
    for n in range(300):
        await sink.write(series(100, start=NOW - 30 * DAY + n * 100))
    engine = create_engine(async_url(dsn))
    pruning = asyncio.create_task(prune_once(engine, Retention(records=7 * DAY), NOW,
                                             segment_chunk=10, pause=0.001))
    during = 0
    while not pruning.done():
        await sink.write(series(100, start=NOW - 60))
        during += 1
    pruned = await pruning
    await sink.close()
    try:
        assert pruned is not None and (pruned.records, pruned.segments) == (30_000, 300)
        assert during > 1  # writes went through between the chunks
        assert await count(engine, "SELECT sum(records) FROM access_segments") == during * 100
    finally:
        await engine.dispose()


async def test_one_postgresql_worker_prunes_at_a_time(pg_dsn: str) -> None:
    await (await ConfigStore.open(pg_dsn)).close()
    other = await asyncpg.connect(pg_dsn)
    engine = create_engine(async_url(pg_dsn))
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", 0x63677072756E65)
        assert await prune_once(engine, Retention(), NOW) is None
        await other.execute("SELECT pg_advisory_unlock_all()")
        assert await prune_once(engine, Retention(), NOW) is not None
    finally:
        await other.close()
        await engine.dispose()
