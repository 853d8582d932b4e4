"""The batch writer: drains the record queue into every sink, off the request path.

One asyncio task.  It wakes every ``flush_interval`` (at most 1 s, so a crash loses
at most that much) or as soon as a full batch waits, takes up to ``batch_size``
entries, turns them into :class:`AccessRecord` s (``capture.py``) and gives the batch
to every sink: the sinks run concurrently with each other, but one sink never gets
two writes at once, and batches reach each sink in order.  A sink that raises is
logged once per outage (and once more when it recovers), its records are counted as
failed, and the other sinks go on.  ``close`` drains what is left, then closes
the sinks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from campusgate.observe.queue import Backlog
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import Sink

__all__ = ["BatchWriter", "SinkStats"]

log = logging.getLogger("campusgate.observe")

T = TypeVar("T")


@dataclass(slots=True)
class SinkStats:
    """Counters of one sink (for ``/metrics`` and the admin API)."""

    name: str
    written: int = 0
    failed: int = 0
    #: True while the sink's writes fail (since the first failure of the outage).
    failing: bool = False
    last_error: str | None = None


class BatchWriter(Generic[T]):
    """Drains ``queue`` (entries turned into records by ``build``) into ``sinks``."""

    def __init__(self, queue: Backlog[T], sinks: Sequence[Sink],
                 build: Callable[[list[T]], Sequence[AccessRecord]], *,
                 flush_interval: float = 1.0, batch_size: int = 5000) -> None:
        self.queue = queue
        self.sinks = list(sinks)
        self.build = build
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.stats = [SinkStats(sink.name) for sink in self.sinks]
        #: Batches written, and the wall-clock time of the last flush (0: none yet).
        self.batches = 0
        self.last_flush = 0.0
        #: Records that could not be built (a bug, or a damaged frame: logged).
        self.broken = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        queue.on_full_batch = self._wake.set

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                 name="access-log writer")

    async def _run(self) -> None:
        wake = self._wake
        while not self._closing:
            if len(self.queue) < self.batch_size:
                try:
                    async with asyncio.timeout(self.flush_interval):
                        await wake.wait()
                except TimeoutError:
                    pass
            wake.clear()
            try:
                await self.flush()
            except Exception:  # the edge of a background task: log, keep draining
                log.exception("the access-log writer failed; going on")

    async def flush(self) -> int:
        """Write everything queued now, batch by batch; returns how many records."""
        total = 0
        queue = self.queue
        while len(queue):
            taken = queue.taken
            entries = queue.take(self.batch_size)
            count = queue.taken - taken
            try:
                batch = self.build(entries)
            except Exception:
                self.broken += count
                log.exception("%d access records could not be built", count)
                continue
            self.broken += count - len(batch)  # a build may leave out what it cannot read
            await self.write(batch)
            total += len(batch)
        self.last_flush = time.time()
        return total

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        """Give one batch to every sink (concurrently across sinks)."""
        if not batch:
            return
        sinks = self.sinks
        if len(sinks) == 1:
            await self._write_one(sinks[0], self.stats[0], batch)
        elif sinks:
            await asyncio.gather(*(self._write_one(sink, stats, batch)
                                   for sink, stats in zip(sinks, self.stats, strict=True)))
        self.batches += 1

    @staticmethod
    async def _write_one(sink: Sink, stats: SinkStats, batch: Sequence[AccessRecord]) -> None:
        try:
            await sink.write(batch)
        except Exception as exc:  # one sink down never stops the others
            stats.failed += len(batch)
            stats.last_error = f"{type(exc).__name__}: {exc}"
            if not stats.failing:
                stats.failing = True
                log.error("access-log sink %s failed (%s); its records are dropped "
                          "until it recovers", sink.name, stats.last_error,
                          exc_info=not isinstance(exc, OSError))
            return
        stats.written += len(batch)
        if stats.failing:
            stats.failing = False
            log.warning("access-log sink %s recovered (%d records lost meanwhile)",
                        sink.name, stats.failed)

    async def close(self) -> None:
        """Stop the loop, write everything still queued, close every sink."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            await task
        await self.flush()
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:  # shutting down: note it, close the others
                log.exception("access-log sink %s failed to close", sink.name)

    def counters(self) -> dict[str, Any]:
        """Everything countable, for metrics and the admin API."""
        queue = self.queue
        return {
            "depth": queue.depth, "capacity": queue.size, "dropped": queue.dropped,
            "accepted": queue.accepted, "broken": self.broken, "batches": self.batches,
            "last_flush": self.last_flush,
            "sinks": {s.name: {"written": s.written, "failed": s.failed,
                               "failing": s.failing, "last_error": s.last_error}
                      for s in self.stats},
        }
