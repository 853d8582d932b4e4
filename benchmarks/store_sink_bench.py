"""Micro-benchmark of the store sink: records/s and CPU per record, SQLite and
PostgreSQL, with every index of ``access_records`` and with each one dropped.

    .venv/bin/python benchmarks/store_sink_bench.py [--records 100000] [--pg DSN]

CPU is this process's (``time.process_time``: the event loop plus the SQLite sink's
thread); PostgreSQL's own server CPU is not in it (see the wall-clock rate).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sqlite3
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.store import build
from campusgate.store import ConfigStore
from campusgate.store.access_tables import access_records

BATCH = 5000
INDEXES = [ix.name for ix in access_records.indexes]
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
    return [replace(BASE, time=BASE.time + i / 1000, request_id=secrets.token_hex(8),
                    consumer=f"app-{i % 50}", route=f"route-{i % 20}")
            for i in range(count)]


async def drop(dsn: str, names: list[str]) -> None:
    if dsn.startswith("sqlite"):
        conn = sqlite3.connect(dsn.removeprefix("sqlite:///"))
        for name in names:
            conn.execute(f"DROP INDEX {name}")
        conn.close()
        return
    pg = await asyncpg.connect(dsn)
    for name in names:
        await pg.execute(f"DROP INDEX {name}")
    await pg.close()


async def measure(dsn: str, batch: list[AccessRecord]) -> tuple[float, float]:
    """(records per second, CPU microseconds per record)."""
    sink = build(StoreSink(), SinkEnv(dsn, "bench"))
    await sink.write(batch[:BATCH])  # connect, warm up
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(BATCH, len(batch), BATCH):
        await sink.write(batch[start:start + BATCH])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await sink.close()
    written = len(batch) - BATCH
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
    batch = records(args.records + BATCH)
    variants = [("all indexes", []), ("no index", INDEXES)] + [
        (f"without {name}", [name]) for name in INDEXES]
    print(f"{'backend':<11} {'indexes':<44} {'records/s':>10} {'CPU us/rec':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.backends.split(","):
            for i, (label, dropped) in enumerate(variants):
                dsn, created = await fresh(kind, Path(tmp), args.pg, f"v{i}")
                try:
                    await drop(dsn, dropped)
                    rate, cpu = await measure(dsn, batch)
                finally:
                    if created:
                        admin = await asyncpg.connect(args.pg)
                        await admin.execute(f'DROP DATABASE "{created}" WITH (FORCE)')
                        await admin.close()
                print(f"{kind:<11} {label:<44} {rate:>10,.0f} {cpu:>11.2f}")


if __name__ == "__main__":
    asyncio.run(main())
