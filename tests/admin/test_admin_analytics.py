from __future__ import annotations

import time

import httpx
import pytest

from campusgate.observe.record import AccessRecord
from campusgate.observe.rollup import RollupStage
from campusgate.observe.rollup_store import open_rollup_store
from campusgate.store import ConfigStore


def _record(t: float, route: str, consumer: str | None, status: int, latency: float,
            error: str | None = None) -> AccessRecord:
    return AccessRecord(
        time=t, request_id=f"r{t}", trace_id="0" * 32, span_id="0" * 16, parent_span_id=None,
        listener="proxy", worker=1, route=route, service="svc", upstream="127.0.0.1:9000",
        consumer=consumer, credential=None, client_ip="127.0.0.1", method="GET", host="h",
        path="/", status=status, bytes_in=10, bytes_out=100, latency_ms=latency,
        upstream_latency_ms=latency - 1, overhead_ms=1.0, retries=0, rate_limit=None,
        error=error)


async def write_traffic(store: ConfigStore, now: float) -> None:
    """Six minutes of traffic: roster busiest, one 502 and one 404."""
    records = [_record(now - 300 + n, "roster", "district-app", 200, 10.0 + n % 7)
               for n in range(0, 300, 2)]
    records += [_record(now - 100 + n, "grades", None, 200, 40.0) for n in range(20)]
    records += [_record(now - 50, "grades", "lms", 502, 900.0, "upstream_timeout"),
                _record(now - 40, "grades", "lms", 404, 3.0)]
    dsn = store.url.render_as_string(hide_password=False)
    stage = RollupStage(open_rollup_store(dsn), "test:1:1")
    await stage.write(sorted(records, key=lambda r: r.time))
    await stage.close()


@pytest.fixture
async def traffic(store: ConfigStore) -> None:
    await write_traffic(store, time.time())


async def test_series_json_and_csv(client: httpx.AsyncClient, traffic: None) -> None:
    answer = await client.get("/observe/analytics/series",
                              params={"last": "10m", "step": "1m", "metric": "requests,p99"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["step"] == 60 and body["metrics"] == ["requests", "p99"]
    assert sum(p["values"]["requests"] for p in body["points"]) == 172
    for path, params in (("/observe/analytics/series.csv", {"last": "10m"}),
                         ("/observe/analytics/series", {"last": "10m", "format": "csv"})):
        csv = await client.get(path, params=params)
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.strip().splitlines()
        assert lines[0] == "time,requests"
        assert sum(int(line.split(",")[1]) for line in lines[1:]) == 172


async def test_top_percentiles_and_errors(client: httpx.AsyncClient, traffic: None) -> None:
    top = (await client.get("/observe/analytics/top", params={
        "last": "1h", "by": "route", "include": "errors,p99"})).json()
    assert [(i["route"], i["requests"], i["errors"]) for i in top["items"]] == [
        ("roster", 150, 0), ("grades", 22, 1)]
    consumers = (await client.get("/observe/analytics/top", params={
        "last": "1h", "by": "consumer", "route": "grades"})).json()
    assert {i["consumer"]: i["requests"] for i in consumers["items"]} == {"": 20, "lms": 2}
    pct = (await client.get("/observe/analytics/percentiles",
                            params={"last": "1h", "route": "roster"})).json()
    assert pct["requests"] == 150 and 15.0 <= pct["latency_ms"]["p99"] <= 16.5
    errors = (await client.get("/observe/analytics/errors", params={"last": "1h"})).json()
    assert errors["errors"] == 1 and errors["requests"] == 172
    assert errors["items"] == [{"status": 404, "error": None, "requests": 1},
                               {"status": 502, "error": "upstream_timeout", "requests": 1}]


@pytest.mark.parametrize(("path", "params", "words"), [
    ("/observe/analytics/series", {"metric": "speed"}, "unknown metric"),
    ("/observe/analytics/series", {"last": "yesterday"}, "duration"),
    ("/observe/analytics/series", {"step": "30s"}, "whole number of minutes"),
    ("/observe/analytics/series", {"start": "not-a-date"}, "ISO 8601"),
    ("/observe/analytics/top", {"by": "colour"}, "cannot group by"),
    ("/observe/analytics/series", {"last": "1h", "start": "0"}, "either last or start"),
])
async def test_bad_parameters_are_400s(client: httpx.AsyncClient, path: str,
                                       params: dict[str, str], words: str) -> None:
    answer = await client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]["message"]


async def test_needs_a_token(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/observe/analytics/series")).status_code == 401
