from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rollup_samples import START, generate, nearest_rank
from sqlalchemy import select

from campusgate.observe import histogram as h
from campusgate.observe.record import AccessRecord
from campusgate.observe.rollup import RollupStage, build
from campusgate.observe.rollup_state import RollupState, nanousd
from campusgate.observe.rollup_store import open_rollup_store
from campusgate.observe.sinks.base import SinkEnv
from campusgate.store import ConfigStore
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine
from campusgate.store.rollup_tables import rollups


def _is_error(r: AccessRecord) -> bool:
    return r.status >= 500 or r.status == 0 or (r.error is not None and r.status < 400)


def _exact(records: Sequence[AccessRecord], period: int, dim: str | None
           ) -> dict[tuple[Any, ...], list[Any]]:
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, Decimal(0), 0])
    for r in records:
        second = int(r.time)
        key = (second - second % period, (getattr(r, dim) or "") if dim else "")
        sums = out[key]
        sums[0] += 1
        sums[1] += _is_error(r)
        sums[2] += r.bytes_out
        sums[3] += r.ai_input_tokens or 0
        sums[4] += Decimal(r.ai_cost or 0)
        sums[5] += r.rate_limit == "limited"
    return {k: [*v[:4], int(v[4] * 10**9), v[5]] for k, v in out.items()}


async def _stored(storage: str, period: int, dims: int, column: str | None
                  ) -> dict[tuple[Any, ...], list[Any]]:
    engine = create_engine(async_url(storage))
    c = rollups.c
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(c.bucket, c[column] if column else c.route, c.requests, c.errors,
                       c.bytes_out, c.input_tokens, c.cost_nanousd, c.rate_limited)
                .where(c.period == period, c.dims == dims))).all()
    finally:
        await engine.dispose()
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0] * 6)
    for bucket, value, *sums in rows:  # several workers' rows merge by addition
        key = (bucket, value if column else "")
        out[key] = [a + b for a, b in zip(out[key], sums, strict=True)]
    return dict(out)


async def _feed(storage: str, records: Sequence[AccessRecord], workers: int) -> None:
    now = [float(START)]
    stages = [RollupStage(open_rollup_store(storage), f"node:{n}:1", clock=lambda: now[0])
              for n in range(workers)]
    for start in range(0, len(records), 50):
        batch = records[start:start + 50]
        now[0] = max(now[0], batch[-1].time + 0.5)
        await stages[start // 50 % workers].write(batch)
    for stage in stages:
        await stage.close()


async def test_rollups_match_exact_aggregates_across_workers_and_periods(storage: str) -> None:
    records = generate(3000, 27 * 3600)
    # late records (long streams, recorded at their arrival) for buckets already evicted
    late = [r._replace(request_id=f"late-{n}") for n, r in enumerate(records[:40])]
    await _feed(storage, [*records, *late], workers=3)
    everything = [*records, *late]
    for period in (60, 3600, 86400):
        assert await _stored(storage, period, 0, None) == _exact(everything, period, None)
        assert await _stored(storage, period, 1, "route") == _exact(everything, period, "route")
        assert (await _stored(storage, period, 4, "consumer")
                == _exact(everything, period, "consumer"))
    # the full rows, summed per route, agree with the route grouping
    full = await _stored(storage, 3600, 63, "route")
    assert full == _exact(everything, 3600, "route")


async def test_merged_latency_histograms_give_exact_percentiles_within_bound(
        storage: str) -> None:
    records = generate(2000, 3 * 3600, seed=3)
    await _feed(storage, records, workers=2)
    engine = create_engine(async_url(storage))
    try:
        async with engine.connect() as conn:
            texts = (await conn.execute(select(rollups.c.latency).where(
                rollups.c.period == 60, rollups.c.dims == 63))).scalars().all()
    finally:
        await engine.dispose()
    merged: h.Histogram = {}
    for text in texts:
        h.decode_into(merged, text)
    values = [r.latency_ms for r in records]
    for q in (0.5, 0.95, 0.99):
        exact = nearest_rank(values, q)
        assert abs((h.percentile(merged, q) or 0) - exact) <= h.RELATIVE_ERROR * exact * 1.000001


async def test_a_failed_write_is_written_again_by_the_next_flush(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/late.db"
    sqlite3.connect(tmp_path / "late.db").close()  # no tables yet: every write fails
    stage = build(SinkEnv(storage=storage, worker_id="w:1:1"))
    assert isinstance(stage, RollupStage)
    records = generate(100, 60)
    await stage.write(records)
    with pytest.raises(sqlite3.OperationalError):
        await stage.flush()
    await (await ConfigStore.open(storage)).close()  # the store comes back
    await stage.close()  # the next flush writes what the failed one could not
    assert (await _stored(storage, 60, 0, None)) == _exact(records, 60, None)
    assert (await _stored(storage, 86400, 1, "route")) == _exact(records, 86400, "route")


def test_cost_is_summed_exactly_in_nano_usd() -> None:
    assert nanousd("0.000000001") == 1
    assert nanousd("12") == 12_000_000_000
    assert nanousd("0.1234567894") == 123_456_789  # half-even past nine decimals
    assert nanousd("1e-6") == 1000
    assert nanousd("not a number") == 0
    state = RollupState()
    state.add(generate(10, 60))
    assert state.pending


def test_a_batch_sums_exactly_as_its_records_one_at_a_time() -> None:
    # a big batch is summed group by group, column by column; one record alone is not
    records = [r._replace(consumer="district-app") for r in generate(3000, 50)]
    assert len({int(r.time) // 60 for r in records}) == 1
    whole, each = RollupState(), RollupState()
    whole.add(records)
    for record in records:
        each.add([record])
    assert whole.take(START).deltas == each.take(START).deltas
