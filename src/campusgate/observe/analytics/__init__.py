"""Analytics over the roll-ups, as a Python API (the admin API's ``/observe/analytics``
endpoints, ``campusgate top`` and the alerts read through it).

::

    analytics = Analytics(engine)                       # an AsyncEngine on the store
    span = parse_range(now=time.time(), last="24h")
    points = await analytics.series(span, parse_step("1h", span), ["requests", "p99"],
                                    Filters({"route": "roster-api"}))
    busiest = await analytics.top(span, by="consumer", metric="requests", limit=10)
    totals = await analytics.totals(span)               # sums + merged histograms
    breakdown = await analytics.errors(span)

``timerange`` parses ranges and steps, ``plan`` picks rows and computes metrics (both
sans-IO); ``query`` runs the reads.  Bad input raises :class:`InvalidQuery`.
"""

from campusgate.observe.analytics.plan import (
    DIMENSIONS,
    METRICS,
    Filters,
    Totals,
    metric_value,
)
from campusgate.observe.analytics.query import Analytics, Point, Ranked
from campusgate.observe.analytics.timerange import (
    InvalidQuery,
    TimeRange,
    parse_instant,
    parse_range,
    parse_step,
)

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "Analytics",
    "Filters",
    "InvalidQuery",
    "Point",
    "Ranked",
    "TimeRange",
    "Totals",
    "metric_value",
    "parse_instant",
    "parse_range",
    "parse_step",
]
