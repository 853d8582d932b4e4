"""The store sink against real SQLite and PostgreSQL: what it writes reads back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from access_samples import sample, series

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe import segments
from campusgate.observe.record import FIELDS
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.store import PostgresRecordWriter, SqliteRecordWriter, build
from campusgate.proxy.request_ids import new_request_id
from campusgate.store import ConfigStore

COUNT_SQL = "SELECT coalesce(sum(records), 0) AS n FROM access_segments"


async def fetch_rows(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` (``$1``-style parameters, ``?1`` for SQLite)."""
    if dsn.startswith("sqlite"):
        sql = sql.replace("$", "?")
        conn = sqlite3.connect(dsn.removeprefix("sqlite:///"))
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute(sql, args)]
        finally:
            conn.close()
    pg = await asyncpg.connect(dsn)
    try:
        return [dict(row) for row in await pg.fetch(sql, *args)]
    finally:
        await pg.close()


async def stored(dsn: str) -> list[dict[str, Any]]:
    """Every record in the store, as ``{field: value}``, in the order written."""
    rows = await fetch_rows(dsn, "SELECT body FROM access_segments ORDER BY id")
    return [dict(zip(FIELDS, values, strict=True))
            for row in rows for values in segments.decode(bytes(row["body"]))]


async def count(dsn: str) -> int:
    return int((await fetch_rows(dsn, COUNT_SQL))[0]["n"])


async def test_batches_read_back_field_for_field(storage: str) -> None:
    sink = build(StoreSink(), SinkEnv(storage, "w1"))
    ai = sample(time=1_700_000_000.123, request_id="ai-1", ai_provider="openai",
                ai_model="gpt-fast", ai_provider_model="gpt-4o-mini", ai_input_tokens=10,
                ai_output_tokens=20, ai_cached_tokens=0, ai_cost="0.000123",
                ai_redactions={"email": 1, "phone": 2}, request_body='{"q": "é 日本"}',
                response_body="ok\n✓", path="/" + "p" * 5000, upstream_latency_ms=None,
                latency_ms=3.25, user_agent="Mözilla ☃", consumer="élève-app")
    first = series(1000)
    await sink.write(first)
    await sink.write([ai])
    await sink.write([])
    await sink.close()
    segment_rows = await fetch_rows(storage, "SELECT records FROM access_segments ORDER BY id")
    assert [row["records"] for row in segment_rows] == [1000, 1]
    assert await stored(storage) == [record.as_dict() for record in [*first, ai]]


async def test_request_ids_are_found_by_range_or_by_their_own_row(storage: str) -> None:
    """A gateway-made id is found by the segment's id range and time (no row of its
    own); a client's id, or one whose time is far off, has an ``access_request_ids`` row."""
    now = time.time()
    made = [new_request_id() for _ in range(5)]
    stale = f"{int(now * 1000) - 3_600_000:012x}" + "0" * 20  # an hour off: not located
    batch = [sample(time=now + i / 100, request_id=rid)
             for i, rid in enumerate([*made, "client-id-1", stale])]
    sink = build(StoreSink(), SinkEnv(storage, "w1"))
    await sink.write(series(3))  # another segment, without gateway ids
    await sink.write(batch)
    await sink.close()
    segment = (await fetch_rows(storage, "SELECT * FROM access_segments ORDER BY id"))[-1]
    loose = await fetch_rows(storage, "SELECT request_id, segment_id, time_ms "
                                      "FROM access_request_ids ORDER BY id")
    assert [(r["request_id"], r["segment_id"]) for r in loose[-2:]] == [
        ("client-id-1", segment["id"]), (stale, segment["id"])]
    assert loose[-1]["time_ms"] == int(batch[-1].time * 1000)
    assert "client-id-1" not in {r["request_id"] for r in loose[:-2]}
    assert (segment["rid_min"], segment["rid_max"]) == (min(made), max(made))
    window = segments.LOCATE_WINDOW_MS
    for rid in made:  # the lookup log search runs, in the database's own comparison
        at = segments.id_time_ms(rid)
        assert at is not None
        found = await fetch_rows(
            storage, "SELECT id FROM access_segments WHERE rid_min <= $1 AND rid_max >= $1 "
                     "AND time_max_ms >= $2 AND time_min_ms <= $3", rid, at - window,
            at + window)
        assert [row["id"] for row in found] == [segment["id"]]


