"""The ``access_records`` table: one row per request, written by the store sink
(:mod:`campusgate.observe.sinks.store`), read by log search and CSV export
(:mod:`campusgate.observe.logsearch`), pruned by :mod:`campusgate.observe.retention`.

Times are epoch **milliseconds** (``time_ms``, BigInteger): integer comparisons for the
range filters and an exact keyset cursor ``(time_ms, id)``.  Free text is ``Text``
(no length limit, so a long path or user agent never fails a whole batch on
PostgreSQL).  Two indexes only, because each is paid on every insert: ``(time_ms, id)``
(time ranges, newest first, the cursor) and ``request_id`` (the one-request lookup).
Searches by consumer, route, trace id... walk the time index newest first and stop at
the page size.  Measurements: "The store sink" in docs/observability.md.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, Table, Text

from campusgate.store.tables import metadata

__all__ = ["ACCESS_COLUMNS", "access_records"]

#: SQLite makes ``INTEGER PRIMARY KEY`` the rowid (no second index); BIGINT elsewhere.
_ID = BigInteger().with_variant(Integer(), "sqlite")

access_records = Table(
    "access_records",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("time_ms", BigInteger, nullable=False),
    Column("request_id", Text, nullable=False),
    Column("trace_id", Text, nullable=False),
    Column("span_id", Text, nullable=False),
    Column("parent_span_id", Text, nullable=True),
    Column("listener", Text, nullable=False),
    Column("worker", Integer, nullable=False),
    Column("route", Text, nullable=True),
    Column("service", Text, nullable=True),
    Column("upstream", Text, nullable=True),
    Column("consumer", Text, nullable=True),
    Column("credential", Text, nullable=True),
    Column("client_ip", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("bytes_in", BigInteger, nullable=False),
    Column("bytes_out", BigInteger, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("upstream_latency_ms", Float, nullable=True),
    Column("overhead_ms", Float, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("rate_limit", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("ai_provider", Text, nullable=True),
    Column("ai_model", Text, nullable=True),
    Column("ai_provider_model", Text, nullable=True),
    Column("ai_input_tokens", BigInteger, nullable=True),
    Column("ai_output_tokens", BigInteger, nullable=True),
    Column("ai_cached_tokens", BigInteger, nullable=True),
    #: USD as a decimal string, exactly as the record holds it.
    Column("ai_cost", Text, nullable=True),
    #: JSON object ``{"email": 2, ...}`` (counts only).
    Column("ai_redactions", Text, nullable=True),
    Column("request_body", Text, nullable=True),
    Column("response_body", Text, nullable=True),
    Index("ix_access_records_time", "time_ms", "id"),
    Index("ix_access_records_request_id", "request_id"),
)

#: The columns the sink writes, in order (all but ``id``).
ACCESS_COLUMNS: tuple[str, ...] = tuple(c.name for c in access_records.columns if c.name != "id")
