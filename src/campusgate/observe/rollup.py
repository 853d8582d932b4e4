"""The roll-ups stage: the batch writer feeds it every batch, like a sink; it keeps
per-minute, hourly and daily sums in memory (:mod:`~campusgate.observe.rollup_state`)
and upserts the changed rows into ``rollups`` (:mod:`~campusgate.observe.rollup_store`).

Records are summed as each batch comes; the store is written at most once per
``flush_interval`` (1 s) -- under load the writer hands over many batches a second,
and one upsert of the changed rows serves them all -- and at the latest
``flush_interval`` after the last batch (a timer), and at :meth:`RollupStage.close`.
So a crash loses at most about a second of roll-ups, like the records themselves.  A
failed write keeps the rows changed in memory: the next flush writes them again
(cumulative values, so a repeat is harmless).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from campusgate.observe.record import AccessRecord
from campusgate.observe.rollup_state import RollupState
from campusgate.observe.rollup_store import RollupStore, open_rollup_store
from campusgate.observe.sinks.base import Sink, SinkEnv

__all__ = ["RollupStage", "build"]

log = logging.getLogger(__name__)


class RollupStage:
    """A :class:`~campusgate.observe.sinks.base.Sink` that writes roll-ups."""

    name = "rollups"

    def __init__(self, store: RollupStore, worker_id: str, *, flush_interval: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.state = RollupState()
        self._store = store
        self._worker_id = worker_id
        self._interval = flush_interval
        self._clock = clock
        self._last_flush = clock()
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._timed: asyncio.Task[None] | None = None
        self._failing = False

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        self.state.add(batch)
        if self._clock() - self._last_flush < self._interval:
            self._arm()
            return
        try:
            await self.flush()
        except Exception:
            self._arm()  # retried by the timer even when no batch follows
            raise

    async def flush(self) -> None:
        """Write every changed row now (raises what the store raised)."""
        async with self._lock:
            self._last_flush = self._clock()
            if not self.state.pending:
                return
            take = self.state.take(self._last_flush)
            try:
                stored = (await self._store.load(take.missing, self._worker_id)
                          if take.missing else {})
            except BaseException:
                self.state.give_back(take)
                raise
            self.state.commit(take, stored)
            await self._store.upsert(self.state.changed_rows(self._worker_id))
            self.state.written()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._timed is not None:
            await asyncio.gather(self._timed, return_exceptions=True)
        try:
            await self.flush()
        finally:
            await self._store.close()

    def _arm(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._interval - (self._clock() - self._last_flush))
        self._timer = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timed = asyncio.get_running_loop().create_task(self._timed_flush())

    async def _timed_flush(self) -> None:
        try:
            await self.flush()
        except Exception:  # a background task's edge: log once per outage, retry later
            if not self._failing:
                log.exception("writing roll-ups failed; retrying every %.0f s", self._interval)
            self._failing = True
            self._arm()
        else:
            if self._failing:
                log.warning("writing roll-ups works again")
            self._failing = False


def build(env: SinkEnv) -> Sink:
    """The roll-ups stage for this worker's store."""
    return RollupStage(open_rollup_store(env.storage), env.worker_id)
