"""The otlp sink: access records to an OpenTelemetry collector over OTLP/HTTP with
the JSON encoding (``POST {endpoint}/v1/logs`` and ``{endpoint}/v1/traces``).

The payloads are built by hand (plain dicts, one ``json`` call per batch, in a
worker thread) rather than through the OpenTelemetry SDK: the SDK would rebuild
every record as its own span and log objects, run them through its processors and
exporters on this worker's CPU, and bring a dependency tree along, for JSON that is
a few dozen lines to write.  Field names follow opentelemetry-proto's JSON mapping:
lowerCamelCase keys, trace and span ids as hex strings, 64-bit integers (times in
unix nanoseconds, ``intValue``) as decimal strings, enums as numbers.

- **Logs**: one log record per access record: the time, severity INFO (WARN for a
  5xx or an error class), a short body (``GET /path 200``), the attributes below,
  and the request's trace and span ids.
- **Traces**: one SERVER span per request -- the gateway's span id, the caller's span
  as parent, from arrival to arrival + latency, status ERROR for a 5xx -- and, when
  an upstream was called, a CLIENT child span for that call.  Its id is derived from
  the SERVER span's (:func:`client_span_id`); it ends with the request (the answer
  streams through) and starts ``upstream_latency_ms`` earlier.  The upstream itself
  is told the SERVER span as its parent (``observe/tracing.py``), so its own spans
  show beside the CLIENT span, under the gateway's SERVER span.
- Attributes follow the OpenTelemetry semantic conventions where one exists
  (``http.request.method``, ``url.path``, ``http.response.status_code``,
  ``http.route`` -- the route's name --, ``server.address``, ``client.address``,
  ``user_agent.original``, ``gen_ai.*`` for AI calls) and ``campusgate.*`` else.

Delivery, gzip and retries (429, 502, 503, 504, as OTLP/HTTP says) are :mod:`._post`'s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from campusgate import __version__
from campusgate.config.observe_sinks import OtlpSink
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks._post import DeliveryError, Sleep, poster_for, public_url
from campusgate.observe.sinks.base import Sink, SinkEnv

__all__ = ["RETRYABLE", "OtlpRecordSink", "build", "client_span_id", "logs_payload",
           "record_attributes", "traces_payload"]

RETRYABLE = frozenset({429, 502, 503, 504})
SCOPE = {"name": "campusgate.observe", "version": __version__}
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3
STATUS_ERROR = 2
SEVERITY_INFO, SEVERITY_WARN = 9, 13
#: XORed into a SERVER span id to name its CLIENT child: a bijection, so two
#: requests never share a CLIENT span id, and anyone holding the SERVER id finds it.
_CLIENT_MASK = 0x636C69656E740001

#: (attribute key, record field) for the plain fields, in output order.
_ATTRIBUTES = (
    ("http.request.method", "method"), ("url.path", "path"),
    ("http.response.status_code", "status"), ("http.route", "route"),
    ("server.address", "host"), ("client.address", "client_ip"),
    ("user_agent.original", "user_agent"),
    ("campusgate.request_id", "request_id"), ("campusgate.listener", "listener"),
    ("campusgate.service", "service"), ("campusgate.upstream", "upstream"),
    ("campusgate.consumer", "consumer"), ("campusgate.credential", "credential"),
    ("campusgate.bytes_in", "bytes_in"), ("campusgate.bytes_out", "bytes_out"),
    ("campusgate.latency_ms", "latency_ms"),
    ("campusgate.upstream_latency_ms", "upstream_latency_ms"),
    ("campusgate.overhead_ms", "overhead_ms"), ("campusgate.retries", "retries"),
    ("campusgate.rate_limit", "rate_limit"), ("error.type", "error"),
    ("gen_ai.system", "ai_provider"), ("gen_ai.request.model", "ai_model"),
    ("gen_ai.response.model", "ai_provider_model"),
    ("gen_ai.usage.input_tokens", "ai_input_tokens"),
    ("gen_ai.usage.output_tokens", "ai_output_tokens"),
    ("campusgate.ai.cached_tokens", "ai_cached_tokens"),
    ("campusgate.ai.cost_usd", "ai_cost"),
)


def client_span_id(span_id: str) -> str:
    """The CLIENT span id of the upstream call of the request whose SERVER span is
    ``span_id`` (16 hex)."""
    return f"{(int(span_id, 16) ^ _CLIENT_MASK) or 1:016x}"


def _value(value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def record_attributes(record: AccessRecord) -> list[dict[str, Any]]:
    """The OTLP ``KeyValue`` list of a record (fields without a value left out)."""
    attributes = [{"key": key, "value": _value(value)} for key, name in _ATTRIBUTES
                  if (value := getattr(record, name)) is not None]
    if record.ai_redactions:
        attributes.extend({"key": f"campusgate.ai.redactions.{kind}",
                           "value": {"intValue": str(count)}}
                          for kind, count in record.ai_redactions.items())
    return attributes


def _nanos(seconds: float) -> int:
    return int(seconds * 1_000_000) * 1000  # whole microseconds: what a float holds


def _resource(service_name: str, worker_id: str) -> dict[str, Any]:
    return {"attributes": [
        {"key": "service.name", "value": {"stringValue": service_name}},
        {"key": "service.version", "value": {"stringValue": __version__}},
        {"key": "service.instance.id", "value": {"stringValue": worker_id}},
    ]}


def _failed(record: AccessRecord) -> bool:
    return record.status >= 500 or record.error is not None


def logs_payload(batch: Sequence[AccessRecord], resource: dict[str, Any]) -> dict[str, Any]:
    """An ``ExportLogsServiceRequest`` of the batch."""
    logs = []
    for r in batch:
        nanos = str(_nanos(r.time))
        warn = _failed(r)
        logs.append({
            "timeUnixNano": nanos, "observedTimeUnixNano": nanos,
            "severityNumber": SEVERITY_WARN if warn else SEVERITY_INFO,
            "severityText": "WARN" if warn else "INFO",
            "body": {"stringValue": f"{r.method} {r.path} {r.status}"},
            "attributes": record_attributes(r),
            "traceId": r.trace_id, "spanId": r.span_id,
        })
    return {"resourceLogs": [{"resource": resource,
                              "scopeLogs": [{"scope": SCOPE, "logRecords": logs}]}]}


def _spans(r: AccessRecord) -> list[dict[str, Any]]:
    start = _nanos(r.time)
    end = start + int(r.latency_ms * 1_000_000)
    server: dict[str, Any] = {
        "traceId": r.trace_id, "spanId": r.span_id,
        "name": f"{r.method} {r.route}" if r.route else r.method,
        "kind": SPAN_KIND_SERVER,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
        "attributes": record_attributes(r),
    }
    if r.status >= 500:
        server["status"] = {"code": STATUS_ERROR, "message": r.error or f"HTTP {r.status}"}
    if r.parent_span_id:
        server["parentSpanId"] = r.parent_span_id
    if r.upstream_latency_ms is None:
        return [server]
    host, _, port = (r.upstream or "").rpartition(":")
    target = ([{"key": "server.address", "value": {"stringValue": host}},
               {"key": "server.port", "value": {"intValue": port}}] if port.isdigit()
              else [{"key": "server.address", "value": {"stringValue": r.upstream}}]
              if r.upstream else [])
    client: dict[str, Any] = {
        "traceId": r.trace_id, "spanId": client_span_id(r.span_id),
        "parentSpanId": r.span_id, "name": r.method, "kind": SPAN_KIND_CLIENT,
        "startTimeUnixNano": str(max(start, end - int(r.upstream_latency_ms * 1_000_000))),
        "endTimeUnixNano": str(end),
        "attributes": [{"key": "http.request.method", "value": {"stringValue": r.method}},
                       *target,
                       {"key": "campusgate.retries", "value": {"intValue": str(r.retries)}}],
    }
    if "status" in server:
        client["status"] = server["status"]
    return [server, client]


def traces_payload(batch: Sequence[AccessRecord], resource: dict[str, Any]) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` of the batch (records without valid ids are
    left out)."""
    spans = [span for r in batch if len(r.trace_id) == 32 and len(r.span_id) == 16
             for span in _spans(r)]
    return {"resourceSpans": [{"resource": resource,
                               "scopeSpans": [{"scope": SCOPE, "spans": spans}]}]}


