"""The ``roster-import`` baseline: the bundle's rows inserted with bare SQLAlchemy Core.

``python -m cgbench.roster_baseline --bundle district.zip --storage <sqlite file |
postgresql:// URL>`` reads the bundle and turns it into the very rows campusgate
stores (untimed), creates the roster tables in the empty database, then times one
transaction of one ``executemany`` INSERT per table -- no checking, no matching
against stored rows, no accounts.  It uses campusgate's engine setup (the same
drivers, aiosqlite or asyncpg, and the same SQLite WAL and synchronous settings), so
the ratio is what campusgate's import does beyond writing the rows.  Prints one JSON
object: ``seconds`` and ``rows``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from campusgate.identity.roster import rows
from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine, enable_sqlite_wal
from campusgate.store.tables import metadata, roster_tenants


def _url(storage: str) -> str:
    return storage if storage.startswith("postgresql") else f"sqlite:///{storage}"


async def insert_all(storage: str, data: bytes) -> dict[str, Any]:
    bundle = read_bundle(data)
    stamp = datetime.now(UTC)
    tables = [kind.table for kind in rows.KINDS]
    by_kind = [(kind.table, [rows.values(r, 1, stamp) for r in bundle.records[kind.name]])
               for kind in rows.KINDS if kind.name in bundle.records]
    url = async_url(_url(storage))
    if url.get_backend_name() == "sqlite" and url.database:
        await enable_sqlite_wal(Path(url.database))
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all, tables=[roster_tenants, *tables])
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(insert(roster_tenants).values(
                id=1, name="bench", created_at=stamp, updated_at=stamp))
            for table, values in by_kind:
                await conn.execute(insert(table), values)
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {"seconds": seconds, "rows": sum(len(v) for _, v in by_kind)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(insert_all(args.storage, args.bundle.read_bytes()))))


if __name__ == "__main__":
    main()
