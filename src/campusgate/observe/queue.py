"""The bounded queue between the request path and the batch writer.

``put`` is what a request pays for its access record: a length check and a deque
append (about 0.1 us), never a wait.  When the queue is full the OLDEST entry is
dropped and counted: under a flood the newest records, the ones an operator is
looking at, survive, and traffic is never held back by logging.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["RecordQueue"]

T = TypeVar("T")


class RecordQueue(Generic[T]):
    def __init__(self, size: int, wake_at: int | None = None) -> None:
        if size < 1:
            raise ValueError("the queue size must be at least 1")
        self.size = size
        self._items: deque[T] = deque(maxlen=size)  # a full deque drops its oldest
        #: Entries dropped (the oldest, when full) since the start.
        self.dropped = 0
        #: Entries ever put.
        self.accepted = 0
        #: ``put`` calls this when the depth reaches ``wake_at`` (a full batch waits).
        self.on_full_batch: Callable[[], None] | None = None
        self._wake_at = size if wake_at is None else min(max(1, wake_at), size)

    @property
    def depth(self) -> int:
        return len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """O(1), never blocks: the oldest entry goes when the queue is full."""
        items = self._items
        depth = len(items)
        if depth == self.size:
            self.dropped += 1
        items.append(item)
        self.accepted += 1
        if depth + 1 == self._wake_at and self.on_full_batch is not None:
            self.on_full_batch()

    def put_many(self, items: list[T]) -> None:
        """``put`` each of ``items``, in one step (the log-writer process's intake)."""
        queue = self._items
        depth = len(queue)
        over = depth + len(items) - self.size
        if over > 0:
            self.dropped += over
        queue.extend(items)
        self.accepted += len(items)
        if depth < self._wake_at <= len(queue) and self.on_full_batch is not None:
            self.on_full_batch()

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` of the oldest entries, removed from the queue."""
        items = self._items
        if limit >= len(items):
            batch = list(items)
            items.clear()
            return batch
        popleft = items.popleft
        return [popleft() for _ in range(limit)]