_Payload = Callable[[Sequence[AccessRecord], dict[str, Any]], dict[str, Any]]


class OtlpRecordSink:
    def __init__(self, spec: OtlpSink, worker_id: str, *, sleep: Sleep | None = None) -> None:
        self.name = f"otlp:{public_url(spec.endpoint)}"
        self.spec = spec
        self._resource = _resource(spec.service_name, worker_id)
        self._poster = poster_for(spec, RETRYABLE, sleep)
        signals: tuple[tuple[str, _Payload, bool], ...] = (
            ("logs", logs_payload, spec.logs), ("traces", traces_payload, spec.traces))
        self._signals = [(f"{spec.endpoint}/v1/{path}", payload)
                         for path, payload, on in signals if on]

    def _body(self, payload: _Payload, batch: Sequence[AccessRecord]) -> bytes:
        return json.dumps(payload(batch, self._resource), separators=(",", ":")).encode()

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        """Logs, then traces; both are tried, the first failure is raised."""
        failure: Exception | None = None
        for url, payload in self._signals if batch else ():
            body = await asyncio.to_thread(self._body, payload, batch)
            try:
                await self._poster.post(url, body, "application/json")
            except DeliveryError as exc:  # raised below, once the other signal is tried
                failure = failure or exc
        if failure is not None:
            raise failure

    async def close(self) -> None:
        await self._poster.close()


def build(spec: OtlpSink, env: SinkEnv) -> Sink:
    return OtlpRecordSink(spec, env.worker_id)
