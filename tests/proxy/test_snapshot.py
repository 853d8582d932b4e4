"""Snapshots: plugin chains (merge, priority, early answers, response edits) and hot reload
(zero failed requests, in-flight requests finish, pools and health carried over, old
health checkers stopped)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from gateway_harness import (
    HttpUpstream,
    RawClient,
    RunningGateway,
    UpstreamRequest,
    http,
    ok_response,
    service,
    start_gateway,
)

from campusgate.config.model import Entities
from campusgate.plugins.base import Plugin, PluginConfig
from campusgate.plugins.registry import plugin_classes
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.proxy.snapshot import compile_snapshot


class _TraceConfig(PluginConfig):
    tag: str = "t"


class _TracePlugin(Plugin):
    """Test plugin: appends its tag to a request header and edits response headers."""

    name: ClassVar[str] = "test-trace"
    priority: ClassVar[int] = 50
    config_model = _TraceConfig

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        assert isinstance(self.config, _TraceConfig)
        trail = ctx.vars.setdefault("trail", [])
        trail.append(self.config.tag)
        ctx.upstream_headers_add.append((b"x-trail", ",".join(trail).encode()))
        return None

    def response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        headers[:] = [(n, v) for n, v in headers if n != b"server"]
        headers.append((b"x-seen-status", str(status).encode()))


@pytest.fixture
def trace_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plugin_classes(), _TracePlugin.name, _TracePlugin)


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(b"up", headers=[(b"server", b"secret/1.0")]))

    up = await HttpUpstream(handler).start()
    yield up
    await up.close()


@pytest.fixture
async def gateways() -> AsyncIterator[list[RunningGateway]]:
    started: list[RunningGateway] = []
    yield started
    for gw in started:
        await gw.close()


async def _start(started: list[RunningGateway], entities: dict[str, Any]) -> RunningGateway:
    gw = await start_gateway(entities)
    started.append(gw)
    return gw


# ---------------------------------------------------------------- plugin chains


def _terminate(status: int, enabled: bool = True) -> dict[str, Any]:
    return {"name": "request-termination", "enabled": enabled,
            "config": {"status_code": status, "message": f"closed {status}"}}


async def test_plugin_levels_merge_most_specific_wins(
    upstream: HttpUpstream, gateways: list[RunningGateway]
) -> None:
    url = f"http://{upstream.address}"
    gw = await _start(gateways, {
        "plugins": [{"name": "request-id", "config": {"header_name": "X-Correlation-Id"}}],
        "services": [{
            "name": "s", "url": url, "plugins": [_terminate(418)],
            "routes": [
                {"name": "svc-level", "paths": ["/a"]},
                {"name": "route-off", "paths": ["/b"], "plugins": [_terminate(418, False)]},
                {"name": "route-own", "paths": ["/c"], "plugins": [_terminate(451)]},
            ],
        }],
    })
    resp = await http(gw.port, "GET", "/a", headers=[(b"X-Correlation-Id", b"corr-1")])
    assert resp.status == 418
    # request-id (priority 100000) ran before request-termination (priority 2)
    assert json.loads(resp.body)["error"]["request_id"] == "corr-1"
    assert resp.header("x-correlation-id") == "corr-1"
    assert upstream.requests == []  # the early answer never reached the upstream
    assert (await http(gw.port, "GET", "/c")).status == 451
    assert upstream.requests == []
    resp = await http(gw.port, "GET", "/b", headers=[(b"X-Correlation-Id", b"corr-2")])
    assert (resp.status, resp.body) == (200, b"up")
    assert resp.header("x-correlation-id") == "corr-2"
    assert upstream.requests[-1].header_all("x-correlation-id") == ["corr-2"]


async def test_request_id_plugin_generates_when_not_trusted(
    upstream: HttpUpstream, gateways: list[RunningGateway]
) -> None:
    gw = await _start(gateways, {
        "plugins": [{"name": "request-id",
                     "config": {"header_name": "X-Trace", "trust_incoming": False}}],
        "services": [service("s", f"http://{upstream.address}")],
    })
    resp = await http(gw.port, "GET", "/s", headers=[(b"X-Trace", b"forged")])
    sent = upstream.requests[-1].header_all("x-trace")
    assert len(sent) == 1 and sent[0] != "forged"
    assert resp.header("x-trace") == sent[0]


async def test_priority_order_and_response_phase_edits(
    trace_plugin: None, upstream: HttpUpstream, gateways: list[RunningGateway]
) -> None:
    gw = await _start(gateways, {
        "plugins": [{"name": "test-trace", "config": {"tag": "global"}}],
        "services": [{
            "name": "s", "url": f"http://{upstream.address}",
            "plugins": [{"name": "test-trace", "config": {"tag": "service"}}],
            "routes": [
                {"name": "r1", "paths": ["/r1"],
                 "plugins": [{"name": "test-trace", "config": {"tag": "route"}}]},
                {"name": "r2", "paths": ["/r2"]},
            ],
        }, {
            "name": "other", "url": f"http://{upstream.address}",
            "routes": [{"name": "r3", "paths": ["/r3"]}],
        }],
    })
    for path, tag in (("/r1", "route"), ("/r2", "service"), ("/r3", "global")):
        resp = await http(gw.port, "GET", path)
        assert resp.status == 200
        assert upstream.requests[-1].header_all("x-trail") == [tag]  # one instance runs
        assert resp.header("server") is None  # removed in the response phase
        assert resp.header("x-seen-status") == "200"


async def test_response_plugins_see_gateway_errors(
    trace_plugin: None, gateways: list[RunningGateway]
) -> None:
    gw = await _start(gateways, {
        "plugins": [{"name": "test-trace"}],
        "services": [service("s", "http://127.0.0.1:9")],
    })
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 502
    assert resp.header("x-seen-status") == "502"
    resp = await http(gw.port, "GET", "/nowhere")
    assert resp.status == 404
    assert resp.header("x-seen-status") == "404"


# ---------------------------------------------------------------- hot reload


def _entities(url: str, variant: int) -> dict[str, Any]:
    return {"services": [
        service("s", url, route={"plugins": [_terminate(418, enabled=False)]}),
        service(f"extra{variant}", url),  # something changes in every revision
    ]}


async def test_reload_under_load_drops_nothing(
    upstream: HttpUpstream, gateways: list[RunningGateway]
) -> None:
    url = f"http://{upstream.address}"
    gw = await _start(gateways, _entities(url, 0))
    statuses: list[int] = []

    async def client_loop(n: int) -> None:
        client = await RawClient.connect(gw.port)
        try:
            for _ in range(n):
                resp = await client.request("GET", "/s/x")
                statuses.append(resp.status if resp.complete else -1)
        finally:
            await client.close()

    async def reloader(stop: asyncio.Event) -> int:
        count = 0
        while not stop.is_set():
            count += 1
            await gw.reload(_entities(url, count))
            await asyncio.sleep(0.005)
        return count

    stop = asyncio.Event()
    reloads = asyncio.create_task(reloader(stop))
    await asyncio.gather(*(client_loop(500) for _ in range(4)))
    stop.set()
    assert await reloads >= 5
    assert len(statuses) == 2000
    assert set(statuses) == {200}
    assert upstream.accepted <= 4  # the pool survived every reload


async def test_in_flight_request_finishes_on_the_old_snapshot(
    gateways: list[RunningGateway]
) -> None:
    release, arrived = asyncio.Event(), asyncio.Event()

    async def slow(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        if req.target == "/slow":
            arrived.set()
            await release.wait()
        writer.write(ok_response(b"old"))

    old_up = await HttpUpstream(slow).start()
    new_up = await HttpUpstream().start()
    try:
        gw = await _start(gateways, {"services": [service("s", f"http://{old_up.address}")]})
        in_flight = asyncio.create_task(http(gw.port, "GET", "/s/slow"))
        await arrived.wait()
        await gw.reload({"services": [service("s", f"http://{new_up.address}")]})
        assert (await http(gw.port, "GET", "/s/new")).body == b"GET /new"
        release.set()
        resp = await in_flight
        assert (resp.status, resp.body, resp.complete) == (200, b"old", True)
    finally:
        await old_up.close()
        await new_up.close()


async def test_health_state_is_carried_over(gateways: list[RunningGateway]) -> None:
    dead = "127.0.0.1:9"
    up = await HttpUpstream().start()
    try:
        entities = {"upstreams": [{
            "name": "pool", "targets": [{"target": dead}, {"target": up.address}],
            "healthchecks": {"passive": {"max_failures": 1, "cooldown": 60}},
        }], "services": [service("s", "http://pool")]}
        gw = await _start(gateways, entities)
        assert (await http(gw.port, "GET", "/s")).status == 200
        assert (await http(gw.port, "GET", "/s")).status == 200
        now = gw.loop.time()
        assert gw.snapshot.upstream_health(now)["pool"][dead]["healthy"] is False
        new = await gw.reload(entities)
        assert new.upstream_health(gw.loop.time())["pool"][dead]["healthy"] is False
        assert up.accepted == 1  # the pool carried over too
        assert (await http(gw.port, "GET", "/s")).status == 200
        assert up.accepted == 1
    finally:
        await up.close()


async def test_old_health_checkers_stop(gateways: list[RunningGateway]) -> None:
    up = await HttpUpstream().start()
    try:
        def entities(interval: float | None) -> dict[str, Any]:
            checks = ({"active": {"path": "/health", "interval": interval}}
                      if interval else {})
            return {"upstreams": [{"name": "pool", "targets": [{"target": up.address}],
                                   "healthchecks": checks}],
                    "services": [service("s", "http://pool")]}

        gw = await _start(gateways, entities(0.02))
        await asyncio.sleep(0.15)
        assert sum(r.target == "/health" for r in up.requests) >= 2
        await gw.reload(entities(None))
        await asyncio.sleep(0.02)
        probes = sum(r.target == "/health" for r in up.requests)
        await asyncio.sleep(0.15)
        assert sum(r.target == "/health" for r in up.requests) == probes
    finally:
        await up.close()


async def test_pool_of_a_removed_upstream_is_closed(
    upstream: HttpUpstream, gateways: list[RunningGateway]
) -> None:
    gw = await _start(gateways, {"services": [service("s", f"http://{upstream.address}")]})
    assert (await http(gw.port, "GET", "/s")).status == 200
    assert len(upstream.open_writers) == 1  # one idle pooled connection
    await gw.reload({"services": [service("s", "builtin://echo")]})
    for _ in range(50):
        if not upstream.open_writers:
            break
        await asyncio.sleep(0.01)
    assert not upstream.open_writers


def test_the_proxying_doc_example_compiles() -> None:
    text = (Path(__file__).parents[2] / "docs" / "proxying.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    data = yaml.safe_load(example)
    del data["services"][0]["tls"]["ca_file"]  # not on this machine
    entities = Entities.model_validate(data)
    loop = asyncio.new_event_loop()
    try:
        snap = compile_snapshot(1, entities, [], loop=loop)
    finally:
        loop.close()
    (svc,) = entities.services
    assert (svc.protocol, svc.path) == ("https", "/api")
    match = snap.router.match("GET", "x", "/users/42", [], "full=1")
    assert match is not None and match.params == {"id": "42"}
    assert snap.pools  # one pool for people.internal:8443
