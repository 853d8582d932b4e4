"""Access records for the observe tests: one plausible request, varied by keyword."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from campusgate.config.observe_sinks import StoreSink
from campusgate.observe import segments
from campusgate.observe.record import FIELDS, AccessRecord
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.store import build

BASE = AccessRecord(
    time=1_700_000_000.0, request_id="req-0", trace_id="0" * 31 + "1", span_id="0" * 15 + "2",
    parent_span_id=None, listener="proxy", worker=1234, route="roster-api", service="roster",
    upstream="127.0.0.1:9000", consumer="district-app", credential="cred-1",
    client_ip="10.0.0.5", method="GET", host="gw.example.edu", path="/roster/users",
    status=200, bytes_in=0, bytes_out=512, latency_ms=12.5, upstream_latency_ms=11.0,
    overhead_ms=1.5, retries=0, rate_limit="allowed", error=None, user_agent="curl/8.0",
)


def sample(**changes: Any) -> AccessRecord:
    return BASE._replace(**changes)


def series(count: int, start: float = 1_700_000_000.0, step: float = 1.0,
           **changes: Any) -> list[AccessRecord]:
    """``count`` records ``step`` seconds apart, request ids ``req-<i>``."""
    return [sample(time=start + i * step, request_id=f"req-{i}", **changes)
            for i in range(count)]


async def write_segments(storage: str, batches: Sequence[Sequence[AccessRecord]]) -> None:
    """Each batch as one segment, through the store sink."""
    sink = build(StoreSink(), SinkEnv(storage, "w"))
    try:
        for batch in batches:
            await sink.write(batch)
    finally:
        await sink.close()


def stored_records(db: Path) -> list[dict[str, Any]]:
    """Every record in the access segments of the SQLite file ``db``, as field dicts."""
    conn = sqlite3.connect(db)
    try:
        bodies = [row[0] for row in conn.execute("SELECT body FROM access_segments")]
    finally:
        conn.close()
    return [dict(zip(FIELDS, values, strict=True))
            for body in bodies for values in segments.decode(body)]
