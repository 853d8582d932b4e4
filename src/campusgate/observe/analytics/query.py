"""Reading roll-ups: the thin async executor over SQLAlchemy Core.

Every method sums the ``rollups`` rows of all workers (and nodes) that match, in
SQL where it can (``SUM ... GROUP BY``), and merges latency histograms in Python when
a percentile is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.observe.analytics.plan import (
    HISTOGRAM_METRICS,
    SUMS,
    Filters,
    Totals,
    check_metric,
    choose_dims,
    metric_value,
    series_period,
    spans,
)
from campusgate.observe.analytics.timerange import InvalidQuery, TimeRange
from campusgate.observe.histogram import decode_into
from campusgate.store.rollup_tables import rollups

__all__ = ["Analytics", "Point", "Ranked"]

_SUM_COLUMNS = [func.sum(rollups.c[name]) for name in SUMS]


@dataclass(frozen=True, slots=True)
class Point:
    """One step of a series: its start (epoch seconds) and each metric's value."""

    time: int
    values: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class Ranked:
    """One entry of a top-N list, or of the error breakdown."""

    key: dict[str, Any]
    values: dict[str, float | None]


def _where(query: Select[Any], period: int, dims: int, start: int, end: int,
           filters: Filters) -> Select[Any]:
    conditions = [rollups.c.period == period, rollups.c.dims == dims,
                  rollups.c.bucket >= start, rollups.c.bucket < end]
    for name, value in filters.values.items():
        column = rollups.c[name]
        conditions.append(column == (int(value) if name == "status" else value))
    if filters.status_class is not None:
        lo = filters.status_class * 100
        conditions.append(rollups.c.status == 0 if lo == 0 else
                          and_(rollups.c.status >= lo, rollups.c.status < lo + 100))
    return query.where(*conditions)


def _histogram_columns(metrics: Sequence[str]) -> list[str]:
    return sorted({HISTOGRAM_METRICS[m][0] for m in metrics if m in HISTOGRAM_METRICS})


class Analytics:
    """Analytics over the roll-ups of one store (see docs/observability.md)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _grouped(self, span: TimeRange, filters: Filters, metrics: Sequence[str],
                       by: Sequence[str], pieces: list[tuple[int, int, int]],
                       ) -> dict[tuple[Any, ...], Totals]:
        """Totals per value of the ``by`` columns over ``pieces`` of the range."""
        dims = choose_dims(filters, *(name for name in by if name != "bucket"))
        # Grouping by an expression, not the bare column, keeps SQLite from walking a
        # (period, dims, <column>, bucket) index across every bucket to avoid a sort.
        keys = [rollups.c[name] if name == "bucket" else
                func.coalesce(rollups.c[name], rollups.c[name]).label(name) for name in by]
        histograms = _histogram_columns(metrics)
        groups: dict[tuple[Any, ...], Totals] = {}
        async with self._engine.connect() as conn:
            for period, lo, hi in pieces:
                summed = _where(select(*keys, *_SUM_COLUMNS), period, dims, lo, hi, filters)
                for row in await conn.execute(summed.group_by(*keys)):
                    values = tuple(row)
                    group = values[:len(keys)]
                    totals = groups.get(group)
                    if totals is None:
                        totals = groups[group] = Totals()
                    totals.add(values[len(keys):])
                if not histograms:
                    continue
                texts = _where(select(*keys, *(rollups.c[h] for h in histograms)), period,
                               dims, lo, hi, filters)
                for row in await conn.execute(texts):
                    values = tuple(row)
                    totals = groups[values[:len(keys)]]
                    for name, text in zip(histograms, values[len(keys):], strict=True):
                        decode_into(totals.latency if name == "latency" else
                                    totals.upstream_latency, text)
        return groups

    async def series(self, span: TimeRange, step: int, metrics: Sequence[str],
                     filters: Filters | None = None) -> list[Point]:
        """``metrics`` at each ``step`` over ``span`` (every step, zeros included).
        Steps start on multiples of ``step`` since the epoch (UTC midnight for days)."""
        for metric in metrics:
            check_metric(metric)
        if step < 60 or step % 60:
            raise InvalidQuery("step must be a whole number of minutes")
        filters = filters or Filters()
        period = series_period(step)
        first = span.start - span.start % step
        by_bucket = await self._grouped(span, filters, metrics, ("bucket",),
                                        [(period, first, span.end)])
        steps: dict[int, Totals] = {}
        for (bucket,), totals in by_bucket.items():
            at = bucket - (bucket - first) % step
            into = steps.get(at)
            if into is None:
                steps[at] = totals
            else:
                into.merge(totals)
        points = []
        for at in range(first, span.end, step):
            totals = steps.get(at) or Totals()
            points.append(Point(at, {m: metric_value(m, totals) for m in metrics}))
        return points

    async def totals(self, span: TimeRange, filters: Filters | None = None,
                     with_histograms: bool = True) -> Totals:
        """Everything summed over ``span``."""
        metrics = ("p50",) if with_histograms else ()
        metrics = (*metrics, "upstream_p50") if with_histograms else metrics
        groups = await self._grouped(span, filters or Filters(), metrics, (), spans(span))
        return groups.get((), Totals())

    async def top(self, span: TimeRange, by: str, metric: str = "requests", limit: int = 10,
                  filters: Filters | None = None, extra: Sequence[str] = ()) -> list[Ranked]:
        """The ``limit`` values of dimension ``by`` with the largest ``metric`` over
        ``span`` (ties by name), each with ``metric`` and the ``extra`` metrics."""
        wanted = [check_metric(m) for m in (metric, *extra)]
        if not 1 <= limit <= 1000:
            raise InvalidQuery("limit must be 1..1000")
        filters = filters or Filters()
        groups = await self._grouped(span, filters, wanted, (by,), spans(span))
        ranked = [Ranked({by: group[0]}, {m: metric_value(m, totals) for m in wanted})
                  for group, totals in groups.items()]
        ranked.sort(key=lambda r: (-(r.values[metric] or 0), str(r.key[by])))
        return ranked[:limit]

    async def errors(self, span: TimeRange, filters: Filters | None = None,
                     limit: int = 100) -> list[Ranked]:
        """Requests by status and error class, for every status >= 400 (or 0) and
        every error class, largest first."""
        filters = filters or Filters()
        groups = await self._grouped(span, filters, ("requests",), ("status", "error"),
                                     spans(span))
        ranked = [Ranked({"status": status, "error": error or None},
                         {"requests": totals.get("requests"), "errors": totals.get("errors")})
                  for (status, error), totals in groups.items()
                  if status >= 400 or status == 0 or error]
        ranked.sort(key=lambda r: (-(r.values["requests"] or 0), r.key["status"]))
        return ranked[:limit]

