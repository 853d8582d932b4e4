"""Prometheus ``/metrics``: the writer's ``metrics`` stage and the node's exporter.

The batch writer feeds :class:`MetricsStage` every batch, off the request path, like
a sink; it keeps cumulative totals in plain dicts (``_metrics_tally``).  At scrape
time :class:`NodeMetrics` turns them, the worker's own readings (upstream health and
pools, the access-log queue and sinks, process stats: ``_metrics_gauges``) and the
other workers' published samples into metric families (``_metrics_node``).  Labels
are bounded: route, service, method, status code, upstream target, error class, AI
provider and model; the consumer only with ``observe.metrics.consumer_label``.
Every metric is listed in docs/observability.md ("Metrics").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from campusgate.config.observe import MetricsSettings
from campusgate.observe._metrics_gauges import ObserveStats, WorkerReadings, read_worker
from campusgate.observe._metrics_node import (
    METRICS_DIR_ENV,
    NodeMetrics,
    WorkerSample,
    merge_samples,
    prepare_node_dir,
)
from campusgate.observe._metrics_tally import LATENCY_BUCKETS, RecordTally
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import SinkEnv

__all__ = ["LATENCY_BUCKETS", "METRICS_DIR_ENV", "MetricsStage", "NodeMetrics",
           "ObserveStats", "RecordTally", "WorkerReadings", "WorkerSample", "build",
           "merge_samples", "node_metrics", "prepare_node_dir", "read_worker"]


class MetricsStage:
    """The writer stage that counts records for ``/metrics`` (a :class:`Sink`)."""

    name = "metrics"

    def __init__(self, settings: MetricsSettings | None = None) -> None:
        self.settings = settings or MetricsSettings()
        self.tally = RecordTally(self.settings.consumer_label)

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        self.tally.add(batch)

    async def close(self) -> None:
        """Nothing to release: the totals stay readable for the last scrape."""

    def configure(self, settings: MetricsSettings) -> None:
        """Take the ``observe.metrics`` settings (before the first batch: the totals
        start again)."""
        self.settings = settings
        self.tally = RecordTally(settings.consumer_label)


def node_metrics(settings: MetricsSettings, stages: Iterable[object],
                 read: Callable[[], WorkerReadings] | None = None) -> NodeMetrics | None:
    """A worker's exporter (None when ``observe.metrics.enabled`` is false).

    ``stages``: the writer's sinks and stages, among them the :class:`MetricsStage`
    (absent when the access log is off: then no request metrics); ``read``: the
    worker's readings, e.g. ``lambda: read_worker(worker.snapshot, worker.observe)``.
    The node's directory is ``CAMPUSGATE_METRICS_DIR`` (unset: this worker alone).
    """
    if not settings.enabled:
        return None
    stage = next((s for s in stages if isinstance(s, MetricsStage)), None)
    if stage is None:
        tally = RecordTally(settings.consumer_label)
    else:
        if stage.settings != settings:
            stage.configure(settings)
        tally = stage.tally
    return NodeMetrics.from_environment(tally, settings, read)


def build(env: SinkEnv, settings: MetricsSettings | None = None) -> MetricsStage:
    """The stage for one worker (``env`` is unused: the totals live in memory and in
    the node's metrics directory)."""
    return MetricsStage(settings)
