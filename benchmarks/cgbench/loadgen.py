"""An open-loop, fixed-rate HTTP/1.1 load generator (Debian has wrk but not wrk2).

``python -m cgbench.loadgen --port P --rate 1000 --duration 10`` sends GET requests
at a fixed schedule (request ``i`` is due at ``start + i / rate``) over a pool of
keep-alive connections, whatever the server's speed, and prints one JSON object:
percentiles of the *service time* (request written -> response complete) and of the
*total time* (request due -> response complete; it includes waiting for a free
connection, so a server that falls behind shows up in it rather than being hidden —
the "coordinated omission" wrk has).  Timestamps are ``time.perf_counter`` taken
inside the protocol callbacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
import uvloop

__all__ = ["Driven", "KeepAliveConnection", "drive", "percentile", "run_fixed_rate",
           "summarize"]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``pct`` in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max of durations given in seconds, as milliseconds."""
    ordered = sorted(values_s)
    out = {f"p{str(p).replace('.', '_')}_ms": round(percentile(ordered, p) * 1000, 4)
           for p in (50, 90, 99, 99.9)}
    out["max_ms"] = round(ordered[-1] * 1000, 4)
    return out


class KeepAliveConnection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time.  ``request``
    gives (status, sent_at, finished_at); subclasses may tell more."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[tuple[int, float]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_message_complete(self) -> None:
        finished = time.perf_counter()
        if self.done is not None and not self.done.done():
            self.done.set_result((self.parser.get_status_code(), finished))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(exc or ConnectionResetError("connection closed"))

    def _fail(self, exc: BaseException) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)

    async def request(self, raw: bytes) -> tuple[Any, ...]:
        """Send ``raw``; return (status, sent_at, finished_at)."""
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        sent = time.perf_counter()
        self.transport.write(raw)
        status, finished = await self.done
        return status, sent, finished


@dataclass
class Driven:
    """What :func:`drive` measured: the answers due after the warm-up, with their due
    time, and the requests that failed on the socket."""

    answers: list[tuple[float, tuple[Any, ...]]] = field(default_factory=list)
    socket_errors: int = 0
    measure_from: float = 0.0


async def drive(port: int, raw: bytes, factory: Callable[[], KeepAliveConnection], *, rate: float,
                duration: float, warmup: float, connections: int) -> Driven:
    """Send ``raw`` to 127.0.0.1:port at a fixed schedule (request ``i`` due at
    ``start + i / rate``) over ``connections`` keep-alive connections made by
    ``factory``, one request in flight on each, for ``warmup + duration`` seconds."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    out = Driven()

    async def worker() -> None:
        conn: KeepAliveConnection | None = None
        while (due := await queue.get()) is not None:
            try:
                if conn is None or conn.lost:
                    _, conn = await loop.create_connection(factory, "127.0.0.1", port)
                answer = await conn.request(raw)
            except OSError:
                out.socket_errors += 1
                conn = None
                continue
            if due >= out.measure_from:
                out.answers.append((due, answer))
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.05
    out.measure_from = start + warmup
    for i in range(int((warmup + duration) * rate)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return out


async def run_fixed_rate(port: int, rate: float, duration: float, *, path: str = "/",
                         connections: int = 16, warmup: float = 2.0) -> dict[str, object]:
    """Drive 127.0.0.1:port at ``rate`` req/s for ``warmup + duration`` seconds."""
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    driven = await drive(port, raw, KeepAliveConnection, rate=rate, duration=duration,
                         warmup=warmup, connections=connections)
    elapsed = time.perf_counter() - driven.measure_from
    service = [finished - sent for _, (_, sent, finished) in driven.answers]
    total = [finished - due for due, (_, _, finished) in driven.answers]
    return {
        "rate_target": rate,
        "requests": len(service),
        "rate_achieved": round(len(service) / elapsed, 1) if elapsed > 0 else 0.0,
        "connections": connections,
        "service": summarize(service) if service else {},
        "total": summarize(total) if total else {},
        "non_2xx": sum(1 for _, a in driven.answers if not 200 <= a[0] < 300),
        "socket_errors": driven.socket_errors,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--path", default="/")
    args = parser.parse_args(argv)
    result = uvloop.run(run_fixed_rate(args.port, args.rate, args.duration, path=args.path,
                                       connections=args.connections, warmup=args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
