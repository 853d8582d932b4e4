"""The ``rollups`` table: access records summed per minute, hour and day.

Written by :mod:`campusgate.observe.rollup` (each worker its own rows, ``worker_id``),
read and merged across workers by :mod:`campusgate.observe.analytics`.  Times are
epoch seconds (``bucket``: the start of the minute/hour/day, UTC), latencies
milliseconds, cost nano-USD (an integer: exact sums of the records' decimal costs).

``dims`` says which dimensions a row is grouped by (a bit mask, see
:data:`campusgate.observe.rollup.DIMS`): 63 is every dimension; the narrower
"grouping sets" (0 = the total, 1 = per route, 4 = per consumer, 32 = per status and
error class, ...) hold the same sums pre-merged so that long ranges read few rows.
A dimension a row is not grouped by, or a record did not have, is ``''``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from campusgate.store.tables import metadata

__all__ = ["rollups"]

rollups = Table(
    "rollups",
    metadata,
    #: 60, 3600 or 86400.
    Column("period", Integer, primary_key=True, autoincrement=False),
    Column("dims", Integer, primary_key=True, autoincrement=False),
    Column("bucket", BigInteger, primary_key=True, autoincrement=False),
    Column("worker_id", String(200), primary_key=True),
    Column("route", String(200), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("consumer", String(200), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("upstream", String(300), primary_key=True),
    #: The HTTP status (0: no answer was sent), and the error class ('' for none).
    Column("status", Integer, primary_key=True, autoincrement=False),
    Column("error", String(64), primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("rate_limited", BigInteger, nullable=False),
    Column("bytes_in", BigInteger, nullable=False),
    Column("bytes_out", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost_nanousd", BigInteger, nullable=False),
    Column("latency_sum_ms", Float, nullable=False),
    #: Requests that called an upstream, and the sum of their upstream latencies.
    Column("upstream_requests", BigInteger, nullable=False),
    Column("upstream_sum_ms", Float, nullable=False),
    #: Latency histograms (:mod:`campusgate.observe.histogram`'s sparse text).
    Column("latency", Text, nullable=False),
    Column("upstream_latency", Text, nullable=False),
    Index("ix_rollups_route", "period", "dims", "route", "bucket"),
    Index("ix_rollups_consumer", "period", "dims", "consumer", "bucket"),
)
