"""One access record per request, on every path, with what the request did.

A real gateway on 127.0.0.1 (the proxy harness) whose records go to a list, and real
upstreams: the callback fast path, the task path with plugins, local 404/405, plugin
401/429, an upstream that is down (502), an ASGI app, W3C traceparent in and out,
and requests the connection refuses before routing (400, 408, 413, 414).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from gateway_harness import HttpUpstream, RawClient, RunningGateway, http, start_gateway

from campusgate.config.bootstrap import Limits
from campusgate.observe.capture import ERROR_CLASSES, Capture
from campusgate.observe.queue import RecordQueue
from campusgate.observe.record import AccessRecord
from campusgate.observe.tracing import start_trace
from campusgate.proxy.context import RequestContext

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
KEY = [(b"apikey", b"ann-key-0123456789")]


class Recorder:
    """A gateway's ``record`` callable: keeps the contexts, builds their records."""

    def __init__(self) -> None:
        self.contexts: list[RequestContext] = []
        self.capture = Capture("proxy")

    def __call__(self, ctx: RequestContext) -> None:
        self.contexts.append(ctx)

    def take(self) -> list[AccessRecord]:
        records = self.capture.records(self.contexts)
        self.contexts.clear()
        return records


@pytest.fixture
async def setup() -> AsyncIterator[Callable[..., Any]]:
    made: list[Any] = []

    async def make(entities: dict[str, Any]) -> tuple[RunningGateway, Recorder]:
        gw = await start_gateway(entities)
        recorder = Recorder()
        gw.finished(recorder)
        made.append(gw)
        return gw, recorder

    yield make
    for gw in made:
        await gw.close()


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    up = await HttpUpstream().start()
    yield up
    await up.close()


def _services(up: HttpUpstream, **route: Any) -> dict[str, Any]:
    return {"services": [
        {"name": "plain", "url": f"http://{up.address}",
         "routes": [{"name": "plain-r", "paths": ["/plain"], **route}]},
        {"name": "guarded", "url": f"http://{up.address}",
         "routes": [{"name": "guarded-r", "paths": ["/guarded"]}],
         "plugins": [{"name": "key-auth"},
                     {"name": "rate-limit",
                      "config": {"limits": [{"window": "1m", "limit": 1}],
                                 "by": "consumer"}}]},
        {"name": "down", "url": "http://127.0.0.1:9",  # nothing listens on discard
         "routes": [{"name": "down-r", "paths": ["/down"]}]},
        {"name": "app", "url": "builtin://echo",
         "routes": [{"name": "app-r", "paths": ["/app"]}]},
    ], "consumers": [{"name": "ann", "credentials": [
        {"type": "key-auth", "key": "ann-key-0123456789"}]}]}


async def test_fast_and_task_paths_each_yield_a_full_record(
        setup: Callable[..., Any], upstream: HttpUpstream) -> None:
    gw, recorder = await setup(_services(upstream))
    first = await http(gw.port, "GET", "/plain/a?secret=1", [(b"user-agent", b"t/1")])
    second = await http(gw.port, "GET", "/plain/b")  # a pooled connection: the fast path
    assert first.status == second.status == 200
    records = recorder.take()
    assert len(records) == 2
    for record, resp in zip(records, (first, second), strict=True):
        assert record.request_id == resp.header("x-request-id")
        assert record.route == "plain-r" and record.service == "plain"
        assert record.upstream == upstream.address
        assert record.status == 200 and record.error is None
        assert record.listener == "proxy" and record.method == "GET"
        assert record.bytes_out > len(resp.body) and record.bytes_in > 20
        assert record.upstream_latency_ms is not None
        assert 0 <= record.upstream_latency_ms <= record.latency_ms
        assert record.overhead_ms == pytest.approx(record.latency_ms
                                                   - record.upstream_latency_ms)
        assert record.retries == 0 and record.rate_limit is None
        assert len(record.trace_id) == 32 and len(record.span_id) == 16
    assert records[0].path == "/plain/a"  # the query string (secrets) is not kept
    assert records[0].user_agent == "t/1"
    assert records[1].time >= records[0].time


