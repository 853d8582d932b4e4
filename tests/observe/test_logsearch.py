"""Log search: parameters parsed (pure), then queries over real SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from access_samples import sample, series

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe.logsearch import (
    CSV_COLUMNS,
    InvalidFilter,
    LogQuery,
    LogSearch,
    parse_query,
)
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.store import build
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine

NOW = 1_700_000_000.0


@pytest.mark.parametrize("params, expected", [
    ({"status": "5xx"}, LogQuery(status_class=5)),
    ({"status": "404", "consumer": "a", "route": ""}, LogQuery({"consumer": "a"}, status=404)),
    ({"since": "1699999000", "until": "2023-11-14T22:13:20Z"},
     LogQuery(since_ms=1_699_999_000_000, until_ms=1_700_000_000_000)),
    ({"since": "15m", "until": "2023-11-14T23:13:20+01:00"},
     LogQuery(since_ms=(NOW - 900) * 1000, until_ms=1_700_000_000_000)),
    ({"limit": "7", "text": "users"}, LogQuery(limit=7, text="users")),
])
def test_parameters(params: dict[str, str], expected: LogQuery) -> None:
    assert parse_query(params, NOW) == expected


@pytest.mark.parametrize("params, name", [
    ({"status": "600"}, "status"), ({"status": "5x"}, "status"),
    ({"since": "yesterday"}, "since"), ({"since": "10", "until": "5"}, "until"),
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"cursor": "!!"}, "cursor"), ({"cursor": "bm9wZQ"}, "cursor"), ({"text": "x" * 201}, "text"),
])
def test_bad_parameters_name_themselves(params: dict[str, str], name: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_query(params, NOW)
    assert caught.value.name == name


@pytest.fixture
async def search(storage: str) -> AsyncIterator[LogSearch]:
    sink = build(StoreSink(), SinkEnv(storage, "w"))
    await sink.write(series(250, start=NOW))  # req-0 .. req-249, one a second
    await sink.write([
        sample(time=NOW + 300, request_id="err-1", status=502, error="upstream_unreachable",
               consumer="other", route="other-route", path="/Other/100%_done"),
        sample(time=NOW + 301, request_id="err-2", status=404, consumer="other",
               user_agent="=HYPERLINK(\"http://evil\")", ai_redactions={"email": 1}),
        sample(time=NOW + 301, request_id="err-2", status=404, consumer="other"),
    ])
    await sink.close()
    engine = create_engine(async_url(storage))
    yield LogSearch(engine)
    await engine.dispose()


async def query(search: LogSearch, **params: str) -> list[str]:
    page = await search.page(parse_query(params, NOW))
    return [item["request_id"] for item in page.items]


async def test_filters(search: LogSearch) -> None:
    assert await query(search, status="5xx") == ["err-1"]
    assert await query(search, status="404") == ["err-2", "err-2"]
    assert await query(search, consumer="other", limit="2") == ["err-2", "err-2"]
    assert await query(search, error="upstream_unreachable") == ["err-1"]
    assert await query(search, route="other-route") == ["err-1"]
    assert await query(search, text="100%_") == ["err-1"]
    assert await query(search, text="other/") == ["err-1"]  # case-insensitive
    assert await query(search, text="HYPERLINK") == ["err-2"]
    assert await query(search, since=str(NOW + 10), until=str(NOW + 13)) == [
        "req-12", "req-11", "req-10"]
    assert await query(search, request_id="req-7") == ["req-7"]
    assert await query(search, consumer="nobody") == []


async def test_keyset_pages_cover_everything_once(search: LogSearch) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "60", "consumer": "district-app", "cursor": cursor or ""}
        page = await search.page(parse_query(params, NOW))
        seen += [item["request_id"] for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"req-{i}" for i in reversed(range(250))]


async def test_one_request_and_its_shape(search: LogSearch) -> None:
    found = await search.by_request_id("err-2")
    assert len(found) == 2
    first = next(item for item in found if item["ai_redactions"])
    assert first["time"] == "2023-11-14T22:18:21.000Z"
    assert first["ai_redactions"] == {"email": 1} and first["status"] == 404
    assert "id" not in first and "time_ms" not in first
    assert await search.by_request_id("missing") == []


async def test_csv_export_streams_every_column_with_a_cap(search: LogSearch) -> None:
    chunks = [chunk async for chunk in search.export_csv(
        parse_query({"consumer": "district-app"}, NOW), max_rows=120, chunk=50)]
    assert len(chunks) >= 4  # header, then 50 + 50 + 20 rows
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 121
    assert rows[1][CSV_COLUMNS.index("request_id")] == "req-249"
    every = [chunk async for chunk in search.export_csv(
        parse_query({"status": "404"}, NOW), max_rows=10)]
    cells = list(csv.DictReader(io.StringIO("".join(every))))
    assert {c["user_agent"] for c in cells} == {"'=HYPERLINK(\"http://evil\")", "curl/8.0"}
