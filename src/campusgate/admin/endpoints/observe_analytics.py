"""``/observe/analytics/*``: time series, top-N, percentiles and the error breakdown,
read from the roll-ups of every worker (see docs/observability.md).

Common query parameters: the range (``last=24h``, or ``start``/``end`` as ISO 8601 or
epoch seconds; default the last hour) and filters (``route``, ``service``,
``consumer``, ``model``, ``upstream``, ``status_class``, ``error``).  A bad parameter
is a 400 naming it.  ``/series`` answers CSV with ``format=csv`` (or as
``/series.csv``).

Queries run on the store's own engine (reads only).
"""

from __future__ import annotations

import csv
import io
import time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from campusgate.admin.auth import require_admin
from campusgate.admin.context import admin_context
from campusgate.admin.errors import BadRequest
from campusgate.admin.schemas import error_responses
from campusgate.observe.analytics import (
    METRICS,
    Analytics,
    Filters,
    InvalidQuery,
    TimeRange,
    parse_range,
    parse_step,
)

__all__ = ["build_router"]

_Last = Annotated[str | None, Query(description="Relative range ending now: 5m, 24h, 30d.")]
_Instant = Annotated[str | None, Query(description="ISO 8601 or epoch seconds.")]
_StatusClass = Annotated[int | None, Query(ge=0, le=5, description="1..5; 0: no answer.")]
_Metric = Annotated[str, Query(description="Comma-separated: " + ", ".join(METRICS))]
_Step = Annotated[str | None, Query(description="1m, 5m, 1h, 1d ... (whole minutes)")]


async def analytics(request: Request) -> Analytics:
    """FastAPI dependency: the app's :class:`Analytics`, over the store's own engine."""
    state = request.app.state
    existing = getattr(state, "observe_analytics", None)
    if existing is None:
        existing = state.observe_analytics = Analytics(admin_context(request).store.engine)
    return cast(Analytics, existing)


class Common:
    """The range and filters every analytics endpoint takes."""

    def __init__(
        self,
        last: _Last = None,
        start: _Instant = None,
        end: _Instant = None,
        route: str | None = None,
        service: str | None = None,
        consumer: str | None = None,
        model: str | None = None,
        upstream: str | None = None,
        error: Annotated[str | None, Query(description="Error class.")] = None,
        status_class: _StatusClass = None,
    ) -> None:
        try:
            self.span: TimeRange = parse_range(now=time.time(), last=last, start=start, end=end)
            values = {name: value for name, value in (
                ("route", route), ("service", service), ("consumer", consumer),
                ("model", model), ("upstream", upstream), ("error", error)) if value is not None}
            self.filters = Filters(values, status_class)
        except InvalidQuery as exc:
            raise BadRequest(str(exc)) from None

    def describe(self) -> dict[str, Any]:
        return {"start": self.span.start, "end": self.span.end,
                "filters": {**self.filters.values, **(
                    {} if self.filters.status_class is None
                    else {"status_class": self.filters.status_class})}}


def _metrics(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if not names or unknown:
        raise BadRequest(f"unknown metric(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(METRICS)}")
    return names


def _csv(points: list[dict[str, Any]], metrics: list[str]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", *metrics])
    for point in points:
        writer.writerow([point["time"], *("" if point["values"][m] is None else point["values"][m]
                                          for m in metrics)])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="series.csv"'})


Reader = Annotated[Analytics, Depends(analytics)]
Params = Annotated[Common, Depends()]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/observe/analytics", tags=["observe"],
                       dependencies=[Depends(require_admin)])

    async def series(reader: Analytics, params: Common, metric: str, step: str | None,
                     fmt: str) -> Any:
        metrics = _metrics(metric)
        try:
            seconds = parse_step(step, params.span)
            points = await reader.series(params.span, seconds, metrics, params.filters)
        except InvalidQuery as exc:
            raise BadRequest(str(exc)) from None
        rows = [{"time": p.time, "values": p.values} for p in points]
        if fmt == "csv":
            return _csv(rows, metrics)
        return {**params.describe(), "step": seconds, "metrics": metrics, "points": rows}

    @router.get("/series", summary="A time series of metrics at a step",
                responses=error_responses(400, 401))
    async def get_series(
        reader: Reader, params: Params,
        metric: _Metric = "requests",
        step: _Step = None,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    ) -> Any:
        return await series(reader, params, metric, step, format)

    @router.get("/series.csv", summary="A time series as CSV", responses=error_responses(400, 401))
    async def get_series_csv(
        reader: Reader, params: Params, metric: str = "requests", step: str | None = None,
    ) -> Any:
        return await series(reader, params, metric, step, "csv")

    @router.get("/top", summary="Top values of a dimension by a metric",
                responses=error_responses(400, 401))
    async def top(
        reader: Reader, params: Params,
        by: Annotated[str, Query(description="route, service, consumer, model, upstream, "
                                 "status or error")] = "route",
        metric: str = "requests",
        limit: Annotated[int, Query(ge=1, le=1000)] = 10,
        include: Annotated[str, Query(description="Further metrics to show")] = "",
    ) -> dict[str, Any]:
        extra = _metrics(include) if include.strip() else []
        try:
            ranked = await reader.top(params.span, by, metric, limit, params.filters, extra)
        except InvalidQuery as exc:
            raise BadRequest(str(exc)) from None
        return {**params.describe(), "by": by, "metric": metric,
                "items": [{**r.key, **r.values} for r in ranked]}

    @router.get("/percentiles", summary="Latency percentiles over a range",
                responses=error_responses(400, 401))
    async def percentiles(reader: Reader, params: Params) -> dict[str, Any]:
        from campusgate.observe.analytics import metric_value

        totals = await reader.totals(params.span, params.filters)
        names = ("p50", "p90", "p95", "p99", "latency_avg")
        upstream = ("upstream_p50", "upstream_p95", "upstream_p99", "upstream_latency_avg")
        return {**params.describe(), "requests": totals.get("requests"),
                "latency_ms": {n.removeprefix("latency_"): metric_value(n, totals) for n in names},
                "upstream_latency_ms": {n.removeprefix("upstream_").removeprefix("latency_"):
                                        metric_value(n, totals) for n in upstream}}

    @router.get("/errors", summary="Requests by status and error class",
                responses=error_responses(400, 401))
    async def errors(reader: Reader, params: Params,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        totals = await reader.totals(params.span, params.filters, with_histograms=False)
        ranked = await reader.errors(params.span, params.filters, limit)
        return {**params.describe(), "requests": totals.get("requests"),
                "errors": totals.get("errors"),
                "items": [{**r.key, "requests": r.values["requests"]} for r in ranked]}

    return router
