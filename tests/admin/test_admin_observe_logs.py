"""``/observe/logs``: search, one request, CSV export, through the admin app."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.store import build
from campusgate.store import ConfigStore

RECORD = AccessRecord(
    time=1_700_000_000.0, request_id="r-0", trace_id="1" * 32, span_id="2" * 16,
    parent_span_id=None, listener="proxy", worker=1, route="api", service="svc",
    upstream="127.0.0.1:9", consumer="app", credential=None, client_ip="127.0.0.1",
    method="GET", host="h", path="/api", status=200, bytes_in=0, bytes_out=2,
    latency_ms=1.0, upstream_latency_ms=0.5, overhead_ms=0.5, retries=0, rate_limit=None,
    error=None)


async def write_records(store: ConfigStore, tmp_path: Path) -> None:
    """r-0 .. r-4, one a second, in two segments that overlap in time (odd, even)."""
    records = [RECORD._replace(time=RECORD.time + i, request_id=f"r-{i}",
                       status=500 if i == 3 else 200) for i in range(5)]
    sink = build(StoreSink(), SinkEnv(f"sqlite:///{tmp_path}/admin.db", "w"))
    await sink.write(records[1::2])
    await sink.write(records[0::2])
    await sink.close()


async def test_search_pages_and_one_request(client: httpx.AsyncClient, store: ConfigStore,
                                            tmp_path: Path) -> None:
    await write_records(store, tmp_path)
    first = (await client.get("/observe/logs", params={"limit": 3})).json()
    assert [r["request_id"] for r in first["items"]] == ["r-4", "r-3", "r-2"]
    rest = (await client.get("/observe/logs", params={"cursor": first["next_cursor"]})).json()
    assert [r["request_id"] for r in rest["items"]] == ["r-1", "r-0"]
    assert rest["next_cursor"] is None
    errors = (await client.get("/observe/logs", params={"status": "5xx"})).json()
    assert [r["request_id"] for r in errors["items"]] == ["r-3"]
    one = await client.get("/observe/logs/r-3")
    assert one.status_code == 200 and one.json()[0]["status"] == 500
    missing = await client.get("/observe/logs/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_bad_filters_are_clear_400s(client: httpx.AsyncClient) -> None:
    for params, name in [({"status": "abc"}, "status"), ({"since": "tomorrow"}, "since"),
                         ({"limit": "0"}, "limit"), ({"cursor": "zz"}, "cursor")]:
        answer = await client.get("/observe/logs", params=params)
        assert answer.status_code == 400, params
        assert answer.json()["error"]["details"][0]["path"] == name
    answer = await client.get("/observe/logs.csv", params={"max_rows": "-1"})
    assert answer.status_code == 400
    assert answer.json()["error"]["details"][0]["path"] == "max_rows"


async def test_csv_export(client: httpx.AsyncClient, store: ConfigStore,
                          tmp_path: Path) -> None:
    await write_records(store, tmp_path)
    answer = await client.get("/observe/logs.csv", params={"max_rows": 4, "route": "api"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["request_id"] for r in rows] == ["r-4", "r-3", "r-2", "r-1"]
    assert rows[0]["time"] == "2023-11-14T22:13:24.000Z"


async def test_needs_a_token(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/observe/logs")).status_code == 401
    assert (await anonymous.get("/observe/logs.csv")).status_code == 401
