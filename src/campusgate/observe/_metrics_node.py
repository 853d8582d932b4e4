"""``/metrics`` for the whole node: this worker's live values plus the other workers'.

Workers (``campusgate serve --workers N``) share the admin port, so a scrape lands on
any one of them.  Each worker publishes its sample (counters, histograms, gauges) to
``<metrics dir>/worker-<pid>.json`` every second and when it stops; the scraped worker
merges its own live sample with every other file:

- counters and histograms are summed over every file, those of workers that exited
  included, so a node's counters never go backwards while ``campusgate serve`` runs
  (a worker that crashes loses at most its last second);
- gauges come only from workers still alive, merged per family (summed, or the
  minimum for health and revision, the maximum where that is what it means).

The directory is named by ``CAMPUSGATE_METRICS_DIR``; ``campusgate serve`` empties it
at start (:func:`prepare_node_dir`).  Without it (one worker) only the live sample is
shown.  A plain JSON file, not prometheus_client's multiprocess mmap files: the write
path stays a dict update per record, and gauges read at scrape time work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import PlatformCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from campusgate.config.observe import MetricsSettings
from campusgate.observe._metrics_docs import DOCS, GAUGE_MERGE
from campusgate.observe._metrics_gauges import WorkerReadings, read_worker
from campusgate.observe._metrics_tally import (
    LATENCY_BUCKETS,
    Family,
    HistogramFamily,
    RecordTally,
)

__all__ = ["METRICS_DIR_ENV", "NodeMetrics", "WorkerSample", "merge_samples",
           "prepare_node_dir"]

log = logging.getLogger("campusgate.observe")

METRICS_DIR_ENV = "CAMPUSGATE_METRICS_DIR"
PUBLISH_INTERVAL = 1.0
#: ``le`` of each bucket as Prometheus writes it (``0.001``, ``1.0``, ``+Inf``).
_BOUNDS = [repr(b) for b in LATENCY_BUCKETS] + ["+Inf"]


@dataclass(slots=True)
class WorkerSample:
    """Everything one worker reports, as published to its file."""

    pid: int
    counters: dict[str, Family] = field(default_factory=dict)
    histograms: dict[str, HistogramFamily] = field(default_factory=dict)
    gauges: dict[str, Family] = field(default_factory=dict)
    #: ``worker``, or ``writer`` (the node's log-writer process: not counted as a worker).
    role: str = "worker"

    def to_json(self) -> str:
        def plain(families: dict[str, Family]) -> dict[str, Any]:
            return {name: {"labels": f.labels, "series": list(map(list, f.values.items()))}
                    for name, f in families.items()}

        return json.dumps({
            "pid": self.pid,
            "role": self.role,
            "counters": plain(self.counters),
            "gauges": plain(self.gauges),
            "histograms": {name: {"labels": h.labels,
                                  "series": [[k, b, s] for k, (b, s) in h.values.items()]}
                           for name, h in self.histograms.items()},
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WorkerSample:
        data = json.loads(text)

        def families(raw: dict[str, Any]) -> dict[str, Family]:
            return {name: Family(tuple(f["labels"]),
                                 {tuple(k): float(v) for k, v in f["series"]})
                    for name, f in raw.items()}

        return cls(
            pid=int(data["pid"]),
            counters=families(data["counters"]),
            gauges=families(data["gauges"]),
            histograms={name: HistogramFamily(tuple(h["labels"]),
                                              {tuple(k): (list(b), float(s))
                                               for k, b, s in h["series"]})
                        for name, h in data["histograms"].items()},
            role=str(data.get("role", "worker")),
        )


def merge_samples(own: WorkerSample, others: list[WorkerSample],
                  alive: Callable[[int], bool]) -> WorkerSample:
    """The node's sample: counters and histograms summed over ``own`` and every other
    sample; gauges over ``own`` and the others whose process is ``alive``."""
    merged = WorkerSample(own.pid)
    live = [own] + [s for s in others if alive(s.pid)]
    for sample in [own, *others]:
        for name, family in sample.counters.items():
            into = merged.counters.setdefault(name, Family(family.labels))
            for key, value in family.values.items():
                into.values[key] = into.values.get(key, 0.0) + value
        for name, hist in sample.histograms.items():
            hinto = merged.histograms.setdefault(name, HistogramFamily(hist.labels))
            for key, (buckets, total) in hist.values.items():
                had = hinto.values.get(key)
                hinto.values[key] = (buckets[:], total) if had is None else (
                    [a + b for a, b in zip(had[0], buckets, strict=True)], had[1] + total)
    for sample in live:
        for name, family in sample.gauges.items():
            pick = GAUGE_MERGE.get(name, _sum)
            into = merged.gauges.setdefault(name, Family(family.labels))
            for key, value in family.values.items():
                had_value = into.values.get(key)
                into.values[key] = value if had_value is None else pick(had_value, value)
    workers = sum(1 for s in live if s.role == "worker")
    merged.gauges["campusgate_workers"] = Family((), {(): float(workers)})
    return merged


def _sum(a: float, b: float) -> float:
    return a + b


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_node_dir(path: Path) -> Path:
    """Create ``path`` for a new ``campusgate serve``, without the previous run's files."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("worker-*.json*"):
        old.unlink(missing_ok=True)
    return path


