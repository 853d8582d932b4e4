"""The alerts' tables: the history of alert events, and the lease that makes one
worker (of every worker and node sharing the store) the one that evaluates the rules.

Times are epoch seconds (``Float``): few rows, read by people, compared in seconds.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from campusgate.store.tables import metadata

__all__ = ["alert_events", "alert_lease"]

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("rule", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    #: ``firing``, ``resolved`` or ``test``.
    Column("state", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    #: The subject's key (``route=roster``) and its dimensions as JSON.
    Column("subject", String(500), nullable=False),
    Column("dimensions", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("value", Float, nullable=True),
    Column("baseline", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    #: The finding's details as JSON.
    Column("details", Text, nullable=False),
    Index("ix_alert_events_time", "time"),
    Index("ix_alert_events_rule", "rule", "subject", "time"),
)

alert_lease = Table(
    "alert_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    #: The worker id holding the lease, until ``until`` (epoch seconds).
    Column("holder", String(200), nullable=False),
    Column("until", Float, nullable=False),
)
