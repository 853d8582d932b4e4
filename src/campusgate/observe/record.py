"""The access record: what one request did, in plain values.

The log writer holds a batch of them as columns (:class:`~campusgate.observe.batch.
RecordBatch`, which the store sink, the roll-ups and the metrics read) and builds
these objects only for the sinks that write records one by one; they are never
changed afterwards, and every such sink shares the same object.  A named tuple, not
a dataclass: a tuple is built by one C call from its values (a dataclass's
``__init__`` is a Python frame storing 36 attributes), and a batch's columns are its
fields in order (:data:`FIELDS`).

It holds no secret (a credential is its id, a query string is not kept) and no body
unless the route opted in (``log-bodies``), with the redaction rules applied.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["FIELDS", "AccessRecord", "status_class"]


class AccessRecord(NamedTuple):
    #: Wall-clock time the request arrived (epoch seconds).
    time: float
    request_id: str
    #: W3C trace id (32 hex) and the gateway's own span id (16 hex); the parent span
    #: is the caller's, from its ``traceparent`` (None when a new trace was started).
    trace_id: str
    span_id: str
    parent_span_id: str | None
    #: ``proxy`` (the data plane's listener); the worker's process id.
    listener: str
    worker: int
    route: str | None
    service: str | None
    #: The upstream target that answered (``host:port``), or the AI provider's name.
    upstream: str | None
    consumer: str | None
    #: The credential's id (never its secret).
    credential: str | None
    client_ip: str
    method: str
    host: str
    #: The path only: a query string may carry secrets and is not kept.
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    #: Total time from the request's head to the last byte of the answer.
    latency_ms: float
    #: From the upstream request written to the upstream answer's last byte (None
    #: when no upstream was called).
    upstream_latency_ms: float | None
    #: ``latency_ms`` minus ``upstream_latency_ms``: what the gateway itself cost.
    overhead_ms: float
    #: Further upstream attempts after the first.
    retries: int
    #: None (no rate limit on the route), ``allowed`` or ``limited``.
    rate_limit: str | None
    #: None for a success; else a short class: see ``capture.ERROR_CLASSES``.
    error: str | None
    user_agent: str | None = None
    # ---- AI calls (None otherwise)
    ai_provider: str | None = None
    #: The model name the client sent, and the provider's model that served it.
    ai_model: str | None = None
    ai_provider_model: str | None = None
    ai_input_tokens: int | None = None
    ai_output_tokens: int | None = None
    ai_cached_tokens: int | None = None
    #: USD as a decimal string (None when the price is unknown).
    ai_cost: str | None = None
    #: What redaction replaced, by kind (counts only, never the values).
    ai_redactions: dict[str, int] | None = None
    # ---- bodies, only for routes that opt in (``log-bodies``), capped and redacted
    request_body: str | None = None
    response_body: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (sinks that speak JSON)."""
        return self._asdict()


#: Field names in declaration order (column order for sinks that write rows).
FIELDS: tuple[str, ...] = AccessRecord._fields


def status_class(status: int) -> int:
    """1..5 for 1xx..5xx (0 when no status was sent, e.g. the client left first)."""
    return status // 100 if 100 <= status < 600 else 0
