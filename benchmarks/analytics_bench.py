"""Analytics over 30 days of roll-ups holding 10 million generated requests, on SQLite.

    .venv/bin/python benchmarks/analytics_bench.py [--requests 10000000] [--days 30]

Generates the requests (50 routes, 500 consumers with a skewed share of traffic, 5
models on the AI routes, 10 upstreams, a status mix with 4xx and 5xx and error
classes, log-normal latencies), feeds them through the roll-up aggregator
(``observe/rollup_state.py``) a simulated hour at a time, upserts the rows it produces
into a fresh, migrated SQLite store (minute rows only for the last two days, the
default retention), then times each analytics query (median of 5 runs) through
:class:`campusgate.observe.analytics.Analytics`.  Goal: each under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from campusgate.observe.analytics import Analytics, Filters, TimeRange
from campusgate.observe.record import AccessRecord
from campusgate.observe.rollup_state import RollupState
from campusgate.observe.rollup_store import SqliteRollupStore
from campusgate.store import ConfigStore
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine

GOAL_MS = 200.0


def _records(rng: random.Random, start: float, count: int, seconds: float
             ) -> list[AccessRecord]:
    routes = [f"route-{n}" for n in range(50)]
    consumers = [f"consumer-{n}" for n in range(500)]
    weights = [1.0 / (n + 1) ** 0.8 for n in range(500)]
    models = [f"model-{n}" for n in range(5)]
    statuses = [200] * 90 + [201] * 3 + [204] * 2 + [400, 401, 404, 429, 500, 502, 503, 0]
    picked = rng.choices(consumers, weights, k=count)
    out = []
    for n in range(count):
        consumer = picked[n]
        route = hash(consumer) % 47 + rng.randrange(4)  # each consumer uses a few routes
        status = rng.choice(statuses)
        ai = route >= 45
        latency = rng.lognormvariate(3.2, 0.9)
        out.append(AccessRecord(
            start + rng.random() * seconds, "r", "t", "s", None, "proxy", 1, routes[route],
            f"service-{route}", f"10.0.{route % 10}.1:80", consumer, None, "10.0.0.1", "GET",
            "h", "/", status, 200, 2000, latency, latency * 0.9, latency * 0.1, 0, None,
            "upstream_error" if status >= 502 else ("client_gone" if status == 0 else None),
            ai_model=models[route % 5] if ai else None,
            ai_input_tokens=300 if ai else None, ai_output_tokens=120 if ai else None,
            ai_cost="0.000420" if ai else None))
    return out


async def _fill(path: Path, requests: int, days: int, end: int) -> dict[str, Any]:
    rng = random.Random(1)
    store = SqliteRollupStore(path)
    state = RollupState()
    hours = days * 24
    start = end - hours * 3600
    keep_minutes_from = end - 2 * 86400
    per_hour = requests // hours
    began = time.perf_counter()
    written = 0
    for hour in range(hours):
        at = start + hour * 3600
        state.add(_records(rng, at, per_hour, 3600.0))
        take = state.take(at + 3600)
        state.commit(take, {})
        # a live worker writes every second; written here once per simulated hour,
        # and the day rows once per day (the same final values: rows are cumulative)
        periods = (60, 3600, 86400) if hour % 24 == 23 else (60, 3600)
        rows = [row for row in state.changed_rows("bench:1:1", periods)
                if row[0] != 60 or row[2] >= keep_minutes_from]
        await store.upsert(rows)
        state.written(periods)
        written += len(rows)
    await store.close()
    return {"requests": per_hour * hours, "row_writes": written,
            "fill_seconds": round(time.perf_counter() - began, 1)}


async def _time(label: str, call: Any, runs: int = 5) -> dict[str, Any]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000.0)
    median = statistics.median(samples)
    return {"query": label, "median_ms": round(median, 1), "goal_ms": GOAL_MS,
            "ok": median < GOAL_MS}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        dsn = f"sqlite:///{workdir}/analytics.db"
        await (await ConfigStore.open(dsn)).close()
        end = int(time.time()) // 3600 * 3600
        filled = await _fill(Path(workdir) / "analytics.db", args.requests, args.days, end)
        engine = create_engine(async_url(dsn))
        analytics = Analytics(engine)
        async with engine.connect() as conn:
            counts = dict((await conn.exec_driver_sql(
                "SELECT period, count(*) FROM rollups GROUP BY period")).all())
        month = TimeRange(end - args.days * 86400, end)
        day = TimeRange(end - 86400, end)
        results = [
            await _time("series 30 d, 1 h step (requests, errors)",
                        lambda: analytics.series(month, 3600, ["requests", "errors"])),
            await _time("series 30 d, 1 h step (p99)",
                        lambda: analytics.series(month, 3600, ["p99"])),
            await _time("series 30 d, 1 d step (requests, p99)",
                        lambda: analytics.series(month, 86400, ["requests", "p99"])),
            await _time("top-10 consumers, 30 d",
                        lambda: analytics.top(month, "consumer", "requests", 10)),
            await _time("p50/p95/p99, 30 d", lambda: analytics.totals(month)),
            await _time("error breakdown, 30 d", lambda: analytics.errors(month)),
            await _time("series 24 h, 1 min step (requests)",
                        lambda: analytics.series(day, 60, ["requests"])),
            await _time("series 30 d, 1 d step, one route",
                        lambda: analytics.series(month, 86400, ["requests", "p99"],
                                                 Filters({"route": "route-3"}))),
        ]
        await engine.dispose()
    print(json.dumps({**filled, "rows_by_period": counts, "results": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
