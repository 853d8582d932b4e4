"""The batch writer: batches in order to every sink, a failing sink isolated, a flush
within the interval, everything written on close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from campusgate.observe.queue import RecordQueue
from campusgate.observe.record import AccessRecord
from campusgate.observe.writer import BatchWriter


def _record(i: int) -> AccessRecord:
    return AccessRecord(float(i), f"r{i}", "t" * 32, "s" * 16, None, "proxy", 1, None,
                        None, None, None, None, "127.0.0.1", "GET", "h", "/", 200, 0, 0,
                        1.0, None, 1.0, 0, None, None)


def _build(entries: list[int]) -> list[AccessRecord]:
    return [_record(i) for i in entries]


class ListSink:
    def __init__(self, name: str = "list", fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.batches: list[list[str]] = []
        self.closed = False
        self.got = asyncio.Event()
        self.busy = False

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        assert not self.busy, "two writes at once"
        self.busy = True
        await asyncio.sleep(0)
        self.busy = False
        if self.fail:
            raise OSError("the sink is down")
        self.batches.append([r.request_id for r in batch])
        self.got.set()

    async def close(self) -> None:
        self.closed = True


async def test_close_writes_every_queued_record_to_every_sink_in_order() -> None:
    queue: RecordQueue[int] = RecordQueue(1000)
    a, b = ListSink("a"), ListSink("b")
    writer = BatchWriter(queue, [a, b], _build, flush_interval=1.0, batch_size=3)
    writer.start()
    for i in range(8):
        queue.put(i)
    await writer.close()
    for sink in (a, b):
        assert [rid for batch in sink.batches for rid in batch] == [f"r{i}" for i in range(8)]
        assert all(len(batch) <= 3 for batch in sink.batches)
        assert sink.closed
    assert writer.counters()["sinks"]["a"]["written"] == 8


async def test_records_reach_the_sink_within_the_flush_interval() -> None:
    """A crash loses at most the interval: a record older than that is written."""
    queue: RecordQueue[int] = RecordQueue(1000)
    sink = ListSink()
    writer = BatchWriter(queue, [sink], _build, flush_interval=0.05, batch_size=5000)
    writer.start()
    queue.put(1)  # far fewer than a batch: only the interval wakes the writer
    await asyncio.wait_for(sink.got.wait(), timeout=5)
    assert sink.batches == [["r1"]]
    assert writer.last_flush > 0
    await writer.close()


async def test_a_failing_sink_is_counted_and_the_others_go_on(caplog: object) -> None:
    queue: RecordQueue[int] = RecordQueue(1000)
    good, bad = ListSink("good"), ListSink("bad", fail=True)
    writer = BatchWriter(queue, [bad, good], _build, flush_interval=1.0, batch_size=2)
    for i in range(5):
        queue.put(i)
    await writer.flush()
    counters = writer.counters()["sinks"]
    assert counters["good"]["written"] == 5
    assert counters["bad"] == {"written": 0, "failed": 5, "failing": True,
                               "last_error": "OSError: the sink is down"}
    errors = [r for r in caplog.records if "bad failed" in r.getMessage()]  # type: ignore[attr-defined]
    assert len(errors) == 1  # once per outage, not once per batch
    bad.fail = False
    queue.put(9)
    await writer.flush()
    assert writer.counters()["sinks"]["bad"]["failing"] is False
    await writer.close()


async def test_a_full_batch_is_written_before_the_interval() -> None:
    queue: RecordQueue[int] = RecordQueue(1000, wake_at=10)
    sink = ListSink()
    writer = BatchWriter(queue, [sink], _build, flush_interval=60.0, batch_size=10)
    writer.start()
    await asyncio.sleep(0)  # the writer waits
    for i in range(10):
        queue.put(i)
    await asyncio.wait_for(sink.got.wait(), timeout=30)
    assert len(sink.batches[0]) == 10
    await writer.close()