async def test_terms_let_a_search_skip_segments(storage: str) -> None:
    sink = build(StoreSink(), SinkEnv(storage, "w1"))
    await sink.write(series(3, consumer="district-app", status=200))
    await sink.write(series(3, consumer="grade_book", status=503, error="upstream_timeout"))
    await sink.write(series(4, consumer="gradeXbook", method="POST"))
    await sink.close()

    async def matching(name: str, value: Any) -> list[int]:
        rows = await fetch_rows(storage, "SELECT records FROM access_segments "
                                         "WHERE terms LIKE $1 ESCAPE '\\' ORDER BY id",
                                segments.term_pattern(name, value))
        return [row["records"] for row in rows]

    assert await matching("consumer", "district-app") == [3]
    assert await matching("consumer", "grade_book") == [3]  # _ is not a wildcard
    assert await matching("status", 503) == [3]
    assert await matching("error", "upstream_timeout") == [3]
    assert await matching("method", "GET") == [3, 3]
    assert await matching("consumer", "district") == []  # whole values only
    assert await matching("consumer", "nobody") == []


async def test_sqlite_locked_fails_the_batch_without_blocking_then_recovers(
    tmp_path: Path,
) -> None:
    dsn = f"sqlite:///{tmp_path}/locked.db"
    await (await ConfigStore.open(dsn)).close()
    sink = SqliteRecordWriter(tmp_path / "locked.db", timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await sink.write(series(10))
    ticker.cancel()
    assert ticks > 1  # the loop kept running while the sink waited on the lock
    blocker.execute("ROLLBACK")
    blocker.close()
    await sink.write(series(10))
    await sink.close()
    assert await count(dsn) == 10


async def test_sqlite_without_the_table_fails_then_works_once_migrated(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path}/late.db"
    sink = build(StoreSink(), SinkEnv(dsn, "w1"))
    sqlite3.connect(tmp_path / "late.db").close()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await sink.write(series(3))
    await (await ConfigStore.open(dsn)).close()
    await sink.write(series(3))
    await sink.close()
    assert await count(dsn) == 3


async def test_a_failed_batch_leaves_nothing_behind(storage: str) -> None:
    """Segment and loose ids are one transaction: a batch that fails half-way (here the
    loose ids' table is gone) leaves no segment whose ids cannot be found."""
    sink = build(StoreSink(), SinkEnv(storage, "w1"))
    await sink.write(series(2))
    await fetch_rows(storage, "DROP TABLE access_request_ids")
    with pytest.raises((sqlite3.Error, asyncpg.PostgresError)):
        await sink.write(series(2, start=1_800_000_000.0))  # "req-<i>": loose ids
    await sink.close()
    assert await count(storage) == 2


async def test_postgresql_connection_lost_fails_one_batch_then_reconnects(pg_dsn: str) -> None:
    await (await ConfigStore.open(pg_dsn)).close()
    sink = build(StoreSink(), SinkEnv(pg_dsn, "w1"))
    assert isinstance(sink, PostgresRecordWriter)
    await sink.write(series(5))
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await admin.close()
    written = 5
    try:  # fails, unless the loss was already seen and the sink reconnected at once
        await sink.write(series(5, start=1_800_000_000.0))
        written += 5
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
            asyncpg.InternalClientError):
        pass
    await sink.write(series(5, start=1_900_000_000.0))
    await sink.close()
    assert await count(pg_dsn) == written + 5


async def test_postgresql_down_fails_the_batch(unused_tcp_port: int) -> None:
    sink = PostgresRecordWriter(f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/x")
    with pytest.raises(OSError):
        await sink.write(series(1))
    await sink.close()


async def test_a_record_the_codec_cannot_hold_fails_its_batch_only(storage: str) -> None:
    """An unencodable value (an int past 64 bits) fails its batch; the next one lands."""
    sink = build(StoreSink(), SinkEnv(storage, "w1"))
    with pytest.raises(TypeError):
        await sink.write([sample(bytes_out=1 << 70)])
    await sink.write(series(2))
    await sink.close()
    assert await count(storage) == 2
