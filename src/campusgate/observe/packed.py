"""A worker's access records packed in C, as they are made (``_rowpack.c``).

When the log writer is a process of its own, a worker only ships its records.  The
C row packer (:class:`_rowpack.Packer`) writes each finished request's row -- the
same values as :meth:`Capture.row <campusgate.observe.capture.Capture.row>` -- into
a buffer: no tuple is built, nothing is marshalled, nothing outlives the request's
context.  :class:`PackedQueue` is the bounded queue of those chunks; the shipper
sends each as one frame.  The log writer queues the frames as they came
(:class:`ChunkQueue`) and finishes a batch of chunks straight into the record
columns the sinks read (:func:`finish_entries`: ``_rowpack.finish``, the same values
as ``capture.finish_rows`` over the rows).  Without the compiled module (no C
compiler at install, or ``CAMPUSGATE_NO_EXTENSIONS=1``) the worker queues tuples and
ships them with :mod:`marshal`, as before, and the writer finishes rows.  See
``docs/observability.md``, "Rows packed in C".
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Generic, TypeVar

from campusgate.observe._ship import FRAME_BYTES
from campusgate.observe._speedups import speedups
from campusgate.observe.batch import RecordBatch
from campusgate.observe.capture import Capture, add_extras, finish_rows, trace_of
from campusgate.observe.tracing import Trace
from campusgate.proxy.context import RequestContext

if TYPE_CHECKING:
    from campusgate.observe._rowpack import Packer
    from campusgate.observe.capture import Row

__all__ = ["MAGIC", "ChunkQueue", "Entry", "PackedQueue", "chunk_rows", "finish_chunks",
           "finish_entries", "unpack_rows"]

log = logging.getLogger("campusgate.observe")

T = TypeVar("T")

#: What the log writer queues of a frame: a packed chunk, or marshalled rows.
Entry = bytes | list["Row"]

#: The most bytes of frames a queue of them holds (a worker's, the log writer's);
#: past it the oldest are dropped.
QUEUE_BYTES = 256 << 20
#: What a packed chunk starts with (a marshal frame never starts with a zero byte).
MAGIC = b"\x00CGR"
#: The chunk's head: MAGIC, version, fields per row, rows (u32, native order).
_HEAD = 10
_VERSION, _FIELDS = 1, 30


_MODULE = speedups()  # the writer's reading side: unless not built or turned off


def chunk_rows(data: bytes) -> int:
    """How many rows a packed chunk holds, from its head (ValueError when it is
    not a chunk of this version).  Its rows are read when its batch is finished."""
    if (len(data) < _HEAD or not data.startswith(MAGIC) or data[4] != _VERSION
            or data[5] != _FIELDS):
        raise ValueError("not a chunk of rows of this version")
    return int.from_bytes(data[6:_HEAD], sys.byteorder)


def unpack_rows(data: bytes) -> list[Row]:
    """The rows of a packed chunk (ValueError when it is malformed, or when this
    install has no row packer to read it)."""
    if _MODULE is None:
        raise ValueError("a packed chunk, and the row packer is not built here")
    rows: list[Row] = _MODULE.unpack(data)
    return rows


class ChunkQueue(Generic[T]):
    """A bounded queue of entries that each hold several records (the log
    writer's frames as they came, packed chunks or lists of rows; a worker's
    packed chunks), counted in records and in bytes.  Nothing waits: past ``size``
    records or ``max_bytes`` bytes the oldest entries are dropped and counted (the
    newest entry is always kept); ``on_full_batch`` is called when ``wake_at``
    records come to wait."""

    def __init__(self, size: int, wake_at: int | None = None, *,
                 max_bytes: int = QUEUE_BYTES) -> None:
        if size < 1:
            raise ValueError("the queue size must be at least 1")
        self.size = size
        self.max_bytes = max_bytes
        #: (entry, records, bytes), oldest first.
        self.items: deque[tuple[T, int, int]] = deque()
        self.held = 0
        self.held_bytes = 0
        self.dropped = 0
        self.taken = 0
        self.on_full_batch: Callable[[], None] | None = None
        self._wake_at = size if wake_at is None else min(max(1, wake_at), size)

    def __len__(self) -> int:
        return self.held

    @property
    def depth(self) -> int:
        return self.held

    @property
    def accepted(self) -> int:
        return self.taken + self.held + self.dropped

    def put(self, entry: T, count: int, size: int = 0) -> None:
        """Queue a frame's ``count`` records, ``size`` bytes."""
        before = self.held
        items = self.items
        items.append((entry, count, size))
        self.held += count
        self.held_bytes += size
        while (self.held > self.size or self.held_bytes > self.max_bytes) and len(items) > 1:
            _, lost, lost_bytes = items.popleft()
            self.held -= lost
            self.held_bytes -= lost_bytes
            self.dropped += lost
        if before < self._wake_at <= self.held and self.on_full_batch is not None:
            self.on_full_batch()

    def take(self, limit: int) -> list[T]:
        """The oldest entries holding up to ``limit`` records (at least one entry)."""
        items = self.items
        taken: list[T] = []
        count = size = 0
        while items and (not taken or count + items[0][1] <= limit):
            entry, rows, nbytes = items.popleft()
            taken.append(entry)
            count += rows
            size += nbytes
        self.held -= count
        self.held_bytes -= size
        self.taken += count
        return taken


