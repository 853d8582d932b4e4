"""The node's log-writer process: ``python -m campusgate.observe.writer_process``.

Workers only queue their requests' rows and ship them in frames (``_ship.py``:
packed in C, or marshalled tuples); this process does everything else with the records, off the
serving CPUs: it listens on a Unix socket, reads frames from any number of workers,
finishes the :class:`AccessRecord` s (``capture.finish``) and runs the
:class:`BatchWriter` with the configured sinks and the internal stages (roll-ups,
metrics), exactly as an inline worker does.  One per node: SQLite gets a single
writer, and the node one set of roll-ups.  Its metrics tally (request counts,
latency histograms, sink counters) is published to ``CAMPUSGATE_METRICS_DIR`` like
a worker's, so ``/metrics`` on any worker shows it.

Started by ``campusgate serve`` (the supervisor with ``--workers N``; the worker
itself with one), with its settings as JSON in ``CAMPUSGATE_LOG_WRITER_BOOT``
(:func:`writer_environment`).  SIGTERM (or the parent's death) drains: it stops
accepting, reads every connected worker to its end (workers flush before they
exit), writes everything to the sinks, closes them, exits 0.  SIGINT is ignored:
a Ctrl-C reaches the whole process group, and the workers must flush first.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import marshal
import os
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Any

from campusgate.config.observe import AccessLogSettings, ObserveConfig
from campusgate.observe._ship import MAX_FRAME
from campusgate.observe.packed import MAGIC, ChunkQueue, Entry, chunk_rows, finish_entries
from campusgate.observe.runtime import build_sinks, worker_id
from campusgate.observe.sinks.base import Sink, SinkEnv
from campusgate.observe.writer import BatchWriter

__all__ = ["BOOT_ENV", "MALLOC_SETTINGS", "MODULE", "SOCKET_ENV", "LogWriter", "main",
           "tune_collector", "writer_environment"]

log = logging.getLogger("campusgate.observe")

#: The writer's settings (JSON), and the socket workers ship to (set by the supervisor).
BOOT_ENV = "CAMPUSGATE_LOG_WRITER_BOOT"
SOCKET_ENV = "CAMPUSGATE_LOG_WRITER"
MODULE = "campusgate.observe.writer_process"
#: How often the writer checks that its parent is still there (seconds).
PARENT_CHECK = 1.0
#: The young generation holds this many batches' objects before it is collected.
YOUNG_BATCHES = 8
#: glibc's malloc, told to keep what a batch freed for the next one: by default it
#: gives the top of its heap back past 128 KiB free and maps blocks over 128 KiB
#: (then a few MiB, as it adapts) on their own, so every batch (its columns, its
#: segment's buffers) grew the heap again and faulted its pages in.  Measured under
#: the ``access-log`` load (writer CPU per request, 3 runs each): 1.57-1.66 us user
#: and 0.37-0.63 us system before, 1.57-1.60 and 0.14-0.22 with these.  The writer's
#: memory is held by its queue (``QUEUE_BYTES``), not by this: at most 64 MiB
#: more stays mapped after a peak.  Other allocators ignore them; the user's own
#: environment wins.
MALLOC_SETTINGS = {"MALLOC_TRIM_THRESHOLD_": str(64 << 20), "MALLOC_TOP_PAD_": str(16 << 20),
                   "MALLOC_MMAP_THRESHOLD_": str(16 << 20)}


#: A writer SIGTERMed gets its drain timeout and this many seconds more to exit; then
#: whoever started it (a lone worker, the supervisor) kills it.
STOP_MARGIN = 5.0


def writer_environment(config: ObserveConfig, storage: str, socket_path: str,
                       drain_timeout: float) -> dict[str, str]:
    """The environment that starts a writer with these settings (and
    :data:`MALLOC_SETTINGS` where the environment has none of its own)."""
    boot = {"observe": config.model_dump(mode="json"), "storage": storage,
            "socket": socket_path, "drain_timeout": drain_timeout}
    return {**MALLOC_SETTINGS, **os.environ, BOOT_ENV: json.dumps(boot)}


class LogWriter:
    """The socket server, the queue and the batch writer of the log-writer process."""

    def __init__(self, config: ObserveConfig, env: SinkEnv, socket_path: str,
                 sinks: list[Sink] | None = None) -> None:
        """``sinks``: these instead of the configured ones and the stages (tests)."""
        self.config = config
        self.socket_path = socket_path
        settings = config.access_log
        #: The frames as they came (packed chunks, or lists of rows).
        self.queue: ChunkQueue[Entry] = ChunkQueue(settings.queue_size, settings.batch_size)
        self.sinks = build_sinks(config, env) if sinks is None else sinks
        #: One object per name across batches (``finish_chunks``).
        self._names: dict[str, str] = {}
        self.writer: BatchWriter[Entry] = BatchWriter(
            self.queue, self.sinks, partial(finish_entries, names=self._names),
            flush_interval=settings.flush_interval, batch_size=settings.batch_size)
        #: Frames received, and frames refused (too long, not a list of rows).
        self.frames = 0
        self.bad_frames = 0
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        _remove(self.socket_path)  # a crashed writer's
        self._server = await asyncio.start_unix_server(self._serve, self.socket_path)
        os.chmod(self.socket_path, 0o600)
        self.writer.start()
        log.info("log writer listening on %s (sinks: %s)", self.socket_path,
                 ", ".join(s.name for s in self.sinks) or "none")

    async def _serve(self, reader: asyncio.StreamReader,
                     stream: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self.read(reader)
        finally:
            self._connections.discard(task)
            stream.close()

    async def read(self, reader: asyncio.StreamReader) -> None:
        """Queue the rows of every frame of one worker's connection, to its end."""
        put = self.queue.put
        while True:
            try:
                size = int.from_bytes(await reader.readexactly(4), "big")
                if size > MAX_FRAME:
                    self._refuse(f"a frame of {size} bytes")
                    return
                data = await reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the worker went: a half-written frame is dropped
            entry: Entry
            try:
                if data.startswith(MAGIC):  # read when its batch is finished
                    entry, count = data, chunk_rows(data)
                else:
                    entry = marshal.loads(data)
                    count = len(entry) if type(entry) is list else -1
            except (ValueError, EOFError, TypeError) as exc:
                self._refuse(f"an unreadable frame ({exc})")
                return
            if count < 0:
                self._refuse("a frame that is not a list of rows")
                return
            self.frames += 1
            put(entry, count, size)  # a marshal frame's rows take about as much

    def _refuse(self, what: str) -> None:
        self.bad_frames += 1
        log.error("log writer: %s; closing that connection", what)

    async def close(self, drain_for: float) -> None:
        """Stop accepting, read the connected workers to their end (up to
        ``drain_for`` s), then write everything to the sinks and close them."""
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # connections just accepted start their reader task
        pending = set(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=drain_for)
            for task in late:
                task.cancel()
        await self.writer.close()
        _remove(self.socket_path)

    def counters(self) -> dict[str, Any]:
        return {"enabled": True, "frames": self.frames, "bad_frames": self.bad_frames,
                **self.writer.counters()}


