"""Migration 0007: the records of ``access_records`` move into segments, on SQLite and
PostgreSQL, and a downgrade gives back the old (empty) table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.observe import segments
from campusgate.observe.record import FIELDS
from campusgate.store.dsn import async_url, sqlite_path
from campusgate.store.engine import create_engine
from campusgate.store.migrate import MIGRATIONS_DIR, current_heads

#: Old rows to move: more than one segment's worth (the migration makes 5,000-record ones).
ROWS = 5_003


def migrate(connection: Connection, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture
async def engine(store_dsn: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database migrated to 0006 (records in ``access_records``)."""
    url = async_url(store_dsn)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    made = create_engine(url)
    async with made.begin() as conn:
        await conn.run_sync(migrate, "0006")
    yield made
    await made.dispose()


def old_row(i: int) -> dict[str, Any]:
    """An ``access_records`` row as 0004..0006 kept it."""
    row: dict[str, Any] = {
        "time_ms": 1_700_000_000_000 + i * 7, "request_id": f"{1_700_000_000_000 + i * 7:012x}"
        f"{i:020x}" if i % 3 else f"client-{i}", "trace_id": f"{i:032x}",
        "span_id": f"{i:016x}", "parent_span_id": None, "listener": "proxy", "worker": 11,
        "route": f"route-{i % 4}", "service": "svc", "upstream": "10.0.0.1:80",
        "consumer": f"app-{i % 10}", "credential": None, "client_ip": "10.1.2.3",
        "method": "GET", "host": "gw.example.edu", "path": f"/p/{i}", "status": 200,
        "bytes_in": 0, "bytes_out": i, "latency_ms": i / 8, "upstream_latency_ms": None,
        "overhead_ms": 0.5, "retries": 0, "rate_limit": None, "error": None,
        "user_agent": "curl/8", "ai_provider": None, "ai_model": None,
        "ai_provider_model": None, "ai_input_tokens": None, "ai_output_tokens": None,
        "ai_cached_tokens": None, "ai_cost": None, "ai_redactions": None,
        "request_body": None, "response_body": None}
    if i == 1:
        row.update(ai_provider="openai", ai_model="gpt-fast", ai_provider_model="gpt-4o",
                   ai_input_tokens=3, ai_output_tokens=4, ai_cached_tokens=1,
                   ai_cost="0.0001", ai_redactions='{"email": 2}', request_body="é 日本",
                   response_body="ok", path="/" + "p" * 5000)
    return row


def as_record(row: dict[str, Any]) -> dict[str, Any]:
    """The record a row stood for, as :func:`segments.decode` gives it back."""
    values = {name: row[name] for name in FIELDS if name != "time"}
    values["ai_redactions"] = json.loads(row["ai_redactions"] or "null")
    return {"time": row["time_ms"] / 1000, **values}


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_old_records_move_into_segments_and_read_back(engine: AsyncEngine) -> None:
    rows = [old_row(i) for i in range(ROWS)]
    columns = list(rows[0])
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO access_records ({', '.join(columns)}) "
                                f"VALUES ({', '.join(':' + c for c in columns)})"), rows)
        await conn.run_sync(migrate, "0007")
        assert await conn.run_sync(current_heads) == ("0007",)
        assert "access_records" not in await conn.run_sync(tables)
        stored = (await conn.execute(text(
            "SELECT id, records, rid_min, rid_max, body FROM access_segments ORDER BY id"
        ))).all()
        loose = (await conn.execute(text(
            "SELECT request_id, segment_id, time_ms FROM access_request_ids ORDER BY id"
        ))).all()
    assert [segment.records for segment in stored] == [5000, 3]
    moved = [dict(zip(FIELDS, values, strict=True))
             for segment in stored for values in segments.decode(segment.body)]
    assert moved == [as_record(row) for row in rows]
    clients = [(row["request_id"], row["time_ms"]) for row in rows if row["request_id"]
               .startswith("client-")]
    assert [(r.request_id, r.time_ms) for r in loose] == clients
    assert {r.segment_id for r in loose} == {segment.id for segment in stored}
    made = [row["request_id"] for row in rows[:5000] if not row["request_id"]
            .startswith("client-")]
    assert (stored[0].rid_min, stored[0].rid_max) == (min(made), max(made))


async def test_downgrade_brings_back_an_empty_access_records(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(migrate, "0007")
        await conn.run_sync(migrate, "0006", True)
        names = await conn.run_sync(tables)
        assert "access_records" in names
        assert not {"access_segments", "access_request_ids"} & names
        count = await conn.execute(text("SELECT count(*) FROM access_records"))
        assert count.scalar_one() == 0
        await conn.run_sync(migrate, "0007")  # and up again
        assert await conn.run_sync(current_heads) == ("0007",)
