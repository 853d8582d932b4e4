"""A worker's side of the log-writer process: ship records to it, in frames.

A finished request's row goes into the bounded queue: packed by C as it is made
(``packed.PackedQueue``), or, without the compiled packer, as a flat tuple of plain
values (``Capture.row``) in a :class:`RowQueue`.  The :class:`Shipper` task wakes
every ``interval`` (200 ms) or as soon as a full batch waits and writes what waits
to the writer's Unix socket, one frame per batch:

    frame = length (4 bytes, big-endian) + a packed chunk of rows
    frame = length (4 bytes, big-endian) + marshal.dumps([row, row, ...])

While the writer cannot be reached (it is starting, or restarting after a crash)
the shipper takes nothing: records wait in the bounded queue, whose oldest are
dropped (and counted) when it is full, and it reconnects with a backoff.  A frame
that was being written when the connection broke is lost (counted): with the
200 ms cadence a crash of the writer loses at most that much and its own last
second.  ``marshal`` reads only what a process of the same user wrote: the socket
lives in a directory only that user may enter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import time
from typing import Any, Protocol

from campusgate.observe.capture import Row
from campusgate.observe.queue import Bounded, RecordQueue

__all__ = ["FRAME_BYTES", "MAX_FRAME", "SHIP_INTERVAL", "RowQueue", "ShipQueue", "Shipper",
           "encode_frame"]

log = logging.getLogger("campusgate.observe")

#: The longest frame the writer accepts (a batch of 100,000 records of 600 bytes).
MAX_FRAME = 64 << 20
#: A worker's frames are cut at this many bytes (or ``batch_size`` records): well
#: under :data:`MAX_FRAME`, with room for a last record of two 1 MiB captured bodies
#: (``log-bodies``), which would otherwise make frames the writer refuses.
FRAME_BYTES = 8 << 20
#: A worker ships at least this often (seconds).
SHIP_INTERVAL = 0.2
#: Reconnection backoff: first wait, longest wait (seconds).
BACKOFF = (0.02, 1.0)
#: An outage shorter than this (the writer starting) is not logged.
QUIET_OUTAGE = 3.0
#: How long a shipper that shipped everything waits for its connection to close.
CLOSE_WAIT = 2.0


def encode_frame(rows: list[Row]) -> tuple[bytes, int]:
    """``rows`` as one frame, and how many rows could not be encoded (a value
    marshal does not know, which would be a bug of capture: they are left out)."""
    try:
        data = marshal.dumps(rows)
    except ValueError:
        kept = []
        for row in rows:
            try:
                marshal.dumps(row)
            except ValueError:
                continue
            kept.append(row)
        data = marshal.dumps(kept)
        bad = len(rows) - len(kept)
        log.error("%d access records held values that cannot be shipped", bad)
        return len(data).to_bytes(4, "big") + data, bad
    return len(data).to_bytes(4, "big") + data, 0


class ShipQueue(Bounded, Protocol):
    """What the shipper drains: a bounded queue that hands out frames."""

    def take_frame(self, limit: int) -> tuple[bytes, int, int]:
        """Up to ``limit`` of the oldest records as one frame, how many are in it,
        and how many were left out (values that cannot be shipped)."""
        ...


class RowQueue(RecordQueue[Row]):
    """Rows as tuples (``Capture.row``), shipped with :mod:`marshal`: the path
    without the compiled row packer."""

    def take_frame(self, limit: int) -> tuple[bytes, int, int]:
        """Up to ``limit`` rows as one frame: fewer when they make more than
        :data:`FRAME_BYTES` (the rest go back to the front of the queue)."""
        entries = self.take(limit)
        frame, bad = encode_frame(entries)
        while len(frame) > FRAME_BYTES and len(entries) > 1:
            keep = len(entries) // 2
            rest = entries[keep:]
            self.items.extendleft(reversed(rest))  # there is room: they were just taken
            self.taken -= len(rest)
            entries = entries[:keep]
            frame, bad = encode_frame(entries)
        return frame, len(entries) - bad, bad


class Shipper:
    """Drains ``queue`` to the writer at ``path``."""

    def __init__(self, queue: ShipQueue, path: str, *, batch_size: int = 5000,
                 interval: float = SHIP_INTERVAL) -> None:
        self.queue = queue
        self.path = path
        self.batch_size = batch_size
        self.interval = interval
        #: Records and frames written to the writer; records lost (a broken
        #: connection mid-frame, or at shutdown with no writer); records not encodable.
        self.shipped = 0
        self.frames = 0
        self.lost = 0
        self.broken = 0
        self._stream: asyncio.StreamWriter | None = None
        #: The connection's read side: the writer never sends, so EOF means it went.
        self._gone: asyncio.StreamReader | None = None
        self._retry_at = 0.0
        self._backoff = BACKOFF[0]
        self._down_since: float | None = None
        self._logged = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        queue.on_full_batch = self._wake.set

    @property
    def connected(self) -> bool:
        return self._stream is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                 name="access-log shipper")

    async def _run(self) -> None:
        wake = self._wake
        while not self._closing:
            pause = self._pause()
            if pause > 0:
                try:
                    async with asyncio.timeout(pause):
                        await wake.wait()
                except TimeoutError:
                    pass
            wake.clear()
            try:
                await self.ship()
            except Exception:  # the edge of a background task: log, keep shipping
                log.exception("the access-log shipper failed; going on")

    def _pause(self) -> float:
        """How long to wait before shipping: the interval, unless a full batch
        waits; and while the writer cannot be reached, until the next try however
        many records wait (shipping would return at once: without the wait the loop
        would never let the worker serve)."""
        pause = 0.0 if len(self.queue) >= self.batch_size else self.interval
        if self._stream is None:
            pause = max(pause, self._retry_at - time.monotonic())
        return pause

    async def _connect(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False
        try:
            gone, stream = await asyncio.open_unix_connection(self.path)
        except OSError as exc:
            self._failed(now, exc)
            return False
        self._stream, self._gone = stream, gone
        self._backoff = BACKOFF[0]
        if self._logged:
            log.warning("the log writer is reachable again at %s", self.path)
        self._down_since, self._logged = None, False
        return True

    def _failed(self, now: float, exc: BaseException) -> None:
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF[1])
        if self._down_since is None:
            self._down_since = now
        if not self._logged and now - self._down_since >= QUIET_OUTAGE:
            self._logged = True
            log.error("cannot reach the log writer at %s (%s); records wait in the "
                      "queue (%d of %d)", self.path, exc, len(self.queue), self.queue.size)

    async def ship(self) -> int:
        """Write everything queued now to the writer (nothing if it cannot be
        reached); returns how many records."""
        total = 0
        queue = self.queue
        while len(queue):
            if self._stream is not None and self._writer_went():
                self._drop_stream()
            if self._stream is None and not await self._connect():
                break
            stream = self._stream
            assert stream is not None
            frame, sent, bad = queue.take_frame(self.batch_size)
            self.broken += bad
            try:
                stream.write(frame)
                await stream.drain()
            except (OSError, RuntimeError) as exc:  # the writer went away mid-frame
                self.lost += sent
                self._drop_stream()
                self._failed(time.monotonic(), exc)
                break
            except asyncio.CancelledError:  # close() gave up on a writer not reading
                self.lost += sent
                raise
            self.shipped += sent
            self.frames += 1
            total += sent
        return total

    def _writer_went(self) -> bool:
        """The writer closed the connection (it exited, or was killed): seen before
        a frame is written into it and lost."""
        gone, stream = self._gone, self._stream
        return (gone is not None and gone.at_eof()) or (
            stream is not None and stream.is_closing())

    def _drop_stream(self, abort: bool = False) -> None:
        """Let the connection go (``abort``: at once, unsent frames and all; a close
        waits for them to be written)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            if abort:
                stream.transport.abort()
            else:
                stream.close()

    async def close(self, deadline: float = 10.0) -> None:
        """Stop the loop and ship everything still queued, then disconnect: within
        ``deadline`` seconds in all, whether the writer is restarting or alive but not
        reading (stopped, hung); what is not shipped by then is counted lost."""
        self._closing = True
        task, self._task = self._task, None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + deadline):
                if task is not None:
                    self._wake.set()
                    await task
                while True:
                    await self.ship()
                    if not len(self.queue):
                        break
                    await asyncio.sleep(max(0.0, self._retry_at - time.monotonic()))
        except TimeoutError:
            log.error("the log writer at %s took no more records for %.0f s; giving up",
                      self.path, deadline)
            self._drop_stream(abort=True)
        left = 0
        while len(self.queue):
            _, sent, bad = self.queue.take_frame(len(self.queue))
            left += sent
            self.broken += bad
        if left:
            self.lost += left
            log.error("%d access records were lost: the log writer at %s could not be "
                      "reached", left, self.path)
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
            with contextlib.suppress(OSError, TimeoutError):  # the writer already went
                async with asyncio.timeout(CLOSE_WAIT):
                    await stream.wait_closed()

    def counters(self) -> dict[str, Any]:
        queue = self.queue
        return {
            "depth": queue.depth, "capacity": queue.size, "dropped": queue.dropped,
            "accepted": queue.accepted, "broken": self.broken, "shipped": self.shipped,
            "frames": self.frames, "lost": self.lost, "connected": self.connected,
            "sinks": {},
        }
