"""Which requests take the callback-only path, and that its answers equal the task path's.

The fast path serves body-less requests on routes without awaiting plugins through an
idle pooled connection; anything else (or anything unusual) goes to the task path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from gateway_harness import (
    HttpUpstream,
    RawClient,
    Response,
    RunningGateway,
    UpstreamRequest,
    ok_response,
    service,
    start_gateway,
)

from campusgate.plugins.base import WAIT, AccessAnswer, Plugin
from campusgate.plugins.registry import plugin_classes
from campusgate.proxy.context import LocalResponse, RequestContext
from campusgate.proxy.gateway import Gateway


@pytest.fixture
def fast_count(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every try_fast decision, in order (True: served by callbacks)."""
    decisions: list[bool] = []
    original = Gateway.try_fast

    def counting(self: Gateway, conn: Any, req: Any) -> bool:
        accepted = original(self, conn, req)
        decisions.append(accepted)
        return accepted

    monkeypatch.setattr(Gateway, "try_fast", counting)
    return decisions


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    up = await HttpUpstream().start()
    yield up
    await up.close()


async def gateway_for(up: HttpUpstream, **extra: Any) -> RunningGateway:
    return await start_gateway({"services": [service("s", f"http://{up.address}", **extra)]})


async def gets(up: HttpUpstream, count: int, **extra: Any) -> list[Response]:
    """``count`` GETs, one after another on one client connection."""
    gw = await gateway_for(up, **extra)
    client = await RawClient.connect(gw.port)
    try:
        return [await client.request("GET", "/s/x") for _ in range(count)]
    finally:
        await client.close()
        await gw.close()


async def test_second_keepalive_get_is_served_by_callbacks(
    upstream: HttpUpstream, fast_count: list[bool]
) -> None:
    answers = await gets(upstream, 3)
    assert [a.status for a in answers] == [200, 200, 200]
    assert all(a.header("x-request-id") for a in answers)
    # the first needs a new upstream connection (task path); then the pool has one
    assert fast_count == [False, True, True]
    assert upstream.accepted == 1


async def test_bodies_take_the_task_path(upstream: HttpUpstream, fast_count: list[bool]) -> None:
    gw = await gateway_for(upstream)
    client = await RawClient.connect(gw.port)
    try:
        first = await client.request("GET", "/s")
        second = await client.request("POST", "/s", body=b"hello")
    finally:
        await client.close()
        await gw.close()
    assert (first.status, second.status) == (200, 200)
    assert upstream.requests[-1].body == b"hello"
    assert fast_count == [False]  # the POST, with its body, is never offered


async def test_plugins_that_never_wait_run_once_on_the_fast_path(
    upstream: HttpUpstream, fast_count: list[bool]
) -> None:
    answers = await gets(upstream, 3, plugins=[
        {"name": "request-id", "config": {"header_name": "X-Correlation-Id"}}])
    assert fast_count == [False, True, True]
    for answer, seen in zip(answers, upstream.requests, strict=True):
        assert answer.header("x-correlation-id")
        assert seen.header_all("x-correlation-id") == [answer.header("x-correlation-id")]


async def test_a_plugin_answer_is_sent_once_without_reaching_the_upstream(
    upstream: HttpUpstream, fast_count: list[bool]
) -> None:
    answers = await gets(upstream, 2, plugins=[
        {"name": "request-termination", "config": {"status_code": 410, "message": "gone"}}])
    assert [a.status for a in answers] == [410, 410]
    assert upstream.requests == []
    assert fast_count == [False, False]


class SlowCheck(Plugin):
    """A plugin whose access phase awaits (as a remote check would)."""

    name = "slow-check"

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        await asyncio.sleep(0)
        ctx.upstream_headers_add.append((b"x-checked", b"yes"))
        return None


