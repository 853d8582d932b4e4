"""One worker's access-record machinery: the queue, and the batch writer and sinks
(inline) or the shipper to the node's log-writer process (``writer_process.py``).

``ObserveRuntime(config.observe, env)`` builds the configured sinks
(``campusgate.observe.sinks.<type>.build(spec, env)``) and the internal stages fed
the same batches (``campusgate.observe.rollup.build(env)``,
``campusgate.observe.metrics.build(env)``; a stage whose module is absent is
skipped).  The proxy gets :attr:`put` -- the one thing a request does for its
record; :meth:`start` starts the writer and :meth:`close` (graceful shutdown, after
the requests in flight finished, before the store closes) writes everything left.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campusgate.config.observe import ObserveConfig
from campusgate.observe._ship import RowQueue, Shipper
from campusgate.observe._speedups import speedups
from campusgate.observe.capture import Capture, Row, finish_rows
from campusgate.observe.packed import PackedQueue
from campusgate.observe.queue import RecordQueue
from campusgate.observe.sinks.base import Sink, SinkEnv
from campusgate.observe.writer import BatchWriter

if TYPE_CHECKING:
    from campusgate.observe._writer_child import WriterChild
    from campusgate.proxy.context import RequestContext

__all__ = ["INTERNAL_STAGES", "ObserveRuntime", "build_sinks", "worker_id"]

log = logging.getLogger("campusgate.observe")

#: Modules whose ``build(env) -> Sink`` makes a stage every batch also goes through.
INTERNAL_STAGES = ("campusgate.observe.rollup", "campusgate.observe.metrics")


def worker_id() -> str:
    """``<hostname>:<pid>:<start epoch>``: unique across restarts and nodes."""
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"


def _internal_stages(env: SinkEnv) -> list[Sink]:
    stages: list[Sink] = []
    for name in INTERNAL_STAGES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            log.debug("%s is not there: that stage is skipped", name)
            continue
        build = getattr(module, "build", None)
        if build is None:
            log.debug("%s has no build(env): that stage is skipped", name)
            continue
        stages.append(build(env))
    return stages


def build_sinks(config: ObserveConfig, env: SinkEnv, *, internal: bool = True) -> list[Sink]:
    """The configured sinks and (``internal``) the roll-up and metrics stages."""
    if not config.access_log.enabled:
        return []
    sinks: list[Sink] = [importlib.import_module(f"campusgate.observe.sinks.{spec.type}")
                         .build(spec, env) for spec in config.sinks]
    return [*sinks, *_internal_stages(env)] if internal else sinks


class ObserveRuntime:
    """The queue of one worker, and where it goes: the batch writer and the sinks in
    this process (inline), or the node's log-writer process (``ship_to``)."""

    def __init__(self, config: ObserveConfig, env: SinkEnv,
                 sinks: list[Sink] | None = None, *, internal: bool = True,
                 ship_to: str | None = None, child: WriterChild | None = None) -> None:
        """``sinks``: use these instead of building the configured ones (tests);
        ``internal``: add the roll-up and metrics stages; ``ship_to``: the log
        writer's socket (then no sink runs here); ``child``: the log-writer process
        this worker runs itself (one worker)."""
        self.config = config
        self.env = env
        settings = config.access_log
        self.enabled = settings.enabled
        self.capture = Capture("proxy")
        self.child = child
        self.shipper: Shipper | None = None
        self.writer: BatchWriter[Row] | None = None
        #: The requests' records waiting for the shipper (packed in C when the row
        #: packer is built, else rows) or the inline writer (rows: ``Capture.row``).
        self.queue: RecordQueue[Row] | PackedQueue
        if ship_to is not None:
            self.sinks: list[Sink] = []
            module = speedups()
            shipped: PackedQueue | RowQueue = (
                RowQueue(settings.queue_size, settings.batch_size) if module is None
                else PackedQueue(settings.queue_size, settings.batch_size, self.capture,
                                 module))
            self.queue = shipped
            self.shipper = Shipper(shipped, ship_to, batch_size=settings.batch_size)
            return
        rows: RecordQueue[Row] = RecordQueue(settings.queue_size, settings.batch_size)
        self.queue = rows
        if sinks is None:
            sinks = build_sinks(config, env, internal=internal)
        elif self.enabled and internal:
            sinks = [*sinks, *_internal_stages(env)]
        self.sinks = sinks
        self.writer = BatchWriter(
            rows, sinks, finish_rows,
            flush_interval=settings.flush_interval, batch_size=settings.batch_size)

    @classmethod
    def serving(cls, config: ObserveConfig, env: SinkEnv, *, separate: bool,
                drain_timeout: float = 30.0) -> ObserveRuntime:
        """A serving worker's: with ``separate`` and ``access_log.writer: process``,
        records go to the node's log writer -- the supervisor's (its socket in
        ``CAMPUSGATE_LOG_WRITER``) or, when there is none, one this worker starts."""
        if not (separate and config.access_log.enabled
                and config.access_log.writer == "process"):
            return cls(config, env)
        from campusgate.observe.writer_process import SOCKET_ENV

        path = os.environ.get(SOCKET_ENV)
        if path:
            return cls(config, env, ship_to=path)
        from campusgate.observe._writer_child import WriterChild
        from campusgate.observe.writer_process import STOP_MARGIN, writer_environment

        directory = Path(tempfile.mkdtemp(prefix="campusgate-log-"))
        path = str(directory / "writer.sock")
        child = WriterChild(writer_environment(config, env.storage, path, drain_timeout),
                            directory, stop_timeout=drain_timeout + STOP_MARGIN)
        return cls(config, env, ship_to=path, child=child)

    @property
    def put(self) -> Callable[[RequestContext], None] | None:
        """What the proxy calls with each finished request (None: access log off):
        queues the request's row (``Capture.row``), not the context, which is
        freed at once (a context held for a flush interval outlives the garbage
        collector's young generation: see docs/observability.md)."""
        if not self.enabled:
            return None
        queue = self.queue
        return queue.record if isinstance(queue, PackedQueue) else self.capture.recorder(queue)

    @property
    def propagate(self) -> bool:
        return self.config.tracing.propagate

    def start(self) -> None:
        if not self.enabled:
            return
        if self.child is not None:
            self.child.start()
        if self.shipper is not None:
            self.shipper.start()
        elif self.writer is not None:
            self.writer.start()

    async def close(self) -> None:
        """Write (or ship) every queued record; then close the sinks, or stop the
        log writer this worker started (it drains into its sinks)."""
        if self.shipper is not None:
            await self.shipper.close()
        elif self.writer is not None:
            await self.writer.close()
        if self.child is not None:
            await self.child.close()

    def counters(self) -> dict[str, Any]:
        if self.shipper is not None:
            return {"enabled": self.enabled, "writer": "process", **self.shipper.counters()}
        assert self.writer is not None
        return {"enabled": self.enabled, "writer": "inline", **self.writer.counters()}
