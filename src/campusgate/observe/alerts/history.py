"""The history of alerts (``alert_events``) and the evaluator's lease (``alert_lease``).

One worker evaluates the rules: the one holding the lease row ``rules`` in the store
every worker and node shares.  A worker takes the lease when it is free or expired
(``until`` past) and renews it at each evaluation; a worker that stops or dies lets it
expire after ``3 x interval`` and another takes over, reading which subjects are
firing from the history.  A store row rather than a state-backend key: it works the
same with ``state: memory`` (each worker's own state) and never lets two evaluate.

The history is read by the admin API from any worker: what is firing now is the
latest ``firing``/``resolved`` event of each rule and subject.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.store.alert_tables import alert_events, alert_lease
from campusgate.store.engine import writer

__all__ = ["AlertHistory"]

_LEASE = "rules"


def _event(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"id": row["id"], "time": row["time"], "rule": row["rule"], "kind": row["kind"],
            "state": row["state"], "severity": row["severity"],
            "subject": json.loads(row["dimensions"]), "message": row["message"],
            "value": row["value"], "baseline": row["baseline"], "threshold": row["threshold"],
            "details": json.loads(row["details"])}


class AlertHistory:
    """Reads and writes of the alerts' tables over an engine on the store."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, event: Mapping[str, Any]) -> int:
        """Append an event (the keys of :func:`_event` but ``id``); its id."""
        values = {"time": event["time"], "rule": event["rule"], "kind": event["kind"],
                  "state": event["state"], "severity": event["severity"],
                  "subject": event["key"][:500], "dimensions": json.dumps(event["subject"]),
                  "message": event["message"], "value": event.get("value"),
                  "baseline": event.get("baseline"), "threshold": event.get("threshold"),
                  "details": json.dumps(event.get("details", {}), default=str)}
        async with writer(self.engine).begin() as conn:
            result = await conn.execute(insert(alert_events).values(**values))
        key = result.inserted_primary_key
        return int(key[0]) if key is not None else 0

    async def events(self, *, rule: str | None = None, state: str | None = None,
                     since: float | None = None, before_id: int | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(alert_events).order_by(alert_events.c.id.desc()).limit(limit)
        if rule is not None:
            query = query.where(alert_events.c.rule == rule)
        if state is not None:
            query = query.where(alert_events.c.state == state)
        if since is not None:
            query = query.where(alert_events.c.time >= since)
        if before_id is not None:
            query = query.where(alert_events.c.id < before_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_event(row) for row in rows]

    async def firing(self) -> list[dict[str, Any]]:
        """The latest event of each rule and subject, where that event is ``firing``."""
        latest = (select(func.max(alert_events.c.id).label("id"))
                  .where(alert_events.c.state != "test")
                  .group_by(alert_events.c.rule, alert_events.c.subject).subquery())
        query = (select(alert_events).join(latest, alert_events.c.id == latest.c.id)
                 .where(alert_events.c.state == "firing").order_by(alert_events.c.id))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_event(row) for row in rows]

    async def prune(self, before: float) -> int:
        """Delete events older than ``before`` -- but never the one that says a
        subject is firing now."""
        keep = [event["id"] for event in await self.firing()]
        query = delete(alert_events).where(alert_events.c.time < before)
        if keep:
            query = query.where(alert_events.c.id.not_in(keep))
        async with writer(self.engine).begin() as conn:
            result = await conn.execute(query)
        return max(result.rowcount, 0)

    async def take_lease(self, holder: str, now: float, ttl: float) -> bool:
        """Take or renew the evaluator's lease; False when another worker holds it."""
        async with writer(self.engine).begin() as conn:
            result = await conn.execute(
                update(alert_lease)
                .where(alert_lease.c.name == _LEASE,
                       or_(alert_lease.c.holder == holder, alert_lease.c.until < now))
                .values(holder=holder, until=now + ttl))
            if result.rowcount:
                return True
        try:
            async with writer(self.engine).begin() as conn:
                await conn.execute(insert(alert_lease).values(name=_LEASE, holder=holder,
                                                              until=now + ttl))
        except IntegrityError:
            return False  # another worker holds it (or took it just now)
        return True

    async def release_lease(self, holder: str) -> None:
        async with writer(self.engine).begin() as conn:
            await conn.execute(delete(alert_lease).where(alert_lease.c.name == _LEASE,
                                                         alert_lease.c.holder == holder))
