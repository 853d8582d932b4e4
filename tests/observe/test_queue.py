"""The record queue: bounded, drop-oldest, never blocking."""

from __future__ import annotations

import pytest

from campusgate.observe.queue import RecordQueue


def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    queue: RecordQueue[int] = RecordQueue(3)
    for i in range(5):
        queue.put(i)  # never blocks, never raises
    assert queue.depth == 3
    assert queue.dropped == 2
    assert queue.accepted == 5
    assert queue.take(10) == [2, 3, 4]  # the newest survive, in order
    assert queue.depth == 0


def test_take_returns_at_most_the_limit_oldest_first() -> None:
    queue: RecordQueue[int] = RecordQueue(100)
    for i in range(10):
        queue.put(i)
    assert queue.take(4) == [0, 1, 2, 3]
    assert queue.take(100) == [4, 5, 6, 7, 8, 9]
    assert queue.take(5) == []


def test_a_full_batch_wakes_the_writer_once() -> None:
    queue: RecordQueue[int] = RecordQueue(100, wake_at=3)
    wakes: list[int] = []
    queue.on_full_batch = lambda: wakes.append(queue.depth)
    for i in range(5):
        queue.put(i)
    assert wakes == [3]


def test_a_queue_needs_room() -> None:
    with pytest.raises(ValueError):
        RecordQueue(0)