async def test_plugins_local_answers_and_failures_are_classified(
        setup: Callable[..., Any], upstream: HttpUpstream) -> None:
    gw, recorder = await setup(_services(upstream))
    got = [await http(gw.port, "GET", "/guarded"),  # no key: 401
           await http(gw.port, "GET", "/guarded", KEY),  # allowed
           await http(gw.port, "GET", "/guarded", KEY),  # limited: 429
           await http(gw.port, "GET", "/nowhere"),
           await http(gw.port, "GET", "/down"),
           await http(gw.port, "GET", "/app/hello")]
    assert [r.status for r in got] == [401, 200, 429, 404, 502, 200]
    records = recorder.take()
    assert [(r.status, r.error) for r in records] == [
        (401, "auth"), (200, None), (429, "rate_limited"), (404, "no_route"),
        (502, "upstream_connect"), (200, None)]
    assert all(r.error is None or r.error in ERROR_CLASSES for r in records)
    assert [r.rate_limit for r in records[:3]] == [None, "allowed", "limited"]
    assert records[1].consumer == "ann" and records[1].credential is not None
    assert "0123456789" not in str(records[1].as_dict())  # never the key itself
    assert records[3].route is None and records[3].upstream_latency_ms is None
    assert records[4].upstream == "127.0.0.1:9"
    assert records[5].route == "app-r" and records[5].upstream_latency_ms is None
    assert [r.request_id for r in records] == [r.header("x-request-id") for r in got]


