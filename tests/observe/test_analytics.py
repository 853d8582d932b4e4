from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from rollup_samples import START, generate, nearest_rank

from campusgate.observe import histogram as h
from campusgate.observe.analytics import (
    Analytics,
    Filters,
    InvalidQuery,
    TimeRange,
    parse_range,
    parse_step,
)
from campusgate.observe.analytics.plan import spans
from campusgate.observe.rollup import RollupStage
from campusgate.observe.rollup_store import open_rollup_store
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine

RECORDS = generate(2500, 30 * 3600, seed=5, start=START + 1800)


@pytest.fixture
async def analytics(storage: str) -> AsyncIterator[Analytics]:
    for n, part in enumerate((RECORDS[0::2], RECORDS[1::2])):
        stage = RollupStage(open_rollup_store(storage), f"node:{n}", clock=lambda: START + 1e6)
        await stage.write(part)
        await stage.close()
    engine = create_engine(async_url(storage))
    yield Analytics(engine)
    await engine.dispose()


WHOLE = TimeRange(START, START + 2 * 86400)


async def test_series_at_hour_and_minute_steps(analytics: Analytics) -> None:
    hourly = await analytics.series(WHOLE, 3600, ["requests", "errors", "p99"])
    assert len(hourly) == 48
    counts = Counter(int(r.time) - int(r.time) % 3600 for r in RECORDS)
    assert {p.time: p.values["requests"] for p in hourly if p.values["requests"]} == counts
    assert hourly[-1].values == {"requests": 0, "errors": 0, "p99": None}
    daily = await analytics.series(WHOLE, 86400, ["requests", "cost"])
    assert [p.values["requests"] for p in daily] == [
        sum(1 for r in RECORDS if r.time < START + 86400),
        sum(1 for r in RECORDS if r.time >= START + 86400)]
    route = await analytics.series(TimeRange(START + 3600, START + 7200), 300, ["requests"],
                                   Filters({"route": "route-1"}))
    assert sum(p.values["requests"] or 0 for p in route) == sum(
        1 for r in RECORDS if r.route == "route-1" and START + 3600 <= r.time < START + 7200)


async def test_top_and_percentiles_over_ranges_not_on_hour_boundaries(
        analytics: Analytics) -> None:
    span = TimeRange(START + 1860, START + 29 * 3600 + 420)
    assert {p for p, _, _ in spans(span)} == {60, 3600}
    inside = [r for r in RECORDS if span.start <= r.time < span.end]
    top = await analytics.top(span, "consumer", "requests", limit=3, extra=["error_rate"])
    expected = Counter(r.consumer or "" for r in inside).most_common()
    assert [(t.key["consumer"], t.values["requests"]) for t in top] == [
        (c, n) for c, n in sorted(expected, key=lambda e: (-e[1], e[0]))[:3]]
    totals = await analytics.totals(span, Filters(status_class=2))
    ok = [r.latency_ms for r in inside if 200 <= r.status < 300]
    assert totals.get("requests") == len(ok)
    exact = nearest_rank(ok, 0.99)
    assert abs((h.percentile(totals.latency, 0.99) or 0) - exact) <= h.RELATIVE_ERROR * exact * 1.01


async def test_error_breakdown_by_status_and_class(analytics: Analytics) -> None:
    items = await analytics.errors(WHOLE)
    expected = Counter((r.status, r.error) for r in RECORDS if r.status >= 400 or r.status == 0)
    assert {(i.key["status"], i.key["error"]): i.values["requests"] for i in items} == expected
    by_class = await analytics.top(WHOLE, "error", "requests")
    assert {t.key["error"] for t in by_class} >= {"upstream_timeout", "client_gone"}


def test_ranges_and_steps() -> None:
    now = START + 3600.5
    assert parse_range(now=now, last="1h") == TimeRange(START, START + 3660)
    assert parse_range(now=now, start="2023-11-14T00:00:00Z", end=str(START + 120)).end == \
        START + 120
    assert parse_step("5m", TimeRange(0, 86400)) == 300
    assert parse_step(None, TimeRange(0, 30 * 86400)) == 86400
    for bad in ({"last": "soon"}, {"start": "yesterday"}, {"last": "1h", "start": "0"},
                {"start": "100", "end": "50"}):
        with pytest.raises(InvalidQuery):
            parse_range(now=now, **bad)
    with pytest.raises(InvalidQuery):
        parse_step("90s", TimeRange(0, 3600))
    with pytest.raises(InvalidQuery):
        parse_step("1m", TimeRange(0, 30 * 86400))
    with pytest.raises(InvalidQuery):
        Filters({"colour": "red"})
