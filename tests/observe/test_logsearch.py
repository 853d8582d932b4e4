"""Log search: parameters parsed (pure), then queries over segments in real SQLite
and PostgreSQL."""

from __future__ import annotations

import base64
import csv
import io
import random
from collections.abc import AsyncIterator, Sequence

import pytest
from access_samples import sample, series, write_segments
from sqlalchemy import text

from campusgate.observe.logsearch import (
    CSV_COLUMNS,
    InvalidFilter,
    LogQuery,
    LogSearch,
    parse_query,
)
from campusgate.observe.record import AccessRecord
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
    # a cursor of the one-row-per-request table, from before segments
    ({"cursor": base64.urlsafe_b64encode(b"1700000000000.17").decode()}, "cursor"),
])
def test_bad_parameters_name_themselves(params: dict[str, str], name: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_query(params, NOW)
    assert caught.value.name == name


async def store_segments(storage: str,
                         batches: Sequence[Sequence[AccessRecord]]) -> list[int]:
    """Each batch as one segment, through the store sink: the new segments' ids."""
    await write_segments(storage, batches)
    engine = create_engine(async_url(storage))
    try:
        async with engine.connect() as conn:
            ids = list((await conn.execute(text(
                "SELECT id FROM access_segments ORDER BY id"))).scalars())
    finally:
        await engine.dispose()
    return ids[-len(batches):]


def gateway_id(moment: float, tail: int = 0) -> str:
    """A request id as the gateway makes them at ``moment`` (epoch seconds)."""
    return f"{int(moment * 1000):012x}{tail:020x}"


@pytest.fixture
async def search(storage: str) -> AsyncIterator[LogSearch]:
    records = series(250, start=NOW)  # req-0 .. req-249, one a second
    # five segments that each span the whole time range: every page needs all five
    await store_segments(storage, [records[k::5] for k in range(5)])
    await store_segments(storage, [[
        sample(time=NOW + 300, request_id="err-1", status=502, error="upstream_unreachable",
               consumer="other", route="other-route", path="/Other/100%_done"),
        sample(time=NOW + 301, request_id="err-2", status=404, consumer="other",
               user_agent="=HYPERLINK(\"http://evil\")", ai_redactions={"email": 1}),
        sample(time=NOW + 301, request_id="err-2", status=404, consumer="other"),
    ], [
        sample(time=NOW + 302, request_id="ai-1", status=201, consumer="dept_1",
               service="chat", upstream="openai", method="POST", client_ip="10.9.9.9",
               trace_id="f" * 32, ai_provider="openai", ai_model="gpt-4o",
               user_agent="Mozilla/5.0 (X11)"),
    ], [
        # U+212A KELVIN SIGN: lower-cased, it is an ASCII "k"
        sample(time=NOW - 10, request_id="intl-1", consumer="intl",
               path="/café/Über-Menu/\u212aelvin"),
    ]])
    engine = create_engine(async_url(storage))
    yield LogSearch(engine)
    await engine.dispose()


async def query(search: LogSearch, **params: str) -> list[str]:
    page = await search.page(parse_query(params, NOW))
    return [item["request_id"] for item in page.items]


async def test_filters(search: LogSearch) -> None:
    assert await query(search, status="5xx") == ["err-1"]
    assert await query(search, status="404") == ["err-2", "err-2"]
    assert await query(search, status="2xx", limit="3") == ["ai-1", "req-249", "req-248"]
    assert await query(search, status="201") == ["ai-1"]
    assert await query(search, consumer="other", limit="2") == ["err-2", "err-2"]
    assert await query(search, error="upstream_unreachable") == ["err-1"]
    assert await query(search, route="other-route") == ["err-1"]
    assert await query(search, text="100%_") == ["err-1"]
    assert await query(search, text="other/") == ["err-1"]  # case-insensitive
    assert await query(search, text="HYPERLINK") == ["err-2"]
    assert await query(search, text="mozilla/5.0 (x11") == ["ai-1"]
    for needle in ("über-menu", "ÜBER", "CAFÉ/", "kelvin"):
        assert await query(search, text=needle) == ["intl-1"], needle
    assert await query(search, text='("HTTP://evil') == ["err-2"]  # a quote, as JSON escapes it
    assert await query(search, since=str(NOW + 10), until=str(NOW + 13)) == [
        "req-12", "req-11", "req-10"]
    assert await query(search, request_id="req-7") == ["req-7"]
    assert await query(search, consumer="nobody") == []
    for name, value in [("service", "chat"), ("upstream", "openai"), ("method", "POST"),
                        ("client_ip", "10.9.9.9"), ("trace_id", "f" * 32),
                        ("ai_provider", "openai"), ("ai_model", "gpt-4o"),
                        ("consumer", "dept_1")]:
        assert await query(search, **{name: value}) == ["ai-1"], name
    # exact means exact: LIKE's wildcards and SQLite's case folding do not leak through
    assert await query(search, consumer="dept%1") == []
    assert await query(search, consumer="dept_") == []
    assert await query(search, method="post") == []
    assert await query(search, consumer="other", status="404", text="curl") == ["err-2"]


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


async def test_overlapping_segments_page_in_exact_order(storage: str) -> None:
    """Random times with many ties, random segments that overlap: paging through
    gives every record once, by (time, segment, index in segment) descending."""
    rng = random.Random(7)
    records = [sample(time=NOW + rng.randrange(400) / 20, request_id=f"r-{i}",
                      consumer=rng.choice(["a", "b"]), status=rng.choice([200, 503]))
               for i in range(1500)]
    batches: list[list[AccessRecord]] = []
    while len(records) > sum(map(len, batches)):
        start = sum(map(len, batches))
        batches.append(records[start:start + rng.randrange(1, 200)])
    ids = await store_segments(storage, batches)
    keys = {record.request_id: (int(record.time * 1000), segment_id, index)
            for segment_id, batch in zip(ids, batches, strict=True)
            for index, record in enumerate(batch)}
    engine = create_engine(async_url(storage))
    try:
        search = LogSearch(engine)
        for filters, wanted in [
            ({}, lambda r: True),
            ({"consumer": "b"}, lambda r: r.consumer == "b"),
            ({"status": "5xx", "since": str(NOW + 5)},
             lambda r: r.status == 503 and r.time >= NOW + 5),
        ]:
            expected = sorted((r.request_id for r in records if wanted(r)),
                              key=keys.__getitem__, reverse=True)
            assert len(expected) > 300
            seen: list[str] = []
            cursor = ""
            while True:
                page = await search.page(parse_query(
                    {**filters, "limit": "37", "cursor": cursor}, NOW))
                seen += [item["request_id"] for item in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == expected, filters
    finally:
        await engine.dispose()


async def test_request_ids_of_both_kinds(storage: str) -> None:
    made = gateway_id(NOW + 5, 1)  # made by the gateway: found by time and range
    late = gateway_id(NOW - 3600, 2)  # a gateway id, but an hour off its record's time
    await store_segments(storage, [
        [sample(time=NOW + 4 + i / 10, request_id=gateway_id(NOW + 4 + i / 10, 9))
         for i in range(10)] + [sample(time=NOW + 5, request_id=made)],
        [sample(time=NOW + 6, request_id="client-chosen", status=500),
         sample(time=NOW + 6.5, request_id=late)],
        [sample(time=NOW + 9, request_id="client-chosen", status=200)],  # reused
    ])
    engine = create_engine(async_url(storage))
    try:
        search = LogSearch(engine)
        assert [r["request_id"] for r in await search.by_request_id(made)] == [made]
        assert [r["time"] for r in await search.by_request_id(late)] == [
            "2023-11-14T22:13:26.500Z"]
        reused = await search.by_request_id("client-chosen")
        assert [r["status"] for r in reused] == [200, 500]
        assert await search.by_request_id(gateway_id(NOW + 5, 3)) == []
        assert await search.by_request_id("missing") == []
        assert await query(search, request_id="client-chosen", status="5xx") == [
            "client-chosen"]
    finally:
        await engine.dispose()


async def test_one_request_and_its_shape(search: LogSearch) -> None:
    found = await search.by_request_id("err-2")
    assert len(found) == 2
    first = next(item for item in found if item["ai_redactions"])
    assert first["time"] == "2023-11-14T22:18:21.000Z"
    assert first["ai_redactions"] == {"email": 1} and first["status"] == 404
    assert "id" not in first and "time_ms" not in first
    assert list(first) == list(CSV_COLUMNS)
    assert await search.by_request_id("missing") == []


async def test_csv_export_streams_every_column_with_a_cap(search: LogSearch) -> None:
    chunks = [chunk async for chunk in search.export_csv(
        parse_query({"consumer": "district-app"}, NOW), max_rows=120, chunk=50)]
    assert len(chunks) >= 4  # header, then 50 + 50 + 20 rows
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 121
    assert [row[CSV_COLUMNS.index("request_id")] for row in rows[1:]] == [
        f"req-{i}" for i in range(249, 129, -1)]
    every = [chunk async for chunk in search.export_csv(
        parse_query({"status": "404"}, NOW), max_rows=10)]
    cells = list(csv.DictReader(io.StringIO("".join(every))))
    assert {c["user_agent"] for c in cells} == {"'=HYPERLINK(\"http://evil\")", "curl/8.0"}
    assert {c["ai_redactions"] for c in cells} == {'{"email": 1}', ""}
