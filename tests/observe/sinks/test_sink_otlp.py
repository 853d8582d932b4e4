"""The otlp sink against a real local OTLP/HTTP receiver: the JSON of
``/v1/logs`` and ``/v1/traces`` checked against the field names of
opentelemetry-proto's JSON mapping (a small JSON schema), spans and their parents,
retries on the statuses OTLP calls retryable."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from campusgate.config.observe_sinks import OtlpSink
from campusgate.observe.sinks._post import DeliveryError
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.otlp import OtlpRecordSink, build, client_span_id

ENV = SinkEnv(storage="sqlite:///unused.db", worker_id="gw-1:4242:1700000000")

HEX32 = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
HEX16 = {"type": "string", "pattern": "^[0-9a-f]{16}$"}
NANOS = {"type": "string", "pattern": "^[0-9]{19}$"}
ANY_VALUE = {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {
    "stringValue": {"type": "string"}, "boolValue": {"type": "boolean"},
    "intValue": {"type": "string", "pattern": "^-?[0-9]+$"},
    "doubleValue": {"type": "number"}}, "additionalProperties": False}
ATTRIBUTES = {"type": "array", "items": {
    "type": "object", "required": ["key", "value"], "additionalProperties": False,
    "properties": {"key": {"type": "string", "minLength": 1}, "value": ANY_VALUE}}}
RESOURCE = {"type": "object", "required": ["attributes"], "additionalProperties": False,
            "properties": {"attributes": ATTRIBUTES}}
SCOPE = {"type": "object", "required": ["name"], "additionalProperties": False,
         "properties": {"name": {"type": "string"}, "version": {"type": "string"}}}


def envelope(outer: str, middle: str, inner: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [outer], "additionalProperties": False,
            "properties": {outer: {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["resource", middle],
                "additionalProperties": False, "properties": {
                    "resource": RESOURCE, middle: {"type": "array", "items": {
                        "type": "object", "required": ["scope", inner],
                        "additionalProperties": False, "properties": {
                            "scope": SCOPE, inner: {"type": "array", "items": item}}}}}}}}}


LOG_RECORD = {"type": "object", "additionalProperties": False,
              "required": ["timeUnixNano", "severityNumber", "body", "attributes",
                           "traceId", "spanId"],
              "properties": {"timeUnixNano": NANOS, "observedTimeUnixNano": NANOS,
                             "severityNumber": {"enum": [9, 13]},
                             "severityText": {"enum": ["INFO", "WARN"]},
                             "body": ANY_VALUE, "attributes": ATTRIBUTES,
                             "traceId": HEX32, "spanId": HEX16}}
SPAN = {"type": "object", "additionalProperties": False,
        "required": ["traceId", "spanId", "name", "kind", "startTimeUnixNano",
                     "endTimeUnixNano", "attributes"],
        "properties": {"traceId": HEX32, "spanId": HEX16, "parentSpanId": HEX16,
                       "name": {"type": "string"}, "kind": {"enum": [2, 3]},
                       "startTimeUnixNano": NANOS, "endTimeUnixNano": NANOS,
                       "attributes": ATTRIBUTES,
                       "status": {"type": "object", "additionalProperties": False,
                                  "required": ["code"],
                                  "properties": {"code": {"enum": [0, 1, 2]},
                                                 "message": {"type": "string"}}}}}
LOGS_SCHEMA = envelope("resourceLogs", "scopeLogs", "logRecords", LOG_RECORD)
TRACES_SCHEMA = envelope("resourceSpans", "scopeSpans", "spans", SPAN)


def attrs(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in items}


def spec(endpoint: str, **settings: Any) -> OtlpSink:
    return OtlpSink.model_validate({"type": "otlp", "endpoint": endpoint, **settings})


async def test_logs_and_spans_reach_the_collector_in_otlp_json(collector: Any,
                                                               make_record: Any) -> None:
    sink = build(spec(collector.url + "/", headers={"x-api-key": "k"},
                      service_name="campus-gw"), ENV)
    plain = make_record(0, ai_provider="openai", ai_model="gpt-fast",
                        ai_input_tokens=12, ai_output_tokens=30, ai_cost="0.0004",
                        ai_redactions={"email": 1})
    failing = make_record(1, status=502, error="upstream_refused", parent_span_id=None)
    local = make_record(2, status=401, upstream=None, upstream_latency_ms=None)
    await sink.write([plain, failing, local])
    await sink.close()
    logs, traces = collector.requests
    assert (logs.path, traces.path) == ("/v1/logs", "/v1/traces")
    assert logs.headers["content-type"] == "application/json"
    assert logs.headers["x-api-key"] == "k"

    logs_doc, traces_doc = json.loads(logs.body), json.loads(traces.body)
    jsonschema.validate(logs_doc, LOGS_SCHEMA)
    jsonschema.validate(traces_doc, TRACES_SCHEMA)
    resource = attrs(logs_doc["resourceLogs"][0]["resource"]["attributes"])
    assert resource["service.name"] == "campus-gw"
    assert resource["service.instance.id"] == ENV.worker_id

    records = logs_doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert [r["severityNumber"] for r in records] == [9, 13, 9]
    first = records[0]
    assert first["timeUnixNano"] == "1700000000250000000"
    assert (first["traceId"], first["spanId"]) == (plain.trace_id, plain.span_id)
    assert first["body"] == {"stringValue": "GET /roster/classes 200"}
    got = attrs(first["attributes"])
    assert got["http.request.method"] == "GET" and got["url.path"] == "/roster/classes"
    assert got["http.response.status_code"] == "200" and got["http.route"] == "roster-api"
    assert got["client.address"] == "10.0.0.7" and got["campusgate.consumer"] == "district-app"
    assert got["gen_ai.usage.input_tokens"] == "12" and got["gen_ai.request.model"] == "gpt-fast"
    assert got["campusgate.ai.redactions.email"] == "1"
    assert got["campusgate.latency_ms"] == 12.5

    spans = traces_doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    by_id = {s["spanId"]: s for s in spans}
    assert len(spans) == 5  # two requests called an upstream: SERVER + CLIENT; one did not
    server = by_id[plain.span_id]
    assert server["kind"] == 2 and server["name"] == "GET roster-api"
    assert server["parentSpanId"] == plain.parent_span_id and "status" not in server
    assert int(server["endTimeUnixNano"]) - int(server["startTimeUnixNano"]) == 12_500_000
    client = by_id[client_span_id(plain.span_id)]
    assert client["kind"] == 3 and client["parentSpanId"] == plain.span_id
    assert client["traceId"] == plain.trace_id
    assert client["endTimeUnixNano"] == server["endTimeUnixNano"]
    assert int(client["endTimeUnixNano"]) - int(client["startTimeUnixNano"]) == 10_000_000
    assert attrs(client["attributes"])["server.address"] == "127.0.0.1"
    assert attrs(client["attributes"])["server.port"] == "9000"
    failed = by_id[failing.span_id]
    assert "parentSpanId" not in failed
    assert failed["status"] == {"code": 2, "message": "upstream_refused"}
    assert by_id[client_span_id(failing.span_id)]["status"]["code"] == 2
    assert client_span_id(local.span_id) not in by_id


async def test_only_the_signals_asked_for(collector: Any, make_record: Any) -> None:
    sink = build(spec(collector.url, logs=False), ENV)
    await sink.write([make_record(0)])
    await sink.close()
    assert [r.path for r in collector.requests] == ["/v1/traces"]


async def test_retryable_statuses_per_otlp(collector: Any, make_record: Any,
                                           sleeps: Any) -> None:
    collector.script.extend([(503, {"Retry-After": "2"}), (200, {}), (500, {})])
    sink = OtlpRecordSink(spec(collector.url), ENV.worker_id, sleep=sleeps)
    with pytest.raises(DeliveryError, match="v1/traces refused the batch: HTTP 500"):
        await sink.write([make_record(0)])  # logs: 503 then 200; traces: 500, not retried
    await sink.close()
    assert [r.path for r in collector.requests] == ["/v1/logs", "/v1/logs", "/v1/traces"]
    assert sleeps.waits == [2]


async def test_a_failed_signal_does_not_stop_the_other(collector: Any, make_record: Any,
                                                      sleeps: Any) -> None:
    collector.script.append((400, {}))
    sink = OtlpRecordSink(spec(collector.url), ENV.worker_id, sleep=sleeps)
    with pytest.raises(DeliveryError, match="v1/logs"):
        await sink.write([make_record(0)])
    await sink.close()
    assert [r.path for r in collector.requests] == ["/v1/logs", "/v1/traces"]


def test_client_span_ids_are_distinct_and_stable() -> None:
    ids = [f"{n:016x}" for n in range(1, 1000)]
    derived = {client_span_id(i) for i in ids}
    assert len(derived) == len(ids) and not derived & set(ids)
    assert client_span_id("00f067aa0ba902b7") == client_span_id("00f067aa0ba902b7")


def test_tls_settings_need_an_https_endpoint(tls_files: Any) -> None:
    with pytest.raises(ValueError, match="need an https:// url"):
        spec("http://collector.test:4318", tls={"ca_file": tls_files.ca_file})
    secured = spec("https://collector.test:4318", tls={"ca_file": tls_files.ca_file})
    assert secured.tls is not None and secured.tls.ca_file == tls_files.ca_file