class NodeMetrics:
    """One worker's view of the node's metrics: publishes its own, renders all.

    ``tally`` holds the record totals (the ``metrics`` stage's); ``read`` returns this
    worker's readings (revision, upstreams, queue, sinks, process); ``directory`` is
    the node's metrics directory, or None for a worker alone.
    """

    def __init__(self, tally: RecordTally, settings: MetricsSettings,
                 read: Callable[[], WorkerReadings] | None = None,
                 directory: Path | None = None, pid: int | None = None) -> None:
        self.tally = tally
        self.settings = settings
        self.read = read or _process_only
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid
        #: Published in the sample: ``writer`` for the log-writer process.
        self.role = "worker"
        self._failing = False

    @classmethod
    def from_environment(cls, tally: RecordTally, settings: MetricsSettings,
                         read: Callable[[], WorkerReadings] | None = None) -> NodeMetrics:
        """With the directory ``campusgate serve`` names in ``CAMPUSGATE_METRICS_DIR``."""
        directory = os.environ.get(METRICS_DIR_ENV)
        return cls(tally, settings, read, Path(directory) if directory else None)

    def sample(self) -> WorkerSample:
        """This worker's sample, now."""
        readings = self.read()
        tally = self.tally
        return WorkerSample(self.pid, {**tally.counters(), **readings.counters},
                            tally.histograms(), readings.gauges, self.role)

    # ------------------------------------------------------------ publishing

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / f"worker-{self.pid}.json"

    async def publish(self) -> None:
        """Write this worker's sample to its file (atomically: write, then rename)."""
        path = self.path
        if path is None:
            return
        text = self.sample().to_json()
        try:
            await asyncio.to_thread(_write_atomically, path, text)
        except OSError as exc:
            if not self._failing:  # once per outage
                log.error("cannot publish metrics to %s: %s", path, exc)
            self._failing = True
        else:
            self._failing = False

    async def publish_forever(self, interval: float = PUBLISH_INTERVAL) -> None:
        """Publish every ``interval`` seconds (a task of the worker)."""
        if self.directory is None:
            return
        while True:
            await self.publish()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        """Publish the last sample: call after the access log's last flush."""
        await self.publish()

    # ------------------------------------------------------------ scraping

    def _others(self) -> list[WorkerSample]:
        if self.directory is None:
            return []
        out = []
        for path in self.directory.glob("worker-*.json"):
            if path == self.path:
                continue
            try:
                out.append(WorkerSample.from_json(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable metrics file %s: %s", path, exc)
        return out

    async def node_sample(self) -> WorkerSample:
        others = await asyncio.to_thread(self._others) if self.directory else []
        return merge_samples(self.sample(), others, _process_alive)

    async def render(self, accept: str | None) -> tuple[bytes, str]:
        """The node's metrics in the format ``accept`` asks for (Prometheus text, or
        OpenMetrics), and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(_Families(await self.node_sample())), content_type


def _process_only() -> WorkerReadings:
    return read_worker(None, None)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Families:
    """A prometheus_client collector over a merged sample."""

    def __init__(self, sample: WorkerSample) -> None:
        self.sample = sample

    def collect(self) -> Iterator[Metric]:
        s = self.sample
        yield from _simple(CounterMetricFamily, s.counters)
        for name in sorted(s.histograms):
            hist = s.histograms[name]
            metric = HistogramMetricFamily(name, DOCS.get(name, name), labels=hist.labels)
            for key, (buckets, total) in sorted(hist.values.items()):
                running = 0.0
                cumulative = []
                for bound, n in zip(_BOUNDS, buckets, strict=True):
                    running += n
                    cumulative.append((bound, running))
                metric.add_metric(key, cumulative, total)
            yield metric
        yield from _simple(GaugeMetricFamily, s.gauges)
        yield from PlatformCollector(registry=None).collect()


def _simple(kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
            families: dict[str, Family]) -> Iterator[Metric]:
    for name in sorted(families):
        family = families[name]
        metric = kind(name, DOCS.get(name, name), labels=family.labels)
        for key, value in sorted(family.values.items()):
            metric.add_metric(key, value)
        yield metric