async def test_plugins_that_wait_take_the_task_path(
    upstream: HttpUpstream, fast_count: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(plugin_classes(), "slow-check", SlowCheck)
    answers = await gets(upstream, 2, plugins=[{"name": "slow-check"}])
    assert [a.status for a in answers] == [200, 200]
    assert [r.header("x-checked") for r in upstream.requests] == ["yes", "yes"]
    assert fast_count == [False, False]


class CachedCheck(Plugin):
    """Answers at once when it has the answer cached, else waits (then caches it)."""

    name = "cached-check"
    priority = 10
    seen: ClassVar[set[str]] = set()

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        if ctx.path not in self.seen:
            return WAIT
        ctx.upstream_headers_add.append((b"x-checked", b"cached"))
        return None

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        await asyncio.sleep(0)
        self.seen.add(ctx.path)
        ctx.upstream_headers_add.append((b"x-checked", b"fetched"))
        return None


class Counter(Plugin):
    """Runs after CachedCheck: counts how often its access phase runs."""

    name = "counter"
    priority = 1
    calls: ClassVar[list[str]] = []

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        self.calls.append(ctx.request_id)
        return None


async def test_a_plugin_that_waits_only_on_a_miss_resumes_on_the_task_path_once(
    upstream: HttpUpstream, fast_count: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(plugin_classes(), "cached-check", CachedCheck)
    monkeypatch.setitem(plugin_classes(), "counter", Counter)
    CachedCheck.seen.clear()
    Counter.calls.clear()
    answers = await gets(upstream, 3, plugins=[{"name": "cached-check"}, {"name": "counter"}])
    assert [a.status for a in answers] == [200, 200, 200]
    assert [r.header("x-checked") for r in upstream.requests] == ["fetched", "cached", "cached"]
    # the first request went to the task path, which resumed at the waiting plugin
    assert fast_count == [False, True, True]
    assert len(Counter.calls) == 3  # every plugin ran exactly once per request


async def test_a_pooled_connection_closed_without_answer_is_handed_back_and_retried(
    fast_count: list[bool],
) -> None:
    calls: list[int] = []

    async def closes_once(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        calls.append(req.conn_id)
        if len(calls) == 2:  # the pooled connection dies on the second request
            writer.close()
            return
        writer.write(ok_response(b"ok"))

    up = await HttpUpstream(closes_once).start()
    try:
        answers = await gets(up, 2)
    finally:
        await up.close()
    assert [a.status for a in answers] == [200, 200]
    assert answers[1].complete
    assert fast_count == [False, True]  # the second went by callbacks, then was handed back
    assert calls == [0, 0, 1]  # retried on a new upstream connection


async def test_a_retryable_status_is_handed_to_the_task_path() -> None:
    calls: list[str] = []

    async def flaky(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        calls.append(req.target)
        status = 503 if len(calls) == 2 else 200
        writer.write(ok_response(b"ok", status))

    up = await HttpUpstream(flaky).start()
    gw = await gateway_for(up)
    client = await RawClient.connect(gw.port)
    try:
        assert (await client.request("GET", "/s")).status == 200
        answer = await client.request("GET", "/s")  # fast path gets 503, task path retries
    finally:
        await client.close()
        await gw.close()
        await up.close()
    assert answer.status == 200
    assert len(calls) == 3


class Deferred(Plugin):
    """Waits on a future the test resolves: as a Redis check on an open connection."""

    name = "deferred"
    futures: ClassVar[list[asyncio.Future[Any]]] = []
    outcome: ClassVar[str] = "pass"
    awaited: ClassVar[int] = 0

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        return WAIT

    def access_start(self, ctx: RequestContext) -> asyncio.Future[Any] | None:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(fut)
        return fut

    def access_finish(self, ctx: RequestContext, done: asyncio.Future[Any]) -> AccessAnswer:
        if self.outcome == "deny":
            return LocalResponse.error(429, "rate_limited", "slow down", ctx.request_id)
        if self.outcome == "boom":
            raise RuntimeError("broken plugin")
        ctx.upstream_headers_add.append((b"x-checked", b"by-callback"))
        return None

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        type(self).awaited += 1
        ctx.upstream_headers_add.append((b"x-checked", b"by-task"))
        return None


@pytest.fixture
def deferred(monkeypatch: pytest.MonkeyPatch) -> type[Deferred]:
    monkeypatch.setitem(plugin_classes(), "deferred", Deferred)
    Deferred.futures.clear()
    Deferred.awaited = 0
    Deferred.outcome = "pass"
    return Deferred


async def started(plugin: type[Deferred]) -> asyncio.Future[Any]:
    """The next future the plugin waits on, once the gateway has started it."""
    for _ in range(2000):
        if plugin.futures:
            return plugin.futures.pop(0)
        await asyncio.sleep(0.001)
    raise AssertionError("the plugin never started waiting")


async def resolve_soon(plugin: type[Deferred]) -> None:
    (await started(plugin)).set_result(None)


@pytest.mark.parametrize(("outcome", "status", "checked"), [
    ("pass", 200, "by-callback"),   # resumed by callbacks, forwarded without a task
    ("deny", 429, None),            # the answer goes out through the task path
    ("boom", 200, "by-task"),       # a failing resume: the task path runs access() again
])
async def test_a_plugin_waiting_on_a_future_resumes_by_callbacks(
    upstream: HttpUpstream, deferred: type[Deferred], fast_count: list[bool],
    outcome: str, status: int, checked: str | None,
) -> None:
    gw = await gateway_for(upstream, plugins=[{"name": "deferred"}])
    client = await RawClient.connect(gw.port)
    try:
        warm = asyncio.ensure_future(client.request("GET", "/s/warm"))
        await resolve_soon(deferred)  # the first request connects upstream (task path)
        assert (await warm).status == 200
        deferred.outcome = outcome
        answer = asyncio.ensure_future(client.request("GET", "/s/x"))
        await resolve_soon(deferred)
        assert (await answer).status == status
    finally:
        await client.close()
        await gw.close()
    assert fast_count == [True, True]  # both were taken by the callback path
    if checked is not None:
        assert upstream.requests[-1].header("x-checked") == checked
    assert deferred.awaited == (1 if outcome == "boom" else 0)


async def test_a_client_gone_while_a_plugin_waits_costs_nothing(
    upstream: HttpUpstream, deferred: type[Deferred]
) -> None:
    gw = await gateway_for(upstream, plugins=[{"name": "deferred"}])
    try:
        client = await RawClient.connect(gw.port)
        await client.send_raw(b"GET /s/x HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        pending = await started(deferred)
        await client.close()
        await asyncio.sleep(0.05)
        pending.set_result(None)  # the reply comes after the client left
        await asyncio.sleep(0.05)
        assert upstream.requests == []
        assert not gw.state.connections
    finally:
        await gw.close()
