"""The ``observe:`` section (bootstrap: read at start, like ``listeners``): access
records, their sinks and retention, metrics, tracing and alerts.

Durations are written as a count and a unit (``90s``, ``15m``, ``7d``, ``1mo`` = 30
days) and held in seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from campusgate.config.common import DURATION_TEXT, StrictModel
from campusgate.config.observe_alerts import AlertsConfig
from campusgate.config.observe_sinks import SinkSpec, StoreSink

__all__ = ["AccessLogSettings", "Duration", "MetricsSettings", "ObserveConfig", "Retention",
           "TracingSettings"]



#: A duration: ``"15m"``/``"7d"`` or a number of seconds.
Duration = Annotated[float, DURATION_TEXT, Field(gt=0)]


class AccessLogSettings(StrictModel):
    """The queue between the request path and the batch writer."""

    enabled: bool = True
    #: Records waiting at most; when full the oldest are dropped (and counted).
    queue_size: int = Field(default=100_000, ge=100, le=10_000_000)
    #: The writer drains the queue at least this often: a crash loses at most this.
    flush_interval: Duration = Field(default=1.0, le=1.0)
    #: Records per sink write at most.
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    #: Where the sinks run: ``process`` -- one log-writer process per node, to which
    #: the workers ship their records (logging takes no serving CPU beyond the
    #: queue and the shipping); ``inline`` -- in each worker (one process, no child).
    writer: Literal["process", "inline"] = "process"
    #: The CPUs the log-writer process may run on (e.g. a housekeeping core, away
    #: from the workers'); default: those of the process that starts it.
    writer_cpus: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, min_length=1)


class Retention(StrictModel):
    """How long each kind of row is kept; pruned in the background."""

    records: Duration = 7 * 86400.0
    minute: Duration = 2 * 86400.0
    hour: Duration = 90 * 86400.0
    day: Duration = 400 * 86400.0
    #: How often the pruner runs.
    interval: Duration = 3600.0


class MetricsSettings(StrictModel):
    """Prometheus ``/metrics`` on the admin listener (see docs/observability.md)."""

    #: Off: no metrics are kept and ``/metrics`` answers 404.
    enabled: bool = True
    #: Like ``/healthz``, ``/metrics`` needs no admin token unless this is set.
    require_token: bool = False
    #: Label request counts and rate-limit rejections with the consumer's name too.
    #: Off by default: one series per consumer can be many series.
    consumer_label: bool = False


class TracingSettings(StrictModel):
    """W3C Trace Context: ``traceparent`` accepted, a child sent upstream."""

    propagate: bool = True


def _default_sinks() -> list[SinkSpec]:
    return [StoreSink()]


class ObserveConfig(StrictModel):
    access_log: AccessLogSettings = Field(default_factory=AccessLogSettings)
    #: Where records go; several at once.  The store sink feeds log search.
    sinks: list[SinkSpec] = Field(default_factory=_default_sinks)
    retention: Retention = Field(default_factory=Retention)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
