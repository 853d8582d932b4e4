"""Helpers of the alert tests (tests/observe/test_alerts.py, tests/admin/
test_admin_alerts.py): a real local webhook receiver and generated roll-ups."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from campusgate.observe.record import AccessRecord
from campusgate.observe.rollup import RollupStage
from campusgate.observe.rollup_store import open_rollup_store

DAY = 86400
#: A UTC noon, minute-aligned: "now" of the generated traffic.
NOON = 1_700_000_000 - 1_700_000_000 % DAY + 12 * 3600

BASE = AccessRecord(
    time=0.0, request_id="r", trace_id="0" * 32, span_id="0" * 16, parent_span_id=None,
    listener="proxy", worker=1, route="roster", service="roster", upstream="10.0.0.1:80",
    consumer=None, credential=None, client_ip="127.0.0.1", method="GET", host="h", path="/",
    status=200, bytes_in=0, bytes_out=100, latency_ms=50.0, upstream_latency_ms=45.0,
    overhead_ms=5.0, retries=0, rate_limit=None, error=None)


def window(start: float, seconds: float, *, per_minute: int = 6, route: str = "roster",
           latency: float = 50.0, status: int = 200, every_error: int = 0,
           upstream: str = "10.0.0.1:80") -> list[AccessRecord]:
    """``per_minute`` requests a minute over ``[start, start + seconds)``; with
    ``every_error`` n, every n-th one is a 502."""
    count = int(seconds / 60 * per_minute)
    step = seconds / count
    return [BASE._replace(time=start + n * step, request_id=f"{route}-{start}-{n}", route=route,
                    service=route, upstream=upstream,
                    latency_ms=latency * (0.9 + 0.2 * (n % 5) / 4),
                    upstream_latency_ms=latency * 0.9,
                    status=502 if every_error and n % every_error == 0 else status,
                    error="upstream_timeout" if every_error and n % every_error == 0 else None)
            for n in range(count)]


async def write_rollups(storage: str, records: Iterable[AccessRecord]) -> None:
    """Sum ``records`` into ``rollups`` as one worker would."""
    stage = RollupStage(open_rollup_store(storage), "test:1:1")
    await stage.write(sorted(records, key=lambda r: r.time))
    await stage.close()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    queue: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    #: Statuses to answer, in order; 200 once empty.
    script: list[int] = field(default_factory=list)

    async def next(self) -> Received:
        """The next delivery (a test failing to get one fails on pytest's timeout)."""
        return await self.queue.get()


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    """An HTTP/1.1 server on 127.0.0.1 taking JSON POSTs (keep-alive)."""
    box: list[Receiver] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                me = box[0]
                status = me.script.pop(0) if me.script else 200
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 0\r\n\r\n" % status)
                await writer.drain()
                if status < 300:
                    me.queue.put_nowait(Received(path, headers, json.loads(body)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    box.append(Receiver(f"http://127.0.0.1:{port}"))
    try:
        yield box[0]
    finally:
        server.close()
        await server.wait_closed()
