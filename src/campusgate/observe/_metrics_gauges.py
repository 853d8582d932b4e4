"""What a worker reports about itself at scrape (and publish) time: its config
revision, upstream health and pools, the access-log queue and sinks, process stats.

Read, never kept: each call looks at the worker's current objects.
"""

from __future__ import annotations

import asyncio
import platform
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import ProcessCollector

import campusgate
from campusgate.observe._metrics_tally import Family

if TYPE_CHECKING:
    from campusgate.proxy.snapshot import Snapshot

__all__ = ["ObserveStats", "WorkerReadings", "read_worker"]


class ObserveStats(Protocol):
    """The worker's access-record machinery (``observe.runtime.ObserveRuntime``)."""

    def counters(self) -> dict[str, Any]:
        """``{"depth", "capacity", "dropped", ..., "sinks": {name: {"written",
        "failed", ...}}}``"""
        ...


class WorkerReadings:
    """One worker's counters and gauges that do not come from the records."""

    def __init__(self) -> None:
        self.counters: dict[str, Family] = {
            "campusgate_access_log_dropped_total": Family(()),
            "campusgate_access_log_sink_records_total": Family(("sink", "outcome")),
            "process_cpu_seconds_total": Family(()),
        }
        self.gauges: dict[str, Family] = {
            "campusgate_config_revision": Family(()),
            "campusgate_build_info": Family(("version", "python_version")),
            "campusgate_access_log_queue_depth": Family(()),
            "campusgate_access_log_queue_capacity": Family(()),
            "campusgate_upstream_target_healthy": Family(("upstream", "target")),
            "campusgate_upstream_connections_active": Family(("upstream", "target")),
            "campusgate_upstream_connections_idle": Family(("target",)),
            "process_resident_memory_bytes": Family(()),
            "process_virtual_memory_bytes": Family(()),
            "process_open_fds": Family(()),
            "process_max_fds": Family(()),
            "process_start_time_seconds": Family(()),
        }


def read_worker(snapshot: Snapshot | None, observe: ObserveStats | None,
                now: float | None = None) -> WorkerReadings:
    """The readings of a worker serving ``snapshot`` with ``observe`` (``now``: its
    loop's clock, by default the running loop's)."""
    out = WorkerReadings()
    gauges, counters = out.gauges, out.counters
    gauges["campusgate_build_info"].values[(campusgate.__version__,
                                            platform.python_version())] = 1.0
    if snapshot is not None:
        if now is None:
            now = asyncio.get_running_loop().time()
        gauges["campusgate_config_revision"].values[()] = float(snapshot.revision)
        healthy = gauges["campusgate_upstream_target_healthy"].values
        active = gauges["campusgate_upstream_connections_active"].values
        for name, balancer in snapshot.balancers.items():
            for address, state in balancer.health(now).items():
                healthy[(name, address)] = 1.0 if state["healthy"] else 0.0
            for target in balancer.targets.values():
                active[(name, target.address)] = float(target.connections)
        idle = gauges["campusgate_upstream_connections_idle"].values
        for pool in snapshot.pools.values():
            address = f"[{pool.host}]:{pool.port}" if ":" in pool.host else \
                f"{pool.host}:{pool.port}"
            idle[(address,)] = idle.get((address,), 0.0) + len(pool.idle)
    if observe is not None:
        stats = observe.counters()
        gauges["campusgate_access_log_queue_depth"].values[()] = float(stats.get("depth", 0))
        gauges["campusgate_access_log_queue_capacity"].values[()] = float(
            stats.get("capacity", 0))
        counters["campusgate_access_log_dropped_total"].values[()] = float(
            stats.get("dropped", 0))
        sinks = counters["campusgate_access_log_sink_records_total"].values
        for sink, counts in stats.get("sinks", {}).items():
            for outcome in ("written", "failed"):
                sinks[(sink, outcome)] = float(counts.get(outcome, 0))
    _process_stats(out)
    return out


def _process_stats(out: WorkerReadings) -> None:
    """prometheus_client's process collector (Linux ``/proc``; nothing elsewhere)."""
    for family in ProcessCollector(registry=None).collect():
        for sample in family.samples:
            target = out.counters if sample.name.endswith("_total") else out.gauges
            if sample.name in target:
                target[sample.name].values[()] = sample.value