async def serve(boot: dict[str, Any]) -> int:
    """Run the writer until SIGTERM or the parent's death."""
    from campusgate.observe.metrics import node_metrics, read_worker

    config = ObserveConfig.model_validate(boot["observe"])
    _pin(config.access_log.writer_cpus)
    writer = LogWriter(config, SinkEnv(boot["storage"], worker_id()), boot["socket"])
    metrics = node_metrics(config.metrics, writer.sinks, lambda: read_worker(None, writer))
    if metrics is not None:
        metrics.role = "writer"
    await writer.start()
    tune_collector(config.access_log)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    publish = loop.create_task(metrics.publish_forever()) if metrics else None
    watch = loop.create_task(_watch_parent(os.getppid(), stop))
    await stop.wait()
    watch.cancel()
    if publish is not None:
        publish.cancel()
    await writer.close(float(boot.get("drain_timeout", 30.0)))
    if metrics is not None:
        await metrics.close()  # the last counts, for the node's last scrape
    log.info("log writer stopped after %d frames, %d batches", writer.frames,
             writer.writer.batches)
    return 0


def tune_collector(settings: AccessLogSettings) -> None:
    """Let the cyclic garbage collector leave the batches alone.

    Every record is a new tracked object (and every row a tracked tuple) that lives
    for one batch and is freed by reference counting: none is ever part of a
    cycle.  With the default young generation of 700 objects, a batch of 5,000 is
    collected about eight times as it is built, and its survivors again in the
    older generations.  A young generation of :data:`YOUNG_BATCHES` batches' rows
    and records is mostly freed before it fills; the objects of the start-up
    (modules, config, the sinks) are frozen out of the full collections.
    """
    young = 2 * settings.batch_size * YOUNG_BATCHES
    first, *older = gc.get_threshold()
    if young > first:
        gc.set_threshold(young, *older)
    gc.freeze()


def _pin(cpus: list[int] | None) -> None:
    """Run on ``cpus`` (``observe.access_log.writer_cpus``), when set."""
    if not cpus:
        return
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, AttributeError) as exc:  # no such CPU here; not Linux
        log.error("the log writer cannot run on CPUs %s (%s); running where it was "
                  "started", cpus, exc)
    else:
        log.info("the log writer runs on CPUs %s", sorted(os.sched_getaffinity(0)))


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Drain and exit when the process that started this one is gone."""
    while os.getppid() == parent:  # noqa: ASYNC110 -- no event tells a parent's death
        await asyncio.sleep(PARENT_CHECK)
    log.warning("the log writer's parent (pid %d) is gone; draining", parent)
    stop.set()


def main() -> int:
    import uvloop

    from campusgate.logsetup import setup_logging

    setup_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raw = os.environ.get(BOOT_ENV)
    if not raw:
        sys.stderr.write(f"{MODULE} is started by `campusgate serve`\n")
        return 2
    return uvloop.run(serve(json.loads(raw)))


if __name__ == "__main__":
    sys.exit(main())