class PackedQueue(ChunkQueue[bytes]):
    """The bounded queue of one worker's packed records: the chunks the packer
    filled (a :class:`ChunkQueue`: past ``size`` records the oldest chunk is
    dropped and counted, a full chunk wakes the shipper) and the chunk it is
    filling, ``chunk`` rows or :data:`FRAME_BYTES` at most.  The chunks it holds
    are bounded in bytes too (:data:`QUEUE_BYTES`): records with captured bodies
    (``log-bodies``, up to 1 MiB each) would otherwise make frames the log writer
    refuses (over ``MAX_FRAME``: all their records lost) and a queue of gigabytes.
    Nothing ever waits."""

    def __init__(self, size: int, chunk: int, capture: Capture,
                 module: ModuleType, *, frame_bytes: int = FRAME_BYTES,
                 queue_bytes: int = QUEUE_BYTES) -> None:
        super().__init__(size, chunk, max_bytes=queue_bytes)
        self._reported = 0
        self.packer: Packer = module.Packer(
            RequestContext, Trace, capture.offset, capture.listener, capture.worker,
            min(chunk, size), self._cut, trace_of, frame_bytes)
        #: What the log phase calls with each finished request.
        self.record: Callable[[RequestContext], None] = self.packer.record

    def __len__(self) -> int:
        return self.held + self.packer.count

    @property
    def depth(self) -> int:
        return len(self)

    @property
    def accepted(self) -> int:
        """Records ever given to :attr:`record` (those it could not pack included)."""
        return self.taken + len(self) + self.dropped + self.packer.broken

    def _cut(self) -> None:
        """The packer's chunk is full: queue it (as the frame it is shipped in)."""
        frame, count = self.packer.cut()
        self.put(frame, count, len(frame))

    def take_frame(self, limit: int) -> tuple[bytes, int, int]:
        """The oldest chunk (the one being filled when none is full) as one frame
        (length prefix and chunk: the packer writes both, so the frame is not copied
        again), its records, and how many records could not be packed since the
        last call.  ``limit`` is the shipper's batch size, which a chunk never
        exceeds."""
        if not self.items:
            self._cut()
        taken = self.taken
        frame = self.take(1)[0]
        broken = self.packer.broken
        bad, self._reported = broken - self._reported, broken
        return frame, self.taken - taken, bad


def finish_entries(entries: list[Entry], names: dict[str, str] | None = None) -> RecordBatch:
    """The records of a batch of the log writer's entries, as columns: packed
    chunks finished in C (``_rowpack.finish``), rows by ``capture.finish_rows``.
    A chunk that cannot be read (damaged) is left out and logged, not the batch:
    the writer counts what is missing as broken.  ``names``: the writer's
    canonical strings (see :func:`finish_chunks`), kept from batch to batch."""
    chunks = [entry for entry in entries if isinstance(entry, bytes)]
    if _MODULE is not None and len(chunks) == len(entries):
        try:
            return finish_chunks(chunks, names)
        except (ValueError, TypeError, EOFError) as exc:
            log.error("a batch of access records holds a damaged chunk (%s); finishing "
                      "its chunks one by one", exc)
    rows: list[Row] = []
    for entry in entries:
        if not isinstance(entry, bytes):
            rows.extend(entry)
            continue
        try:
            rows.extend(unpack_rows(entry))
        except (ValueError, TypeError, EOFError) as exc:
            log.error("a chunk of %d access records cannot be read (%s): left out",
                      chunk_rows(entry), exc)
    return finish_rows(rows)


def finish_chunks(chunks: list[bytes], names: dict[str, str] | None = None) -> RecordBatch:
    """The records of packed chunks as columns, in C (ValueError when one is
    damaged, or when this install has no row packer).

    ``names`` (a dict the caller keeps, up to 4,096 strings): the names of routes,
    services, consumers, targets, methods... come out as one object each, batch
    after batch; every chunk has its own string table, so without it a batch of
    two chunks held two objects of each name, and the stages that group a batch
    (roll-ups, metrics, the segment's tables) compared strings instead of
    identities."""
    if _MODULE is None:
        raise ValueError("packed chunks, and the row packer is not built here")
    columns, extras = _MODULE.finish(chunks, time.monotonic(), names)
    if extras:
        add_extras(columns, extras)
    return RecordBatch(columns)