async def test_retries_are_counted(setup: Callable[..., Any]) -> None:
    answers = iter([b"HTTP/1.1 503 X\r\ncontent-length: 0\r\n\r\n",
                    b"HTTP/1.1 200 X\r\ncontent-length: 2\r\n\r\nok"])

    async def handler(req: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(next(answers))

    up = await HttpUpstream(handler).start()
    try:
        gw, recorder = await setup({"services": [
            {"name": "flaky", "url": f"http://{up.address}",
             "retries": {"count": 2, "on_statuses": [503]},
             "routes": [{"name": "flaky-r", "paths": ["/flaky"]}]}]})
        assert (await http(gw.port, "GET", "/flaky")).status == 200
        [record] = recorder.take()
        assert record.retries == 1 and record.error is None
    finally:
        await up.close()


async def test_an_upstream_5xx_is_its_own_class(setup: Callable[..., Any]) -> None:
    async def handler(req: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 500 X\r\ncontent-length: 0\r\n\r\n")

    up = await HttpUpstream(handler).start()
    try:
        gw, recorder = await setup({"services": [
            {"name": "s", "url": f"http://{up.address}",
             "routes": [{"name": "r", "paths": ["/s"]}]}]})
        assert (await http(gw.port, "GET", "/s")).status == 500
        assert [r.error for r in recorder.take()] == ["upstream_status"]
    finally:
        await up.close()


async def test_a_valid_traceparent_is_continued_upstream(
        setup: Callable[..., Any], upstream: HttpUpstream) -> None:
    gw, recorder = await setup(_services(upstream))
    incoming = f"00-{TRACE}-{PARENT}-01"
    for path in ("/plain/1", "/plain/2"):  # the task path, then the fast path
        await http(gw.port, "GET", path, [(b"traceparent", incoming.encode()),
                                          (b"tracestate", b"vendor=x")])
    records = recorder.take()
    for seen, record in zip(upstream.requests, records, strict=True):
        assert seen.header_all("traceparent") == [f"00-{TRACE}-{record.span_id}-01"]
        assert seen.header("tracestate") == "vendor=x"  # kept as it came
        assert record.trace_id == TRACE and record.parent_span_id == PARENT
        assert record.span_id != PARENT
    assert records[0].span_id != records[1].span_id


async def test_an_invalid_or_absent_traceparent_starts_a_new_trace(
        setup: Callable[..., Any], upstream: HttpUpstream) -> None:
    gw, recorder = await setup(_services(upstream))
    await http(gw.port, "GET", "/plain", [(b"traceparent", b"00-not-a-trace-01")])
    await http(gw.port, "GET", "/plain")
    records = recorder.take()
    for seen, record in zip(upstream.requests, records, strict=True):
        assert record.parent_span_id is None and record.trace_id != TRACE
        assert seen.header_all("traceparent") == [
            f"00-{record.trace_id}-{record.span_id}-01"]
    assert records[0].trace_id != records[1].trace_id


async def test_propagation_off_sends_no_traceparent_but_records_still_trace(
        setup: Callable[..., Any], upstream: HttpUpstream) -> None:
    gw, recorder = await setup(_services(upstream))
    gw.state.dispatcher.propagate = False  # type: ignore[attr-defined]
    incoming = f"00-{TRACE}-{PARENT}-01".encode()
    await http(gw.port, "GET", "/plain", [(b"traceparent", incoming)])
    [record] = recorder.take()
    assert upstream.requests[0].header_all("traceparent") == [incoming.decode()]
    assert record.trace_id == TRACE and record.parent_span_id == PARENT


async def test_ai_fields_and_bodies_come_from_the_context_vars() -> None:
    """``ctx.vars["ai"]`` (ai/gateway/chat.py) and ``ctx.vars["log.bodies"]``."""
    ctx = RequestContext("POST", "/v1/chat/completions", "", [], "10.0.0.1", "http", "h",
                         TRACE)
    ctx.status, ctx.ended = 200, ctx.started + 0.5
    ctx.upstream_started, ctx.upstream_ended = ctx.started + 0.1, ctx.started + 0.4
    ctx.vars["ai"] = {"model": "fast", "provider": "openai", "provider_model": "gpt-4o-mini",
                      "usage": {"prompt_tokens": 12, "completion_tokens": 5,
                                "prompt_tokens_details": {"cached_tokens": 4}},
                      "cost": "0.000123", "redactions": {"email": 2}}
    ctx.vars["log.bodies"] = {"request": "{}", "response": None}
    record = Capture("proxy", 7).record(ctx)
    assert (record.ai_provider, record.ai_model, record.ai_provider_model) == (
        "openai", "fast", "gpt-4o-mini")
    assert (record.ai_input_tokens, record.ai_output_tokens, record.ai_cached_tokens) == (
        12, 5, 4)
    assert record.ai_cost == "0.000123" and record.ai_redactions == {"email": 2}
    assert record.upstream == "openai" and record.worker == 7
    assert record.latency_ms == pytest.approx(500)
    assert record.upstream_latency_ms == pytest.approx(300)
    assert record.overhead_ms == pytest.approx(200)
    assert (record.request_body, record.response_body) == ("{}", None)
    assert record.trace_id == TRACE  # the request id the gateway made (no header)


async def _refusal(gw: RunningGateway, data: bytes) -> tuple[int, str | None]:
    """Send ``data`` raw; the status and X-Request-Id of the gateway's answer."""
    client = await RawClient.connect(gw.port)
    try:
        await client.send_raw(data)
        resp = await client.read_response()
        return resp.status, resp.header("x-request-id")
    finally:
        await client.close()


async def test_requests_refused_before_routing_are_recorded(upstream: HttpUpstream) -> None:
    gw = await start_gateway(_services(upstream), limits=Limits(
        max_url_bytes=3000, max_body_bytes=100, header_timeout=0.3))
    recorder = Recorder()
    gw.finished(recorder)
    try:
        answers = [
            await _refusal(gw, b"NOT HTTP AT ALL\r\n\r\n"),
            await _refusal(gw, b"GET /" + b"a" * 4000 + b" HTTP/1.1\r\nhost: gw.test\r\n\r\n"),
            await _refusal(gw, b"POST /plain/up?token=secret HTTP/1.1\r\nhost: gw.test\r\n"
                               b"user-agent: uploader/2\r\ncontent-length: 5000\r\n\r\n"),
            await _refusal(gw, b"GET /plain/slow HTTP/1.1\r\nhost: gw.test\r\n"),  # 408
        ]
        assert [status for status, _ in answers] == [400, 414, 413, 408]
        records = recorder.take()
        assert [(r.status, r.error) for r in records] == [
            (400, "bad_request"), (414, "bad_request"), (413, "bad_request"),
            (408, "bad_request")]
        assert [r.request_id for r in records] == [rid for _, rid in answers]
        assert "bad_request" in ERROR_CLASSES
        garbage, long_url, upload, slow = records
        assert garbage.method == "" and garbage.route is None and garbage.upstream is None
        assert long_url.method == "GET" and len(long_url.path) == 2048
        assert long_url.path.startswith("/aaa")
        assert (upload.method, upload.path, upload.host) == ("POST", "/plain/up", "gw.test")
        assert upload.user_agent == "uploader/2" and upload.bytes_in > 50
        assert (slow.method, slow.path) == ("GET", "/plain/slow")
        for record in records:
            assert record.bytes_out > 0 and record.route is None
            assert record.upstream_latency_ms is None and len(record.trace_id) == 32
        # the connection closed on each; the next request is served and recorded as usual
        assert (await http(gw.port, "GET", "/plain/ok")).status == 200
        assert [(r.status, r.error) for r in recorder.take()] == [(200, None)]
    finally:
        await gw.close()


async def test_a_connection_over_max_connections_is_recorded_as_overloaded(
        upstream: HttpUpstream) -> None:
    gw = await start_gateway(_services(upstream), limits=Limits(max_connections=2))
    recorder = Recorder()
    gw.finished(recorder)
    held = [await RawClient.connect(gw.port) for _ in range(2)]
    try:
        await asyncio.sleep(0.05)
        answers = [await _refusal(gw, b"GET /plain/ok HTTP/1.1\r\nhost: gw.test\r\n\r\n")
                   for _ in range(3)]
        assert [status for status, _ in answers] == [503, 503, 503]
        records = recorder.take()
        assert [(r.status, r.error) for r in records] == [(503, "overloaded")] * 3
        assert [r.request_id for r in records] == [rid for _, rid in answers]
        assert "overloaded" in ERROR_CLASSES
        for record in records:  # nothing of the request was read
            assert (record.method, record.path, record.route) == ("", "", None)
            assert record.client_ip == "127.0.0.1" and record.bytes_out > 0
            assert record.upstream is None and len(record.trace_id) == 32
    finally:
        for client in held:
            await client.close()
        await gw.close()


def test_the_log_phase_recorder_puts_the_row_and_counts_as_put_does() -> None:
    """``Capture.recorder``: the same row as ``row``; appended straight to the queue
    while no drop or wake-up is due, through ``put`` beyond: a full batch wakes the
    writer once, a full queue drops its oldest, and nothing goes uncounted."""
    capture = Capture("proxy", 7)
    queue: RecordQueue[tuple[Any, ...]] = RecordQueue(6, wake_at=4)
    wakes: list[int] = []
    queue.on_full_batch = lambda: wakes.append(queue.depth)
    record = capture.recorder(queue)
    contexts = []
    for i in range(9):
        ctx = RequestContext("GET", f"/{i}", "", [(b"user-agent", b"t")], "10.0.0.1",
                             "http", "h", TRACE)
        ctx.status, ctx.ended = 200, ctx.started + 0.01
        ctx.trace = start_trace(ctx.headers, TRACE)  # one span id, row after row
        contexts.append(ctx)
        record(ctx)
        if i == 2:
            assert wakes == [] and queue.depth == 3
    assert wakes == [4]
    assert (queue.depth, queue.dropped, queue.accepted) == (6, 3, 9)
    rows = queue.take(10)
    assert rows == [capture.row(ctx) for ctx in contexts[3:]]  # the newest six
    assert [r[10] for r in rows] == ["/3", "/4", "/5", "/6", "/7", "/8"]
    assert (queue.taken, queue.accepted) == (6, 9)
