"""What to read for an analytics query (sans-IO): metrics from summed columns,
filters, which grouping set (``rollups.dims``) and which periods cover a range.

Reading the narrowest grouping set that still has every dimension a query filters or
groups by, and the coarsest period that fits a range, keeps the rows read small: a
30-day total is 30 day rows per worker; a 24-hour series per minute is 1,440 minute
rows per worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from campusgate.observe.analytics.timerange import InvalidQuery, TimeRange
from campusgate.observe.histogram import Histogram, merge_into, percentile
from campusgate.observe.rollup_state import DIMS, FULL, GROUPINGS, PERIODS

__all__ = [
    "DIMENSIONS",
    "HISTOGRAM_METRICS",
    "METRICS",
    "SUMS",
    "Filters",
    "Totals",
    "check_metric",
    "choose_dims",
    "metric_value",
    "series_period",
    "spans",
]

#: Summed columns, in the order :class:`Totals` holds them.
SUMS = ("requests", "errors", "rate_limited", "bytes_in", "bytes_out", "input_tokens",
        "output_tokens", "cached_tokens", "cost_nanousd", "latency_sum_ms",
        "upstream_requests", "upstream_sum_ms")
#: Dimensions one can filter and group by (``error``: the error class; ``status``: the
#: HTTP status, both from the status grouping).
DIMENSIONS = ("route", "service", "consumer", "model", "upstream", "status", "error")
#: Metric -> quantile of the latency (or upstream latency) histogram.
HISTOGRAM_METRICS: dict[str, tuple[str, float]] = {
    "p50": ("latency", 0.50), "p90": ("latency", 0.90), "p95": ("latency", 0.95),
    "p99": ("latency", 0.99),
    "upstream_p50": ("upstream_latency", 0.50), "upstream_p95": ("upstream_latency", 0.95),
    "upstream_p99": ("upstream_latency", 0.99),
}
METRICS = ("requests", "errors", "error_rate", "rate_limited", "bytes_in", "bytes_out",
           "bytes", "input_tokens", "output_tokens", "cached_tokens", "tokens", "cost",
           "latency_avg", "upstream_latency_avg", *HISTOGRAM_METRICS)


@dataclass(slots=True)
class Totals:
    """The sums of some rows, and their latency histograms when asked for."""

    sums: list[float] = field(default_factory=lambda: [0] * len(SUMS))
    latency: Histogram = field(default_factory=dict)
    upstream_latency: Histogram = field(default_factory=dict)

    def add(self, values: Sequence[Any]) -> None:
        sums = self.sums
        for n, value in enumerate(values):
            if value:  # PostgreSQL sums BIGINT columns as NUMERIC (Decimal)
                sums[n] += int(value) if isinstance(value, Decimal) else value

    def merge(self, other: Totals) -> None:
        self.add(other.sums)
        merge_into(self.latency, other.latency)
        merge_into(self.upstream_latency, other.upstream_latency)

    def get(self, name: str) -> float:
        return self.sums[SUMS.index(name)]


def metric_value(metric: str, totals: Totals) -> float | None:
    """One metric of summed rows (None when undefined, e.g. a rate of no requests)."""
    if metric in HISTOGRAM_METRICS:
        which, q = HISTOGRAM_METRICS[metric]
        value = percentile(totals.latency if which == "latency" else totals.upstream_latency, q)
        return None if value is None else round(value, 3)
    get = totals.get
    requests = get("requests")
    if metric == "error_rate":
        return get("errors") / requests if requests else None
    if metric == "bytes":
        return get("bytes_in") + get("bytes_out")
    if metric == "tokens":
        return get("input_tokens") + get("output_tokens")
    if metric == "cost":
        return get("cost_nanousd") / 1e9
    if metric == "latency_avg":
        return round(get("latency_sum_ms") / requests, 3) if requests else None
    if metric == "upstream_latency_avg":
        upstream = get("upstream_requests")
        return round(get("upstream_sum_ms") / upstream, 3) if upstream else None
    return get(metric)


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InvalidQuery(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    return metric


@dataclass(frozen=True, slots=True)
class Filters:
    """Exact values to keep (``""`` matches requests without that dimension, e.g. no
    consumer); ``status_class`` 1..5 (0: no answer sent)."""

    values: Mapping[str, str] = field(default_factory=dict)
    status_class: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(DIMENSIONS) - {"status"}
        if unknown:
            raise InvalidQuery(f"cannot filter by {', '.join(sorted(unknown))}")
        if self.status_class is not None and not 0 <= self.status_class <= 5:
            raise InvalidQuery("status_class must be 0..5 (0: no answer sent)")

    @property
    def dims(self) -> int:
        bits = 0
        for name in self.values:
            bits |= _bit(name)
        if self.status_class is not None:
            bits |= DIMS["status"]
        return bits


def _bit(dimension: str) -> int:
    return DIMS["status"] if dimension in ("status", "error") else DIMS[dimension]


def choose_dims(filters: Filters, *group_by: str) -> int:
    """The narrowest grouping set holding every dimension the query needs."""
    needed = filters.dims
    for name in group_by:
        if name not in DIMENSIONS:
            raise InvalidQuery(f"cannot group by {name!r}; choose from {', '.join(DIMENSIONS)}")
        needed |= _bit(name)
    return needed if needed in GROUPINGS else FULL


def series_period(step: int) -> int:
    """The coarsest period whose rows add up exactly to steps of ``step`` seconds."""
    return max(p for p in PERIODS if step % p == 0)


def spans(span: TimeRange) -> list[tuple[int, int, int]]:
    """``(period, start, end)`` pieces covering ``span`` exactly: whole days at the day
    period, whole hours around them at the hour period, minutes at the ends."""
    return _cover(span.start, span.end, len(PERIODS) - 1)


def _cover(start: int, end: int, level: int) -> list[tuple[int, int, int]]:
    if start >= end:
        return []
    period = PERIODS[level]
    if level == 0:
        return [(period, start, end)]
    lo = -(-start // period) * period
    hi = end // period * period
    if lo >= hi:
        return _cover(start, end, level - 1)
    return [*_cover(start, lo, level - 1), (period, lo, hi), *_cover(hi, end, level - 1)]
