"""What every sink is to the batch writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from campusgate.observe.record import AccessRecord

__all__ = ["Sink", "SinkEnv"]


class Sink(Protocol):
    """A destination of access records.

    The writer calls ``write`` with each batch, in order, never concurrently for one
    sink, and ``close`` once at shutdown after the last batch.  A sink that fails
    raises (any ``Exception``): the writer logs it once per outage, counts the
    records as failed for that sink, and goes on -- one sink down never stops the
    others nor traffic.  A sink with its own retry/buffer policy keeps it inside.
    """

    #: Shown in logs and metrics, e.g. ``store``, ``file:/var/log/cg.jsonl``.
    name: str

    async def write(self, batch: Sequence[AccessRecord]) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SinkEnv:
    """What a sink may need of its worker, given to each sink module's
    ``build(spec, env) -> Sink`` factory."""

    #: The storage URL (``sqlite:///...`` or ``postgresql://...``), as configured.
    storage: str
    #: This worker, unique across restarts and nodes (``<host>:<pid>:<start time>``).
    worker_id: str
