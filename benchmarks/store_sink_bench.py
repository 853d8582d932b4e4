"""Micro-benchmark of the store sink: records/s and CPU per record, SQLite and
PostgreSQL, for a few batch sizes (the writer flushes up to 5,000 records a second).

    .venv/bin/python benchmarks/store_sink_bench.py [--records 100000] [--pg DSN]

CPU is this process's (``time.process_time``: the event loop plus the sink's thread,
which encodes the segment); PostgreSQL's own server CPU is not in it (see the
wall-clock rate).  The records are like the gateway's: ids from ``new_request_id``
(located by range, no ``access_request_ids`` row), ten consumers, four routes.  The
``encode`` line is :func:`campusgate.observe.segments.encode` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import tempfile
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe import segments
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.store import build
from campusgate.store import ConfigStore

BATCHES = (1000, 5000)
BASE = AccessRecord(
    time=1_700_000_000.0, request_id="", trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    span_id="00f067aa0ba902b7", parent_span_id=None, listener="proxy", worker=1234,
    route="roster-api", service="roster", upstream="127.0.0.1:9000", consumer="district-app",
    credential="cred-1", client_ip="10.0.0.5", method="GET", host="gw.example.edu",
    path="/roster/users/123", status=200, bytes_in=0, bytes_out=512, latency_ms=12.5,
    upstream_latency_ms=11.0, overhead_ms=1.5, retries=0, rate_limit="allowed", error=None,
    user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
)


def records(count: int) -> list[AccessRecord]:
    """``count`` records, 5,000 a second, with gateway-made ids and measured latencies."""
    start = time.time()
    made = []
    for i in range(count):
        moment = start + i / 5000
        upstream = random.uniform(1, 30)
        request_id = f"{int(moment * 1000):012x}{random.getrandbits(80):020x}"
        made.append(BASE._replace(
            time=moment, request_id=request_id,
            trace_id=secrets.token_hex(16), span_id=secrets.token_hex(8),
            consumer=f"app-{i % 10}", route=f"route-{i % 4}", path=f"/roster/users/{i}",
            status=200 if i % 50 else 404, latency_ms=upstream + 0.4,
            upstream_latency_ms=upstream, overhead_ms=0.4 + random.random() / 10))
    return made


def encode_cpu(batch: list[AccessRecord], size: int) -> float:
    """CPU microseconds per record of encoding ``batch`` in segments of ``size``."""
    cpu = time.process_time()
    for start in range(0, len(batch), size):
        segments.encode(batch[start:start + size])
    return (time.process_time() - cpu) / len(batch) * 1e6


async def measure(dsn: str, batch: list[AccessRecord], size: int) -> tuple[float, float]:
    """(records per second, CPU microseconds per record)."""
    sink = build(StoreSink(), SinkEnv(dsn, "bench"))
    await sink.write(batch[:size])  # connect, warm up
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(size, len(batch), size):
        await sink.write(batch[start:start + size])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await sink.close()
    written = len(batch) - size
    return written / wall, cpu / written * 1e6


async def fresh(kind: str, work: Path, pg: str, tag: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        dsn = f"sqlite:///{work}/{tag}.db"
        await (await ConfigStore.open(dsn)).close()
        return dsn, None
    name = f"cg_sinkbench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = f"{pg.rsplit('/', 1)[0]}/{name}"
    await (await ConfigStore.open(dsn)).close()
    return dsn, name


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'backend':<11} {'batch':>6} {'records/s':>10} {'CPU us/rec':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in BATCHES:
            batch = records(args.records + size)
            print(f"{'encode':<11} {size:>6} {'':>10} {encode_cpu(batch, size):>11.2f}")
            for kind in args.backends.split(","):
                dsn, created = await fresh(kind, Path(tmp), args.pg, f"b{size}")
                try:
                    rate, cpu = await measure(dsn, batch, size)
                finally:
                    if created:
                        admin = await asyncpg.connect(args.pg)
                        await admin.execute(f'DROP DATABASE "{created}" WITH (FORCE)')
                        await admin.close()
                print(f"{kind:<11} {size:>6} {rate:>10,.0f} {cpu:>11.2f}")


if __name__ == "__main__":
    asyncio.run(main())
