"""The access-record tables, written by the store sink
(:mod:`campusgate.observe.sinks.store`), read by log search and CSV export
(:mod:`campusgate.observe.logsearch`), pruned by :mod:`campusgate.observe.retention`.

Records are kept in **segments** (:mod:`campusgate.observe.segments`): one
``access_segments`` row per batch the log writer flushes, its records in one
compressed body.  ``access_request_ids`` holds only the request ids a segment cannot be
found by (a client's own ``X-Request-Id``), one row each.  Times are epoch
**milliseconds** (BigInteger).  Indexes: ``(time_max_ms, id)`` (newest first, time
ranges, retention), ``access_request_ids.request_id`` (lookups) and
``access_request_ids.time_ms`` (retention).  Why segments and what they
cost: "The store sink" in docs/observability.md.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Table, Text

from campusgate.observe.record import FIELDS
from campusgate.store.tables import metadata

__all__ = ["ACCESS_COLUMNS", "access_request_ids", "access_segments"]

#: SQLite makes ``INTEGER PRIMARY KEY`` the rowid (no second index); BIGINT elsewhere.
_ID = BigInteger().with_variant(Integer(), "sqlite")

access_segments = Table(
    "access_segments",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("time_min_ms", BigInteger, nullable=False),
    Column("time_max_ms", BigInteger, nullable=False),
    Column("records", Integer, nullable=False),
    Column("rid_min", Text, nullable=True),
    Column("rid_max", Text, nullable=True),
    Column("terms", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_access_segments_time", "time_max_ms", "id"),
)

access_request_ids = Table(
    "access_request_ids",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("request_id", Text, nullable=False),
    Column("segment_id", BigInteger, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Index("ix_access_request_ids_request_id", "request_id"),
    Index("ix_access_request_ids_time", "time_ms"),  # retention deletes by time
)

#: A record's columns as log search and the CSV export show them: ``time_ms`` (epoch
#: milliseconds) then every other field of the record.
ACCESS_COLUMNS: tuple[str, ...] = ("time_ms", *(name for name in FIELDS if name != "time"))
