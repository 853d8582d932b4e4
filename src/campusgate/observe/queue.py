"""The bounded queue between the request path and the batch writer.

``put`` is what a request pays for its access record: a length check and a deque
append (about 0.1 us), never a wait.  When the queue is full the OLDEST entry is
dropped and counted: under a flood the newest records, the ones an operator is
looking at, survive, and traffic is never held back by logging.

The log phase skips even ``put`` while the depth is under :attr:`RecordQueue.room`
(no drop and no wake-up can be due): it appends to :attr:`RecordQueue.items` itself
(``Capture.recorder``).  So nothing is counted per entry: ``accepted`` is worked
out from what was taken, what waits and what was dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["Backlog", "Bounded", "RecordQueue"]

T = TypeVar("T")


class Bounded(Protocol):
    """A bounded queue of records as its drainer and its counters see it."""

    size: int
    dropped: int
    #: Called when a full batch comes to wait.
    on_full_batch: Callable[[], None] | None

    def __len__(self) -> int:
        """Records waiting."""
        ...

    @property
    def depth(self) -> int: ...

    @property
    def accepted(self) -> int: ...


class Backlog(Bounded, Protocol[T]):
    """What a batch writer drains: a bounded queue of records, taken in entries
    (a record each here; a chunk of records in the log writer's ``ChunkQueue``)."""

    #: Records taken since the start.
    taken: int

    def take(self, limit: int) -> list[T]:
        """The oldest entries, about ``limit`` records (at least one entry)."""
        ...


class RecordQueue(Generic[T]):
    def __init__(self, size: int, wake_at: int | None = None) -> None:
        if size < 1:
            raise ValueError("the queue size must be at least 1")
        self.size = size
        #: The entries (a full deque drops its oldest).
        self.items: deque[T] = deque(maxlen=size)
        #: Entries dropped (the oldest, when full) and taken, since the start.
        self.dropped = 0
        self.taken = 0
        #: ``put`` calls this when the depth reaches ``wake_at`` (a full batch waits).
        self.on_full_batch: Callable[[], None] | None = None
        self._wake_at = size if wake_at is None else min(max(1, wake_at), size)
        #: Below this depth an entry may be appended to :attr:`items` directly.
        self.room = self._wake_at - 1

    @property
    def accepted(self) -> int:
        """Entries ever put."""
        return self.taken + len(self.items) + self.dropped

    @property
    def depth(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def put(self, item: T) -> None:
        """O(1), never blocks: the oldest entry goes when the queue is full."""
        items = self.items
        depth = len(items)
        if depth == self.size:
            self.dropped += 1
        items.append(item)
        if depth + 1 == self._wake_at and self.on_full_batch is not None:
            self.on_full_batch()

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` of the oldest entries, removed from the queue."""
        items = self.items
        if limit >= len(items):
            batch = list(items)
            items.clear()
        else:
            popleft = items.popleft
            batch = [popleft() for _ in range(limit)]
        self.taken += len(batch)
        return batch
