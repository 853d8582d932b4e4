"""The http sink: each batch POSTed to a collector as one JSON array (or NDJSON:
one object per line), the objects having :meth:`AccessRecord.as_dict`'s keys.

Encoding runs in a worker thread, so a large batch never holds the event loop;
delivery, gzip and retries are :mod:`._post`'s.  A batch the collector does not
take raises :class:`~._post.DeliveryError` and is counted by the writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from campusgate.config.observe_sinks import HttpSink
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks._encode import json_array, json_lines
from campusgate.observe.sinks._post import Sleep, poster_for, public_url
from campusgate.observe.sinks.base import Sink, SinkEnv

__all__ = ["RETRYABLE", "HttpRecordSink", "build"]

#: What a collector may answer that is worth another attempt.
RETRYABLE = frozenset({408, 429, *range(500, 600)})

_FORMATS = {"json": (json_array, "application/json"),
            "ndjson": (json_lines, "application/x-ndjson")}


class HttpRecordSink:
    def __init__(self, spec: HttpSink, *, sleep: Sleep | None = None) -> None:
        self.name = f"http:{public_url(spec.url)}"
        self.url = spec.url
        self._encode, self._content_type = _FORMATS[spec.format]
        self._poster = poster_for(spec, RETRYABLE, sleep)

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        if batch:
            body = await asyncio.to_thread(self._encode, batch)
            await self._poster.post(self.url, body, self._content_type)

    async def close(self) -> None:
        await self._poster.close()


def build(spec: HttpSink, env: SinkEnv) -> Sink:
    return HttpRecordSink(spec)
