"""Upstream behaviour over real sockets: balancing, keep-alive pools, failures, health.

Every upstream here is a real asyncio server on 127.0.0.1 that the test controls.
This module runs on uvloop (the product's loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvloop
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

# pytest-asyncio 1.x prefers a conftest hook (pytest_asyncio_loop_factories); until the
# shared conftest has one, this module picks uvloop with the (deprecated) policy fixture.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding the \"event_loop_policy\" fixture")


@pytest.fixture
def event_loop_policy() -> uvloop.EventLoopPolicy:
    return uvloop.EventLoopPolicy()


async def test_this_module_runs_on_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


class Cluster:
    """Upstreams and gateways started by one test, closed at its end."""

    def __init__(self) -> None:
        self.upstreams: list[HttpUpstream] = []
        self.gateways: list[RunningGateway] = []

    async def upstream(self, handler: Any = None, name: str = "") -> HttpUpstream:
        up = HttpUpstream(handler or _named(name), name) if handler else HttpUpstream(
            _named(name), name)
        await up.start()
        self.upstreams.append(up)
        return up

    async def gateway(self, entities: dict[str, Any], **kw: Any) -> RunningGateway:
        gw = await start_gateway(entities, **kw)
        self.gateways.append(gw)
        return gw

    async def close(self) -> None:
        for gw in self.gateways:
            await gw.close()
        for up in self.upstreams:
            await up.close()


def _named(name: str) -> Any:
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(name.encode()))
    return handler


def _status(status: int, name: str = "") -> Any:
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(name.encode() or b"x", status))
    return handler


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    c = Cluster()
    yield c
    await c.close()


def _free_port() -> int:
    """A port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVICE_KEYS = {"retries", "timeouts", "pool", "tls", "plugins"}


def _upstream_service(targets: list[dict[str, Any]], name: str = "s", **kw: Any) -> dict[str, Any]:
    """A service with inline upstream ``targets``; service-level keys go to the service."""
    svc = service(name, "http://x", **{k: v for k, v in kw.items() if k in _SERVICE_KEYS})
    del svc["url"]
    svc["upstream"] = {"targets": targets,
                       **{k: v for k, v in kw.items() if k not in _SERVICE_KEYS}}
    return svc


# ---------------------------------------------------------------- balancing


async def test_weighted_round_robin_distribution(cluster: Cluster) -> None:
    ups = [await cluster.upstream(name=n) for n in ("a", "b", "c")]
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": u.address, "weight": w} for u, w in zip(ups, (100, 200, 300), strict=True)])]})
    client = await RawClient.connect(gw.port)
    seen = Counter([(await client.request("GET", "/s")).body for _ in range(60)])
    await client.close()
    assert seen == {b"a": 10, b"b": 20, b"c": 30}
    assert [len(u.requests) for u in ups] == [10, 20, 30]


async def test_least_connections_avoids_the_busy_target(cluster: Cluster) -> None:
    release = asyncio.Event()

    async def slow(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.write(ok_response(b"slow"))

    slow_up = await cluster.upstream(slow)
    fast_up = await cluster.upstream(name="fast")
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": slow_up.address}, {"target": fast_up.address}],
        algorithm="least-connections")]})
    pending = []
    while not slow_up.requests:  # get one request stuck on the slow target
        pending.append(asyncio.create_task(http(gw.port, "GET", "/s")))
        await asyncio.sleep(0.05)
    bodies = [(await http(gw.port, "GET", "/s")).body for _ in range(10)]
    assert bodies == [b"fast"] * 10
    release.set()
    assert all(r.status == 200 for r in await asyncio.gather(*pending))


@pytest.mark.parametrize(
    ("hash_on", "hash_key", "make_headers"),
    [
        ("header", "X-User", lambda u: [(b"X-User", u.encode())]),
        ("cookie", "sid", lambda u: [(b"Cookie", b"theme=dark; sid=" + u.encode())]),
    ],
)
async def test_consistent_hashing_sticks(
    cluster: Cluster, hash_on: str, hash_key: str, make_headers: Any
) -> None:
    ups = [await cluster.upstream(name=n) for n in ("a", "b", "c")]
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": u.address} for u in ups], algorithm="consistent-hashing",
        hash_on=hash_on, hash_key=hash_key)]})
    client = await RawClient.connect(gw.port)
    where: dict[str, set[bytes]] = {}
    for user in [f"user-{i}" for i in range(12)] * 4:
        resp = await client.request("GET", "/s", headers=make_headers(user))
        where.setdefault(user, set()).add(resp.body)
    await client.close()
    assert all(len(targets) == 1 for targets in where.values())
    assert len(set.union(*where.values())) > 1  # 12 users do not all hash to one target


async def test_consistent_hashing_on_ip_sticks(cluster: Cluster) -> None:
    ups = [await cluster.upstream(name=n) for n in ("a", "b", "c")]
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": u.address} for u in ups], algorithm="consistent-hashing", hash_on="ip")]})
    bodies = {(await http(gw.port, "GET", "/s")).body for _ in range(12)}
    assert len(bodies) == 1


# ---------------------------------------------------------------- keep-alive pool


async def test_sequential_requests_reuse_one_upstream_connection(cluster: Cluster) -> None:
    up = await cluster.upstream(name="a")
    gw = await cluster.gateway({"services": [service("s", f"http://{up.address}")]})
    client = await RawClient.connect(gw.port)
    for _ in range(20):
        assert (await client.request("GET", "/s")).status == 200
    await client.close()
    for _ in range(5):  # new client connections share the pool too
        assert (await http(gw.port, "GET", "/s")).status == 200
    assert up.accepted == 1
    assert len(up.requests) == 25


@pytest.mark.parametrize(
    ("pool", "pause", "expected_connections"),
    [
        ({"max_idle": 0}, 0.0, 3),
        ({"idle_timeout": 0.15}, 0.3, 3),
        ({"max_lifetime": 0.15}, 0.3, 3),
        ({"idle_timeout": 5, "max_lifetime": 5}, 0.3, 1),
    ],
)
async def test_pool_limits(
    cluster: Cluster, pool: dict[str, Any], pause: float, expected_connections: int
) -> None:
    up = await cluster.upstream(name="a")
    gw = await cluster.gateway({"services": [service("s", f"http://{up.address}", pool=pool)]})
    for _ in range(3):
        assert (await http(gw.port, "GET", "/s")).status == 200
        await asyncio.sleep(pause)
    assert up.accepted == expected_connections


async def test_upstream_closing_idle_connection_is_transparent(cluster: Cluster) -> None:
    up = await cluster.upstream(name="a")
    gw = await cluster.gateway({"services": [service("s", f"http://{up.address}")]})
    client = await RawClient.connect(gw.port)
    assert (await client.request("GET", "/s")).status == 200
    up.drop_idle_connections()
    await asyncio.sleep(0.05)
    assert (await client.request("GET", "/s")).status == 200
    await client.close()
    assert up.accepted == 2


async def test_stale_pooled_connection_closed_on_request_is_retried(cluster: Cluster) -> None:
    """The upstream reads the next request on a kept-alive connection, then closes it
    without answering (its keep-alive timer fired): the gateway retries on a fresh
    connection, even when retries are off and the method is POST without body."""

    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        first_on_conn = sum(1 for r in up.requests if r.conn_id == req.conn_id) == 1
        if first_on_conn:
            writer.write(ok_response(b"fresh"))
        else:
            writer.close()

    up = await cluster.upstream(handler)
    gw = await cluster.gateway({"services": [service("s", f"http://{up.address}",
                                                     retries={"count": 0})]})
    for method in ("GET", "GET", "DELETE"):
        resp = await http(gw.port, method, "/s")
        assert (resp.status, resp.body) == (200, b"fresh")
    assert up.accepted == 3


# ---------------------------------------------------------------- failures


async def test_refused_target_is_retried_on_another(cluster: Cluster) -> None:
    up = await cluster.upstream(name="live")
    dead = f"127.0.0.1:{_free_port()}"
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": dead}, {"target": up.address}])]})
    for _ in range(6):
        resp = await http(gw.port, "GET", "/s")
        assert (resp.status, resp.body) == (200, b"live")
    # a POST with a body is retried too: nothing was sent to the refused target
    resp = await http(gw.port, "POST", "/s", body=b"data")
    assert resp.status == 200


async def test_all_refused_is_502_naming_the_target(cluster: Cluster) -> None:
    dead = f"127.0.0.1:{_free_port()}"
    gw = await cluster.gateway({"services": [service("s", f"http://{dead}")]})
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 502
    assert dead in resp.body.decode()
    assert b'"code":"bad_gateway"' in resp.body


async def test_no_healthy_target_is_503(cluster: Cluster) -> None:
    dead = f"127.0.0.1:{_free_port()}"
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": dead}], healthchecks={"passive": {"max_failures": 1, "cooldown": 30}})]})
    assert (await http(gw.port, "GET", "/s")).status == 502
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 503
    assert b"no_healthy_upstream" in resp.body


async def test_read_timeout_is_504(cluster: Cluster) -> None:
    async def sleepy(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)

    up = await cluster.upstream(sleepy)
    gw = await cluster.gateway({"services": [service(
        "s", f"http://{up.address}", timeouts={"read": 0.2})]})
    client = await RawClient.connect(gw.port)
    resp = await client.request("GET", "/s")
    assert resp.status == 504
    assert up.address in resp.body.decode()
    await client.close()


async def test_read_timeout_between_body_chunks_cuts_the_response(cluster: Cluster) -> None:
    async def stalls(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst")
        await writer.drain()
        await asyncio.sleep(2)

    up = await cluster.upstream(stalls)
    gw = await cluster.gateway({"services": [service(
        "s", f"http://{up.address}", timeouts={"read": 0.2})]})
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 200 and not resp.complete
    assert resp.body == b"first"


async def test_connect_timeout_is_504(cluster: Cluster) -> None:
    # A listener that never accepts, with its backlog filled: further SYNs go unanswered.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    address = lsock.getsockname()
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(address)
            fillers.append(s)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(address)
            pytest.skip("the kernel accepted past a full backlog; cannot make a connect hang")
        except (TimeoutError, OSError):
            pass
        finally:
            probe.close()
        target = f"127.0.0.1:{address[1]}"
        gw = await cluster.gateway({"services": [service(
            "s", f"http://{target}", timeouts={"connect": 0.2}, retries={"count": 0})]})
        resp = await http(gw.port, "GET", "/s")
        assert resp.status == 504
        assert target in resp.body.decode()
    finally:
        for s in fillers:
            s.close()
        lsock.close()


async def test_503_on_get_is_retried_on_another_target(cluster: Cluster) -> None:
    bad = await cluster.upstream(_status(503, "bad"))
    good = await cluster.upstream(name="good")
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": bad.address}, {"target": good.address}],
        healthchecks={"passive": {"enabled": False}})]})
    for _ in range(4):
        resp = await http(gw.port, "GET", "/s")
        assert (resp.status, resp.body) == (200, b"good")
    assert len(bad.requests) >= 1  # it was tried, and its 503 hidden


async def test_post_with_body_is_not_retried_on_503(cluster: Cluster) -> None:
    bad = await cluster.upstream(_status(503, "bad"))
    good = await cluster.upstream(name="good")
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": bad.address}, {"target": good.address}],
        healthchecks={"passive": {"enabled": False}})]})
    statuses = Counter([(await http(gw.port, "POST", "/s", body=b"x")).status
                        for _ in range(4)])
    assert statuses == {503: 2, 200: 2}
    assert len(bad.requests) + len(good.requests) == 4


async def test_retries_are_bounded_by_count(cluster: Cluster) -> None:
    ups = [await cluster.upstream(_status(503, n)) for n in "abcd"]
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": u.address} for u in ups], healthchecks={"passive": {"enabled": False}}),
    ]})
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 503
    assert sum(len(u.requests) for u in ups) == 3  # the try + retries.count (2)
    gw2 = await cluster.gateway({"services": [_upstream_service(
        [{"target": u.address} for u in ups], name="t", retries={"count": 0},
        healthchecks={"passive": {"enabled": False}})]})
    await http(gw2.port, "GET", "/t")
    assert sum(len(u.requests) for u in ups) == 4


async def test_passive_health_ejects_then_restores(cluster: Cluster) -> None:
    healthy = {"bad": False}

    async def flaky(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(b"bad", 200 if healthy["bad"] else 500))

    bad = await cluster.upstream(flaky)
    good = await cluster.upstream(name="good")
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": bad.address}, {"target": good.address}],
        healthchecks={"passive": {"max_failures": 2, "cooldown": 0.4,
                                  "unhealthy_statuses": [500]}})]})
    for _ in range(4):
        await http(gw.port, "GET", "/s")
    health = gw.snapshot.upstream_health(gw.loop.time())["s-upstream"]
    assert health[bad.address]["healthy"] is False
    assert health[good.address]["healthy"] is True
    before = len(bad.requests)
    for _ in range(6):
        assert (await http(gw.port, "GET", "/s")).body == b"good"
    assert len(bad.requests) == before  # traffic avoids the ejected target
    healthy["bad"] = True
    await asyncio.sleep(0.5)
    bodies = Counter([(await http(gw.port, "GET", "/s")).body for _ in range(6)])
    assert bodies[b"bad"] >= 2  # back in rotation after the cool-down
    health = gw.snapshot.upstream_health(gw.loop.time())["s-upstream"]
    assert health[bad.address]["healthy"] is True


async def test_active_health_check_marks_target_down(cluster: Cluster) -> None:
    async def sick(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(b"sick", 500 if req.target == "/health" else 200))

    sick_up = await cluster.upstream(sick)
    good = await cluster.upstream(name="good")
    gw = await cluster.gateway({"services": [_upstream_service(
        [{"target": sick_up.address}, {"target": good.address}],
        healthchecks={"active": {"path": "/health", "interval": 0.05, "timeout": 0.5,
                                 "unhealthy_threshold": 1, "healthy_threshold": 1}})]})
    for _ in range(100):
        health = gw.snapshot.upstream_health(gw.loop.time())["s-upstream"]
        if health[sick_up.address]["healthy"] is False:
            break
        await asyncio.sleep(0.02)
    assert health[sick_up.address]["active"] == "unhealthy"
    assert health[good.address]["active"] == "healthy"
    proxied = [r for r in sick_up.requests if r.target != "/health"]
    for _ in range(6):
        assert (await http(gw.port, "GET", "/s")).body == b"good"
    assert [r for r in sick_up.requests if r.target != "/health"] == proxied


# ---------------------------------------------------------------- broken upstreams


@pytest.fixture
def proxy_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="campusgate.proxy"):
        yield caplog


@pytest.mark.parametrize(
    ("head", "partial"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n", b"x" * 100),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"a\r\n0123456789\r\n"),
    ],
    ids=["content-length", "chunked"],
)
async def test_upstream_dying_mid_body_cuts_the_client_response(
    cluster: Cluster, proxy_log: pytest.LogCaptureFixture, head: bytes, partial: bytes
) -> None:
    async def dies(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        if req.target == "/ok":
            writer.write(ok_response(b"fine"))
            return
        writer.write(head + partial)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    up = await cluster.upstream(dies)
    gw = await cluster.gateway({"services": [service("s", f"http://{up.address}")]})
    resp = await http(gw.port, "GET", "/s/die")
    assert resp.status == 200
    assert not resp.complete  # a cut, not a fake complete response
    assert len(resp.body) < 1000
    assert any("mid-response" in r.getMessage() for r in proxy_log.records)
    resp = await http(gw.port, "GET", "/s/ok")  # the worker keeps serving
    assert (resp.status, resp.body, resp.complete) == (200, b"fine", True)


async def test_close_before_any_answer_is_502(cluster: Cluster) -> None:
    async def hangs_up(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.close()

    up = await cluster.upstream(hangs_up)
    gw = await cluster.gateway({"services": [service("s", f"http://{up.address}")]})
    resp = await http(gw.port, "POST", "/s", body=b"payload")
    assert resp.status == 502
    assert up.address in resp.body.decode()


async def test_garbage_instead_of_http_is_502(cluster: Cluster) -> None:
    async def garbage(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")

    up = await cluster.upstream(garbage)
    gw = await cluster.gateway({"services": [service("s", f"http://{up.address}")]})
    client = await RawClient.connect(gw.port)
    resp = await client.request("GET", "/s")
    assert resp.status == 502
    assert b"invalid HTTP response" in resp.body
    resp = await client.request("GET", "/s")  # the client connection survives
    assert resp.status == 502
    await client.close()


async def test_slow_upload_longer_than_read_timeout_is_not_cut(cluster: Cluster) -> None:
    """The read timeout measures the upstream's silence after the request, not the
    time a client takes to upload."""
    async def thinks(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.1)  # less than the read timeout, after the whole body
        writer.write(ok_response(b"got-it"))

    up = await cluster.upstream(thinks)
    gw = await cluster.gateway({"services": [service(
        "s", f"http://{up.address}", timeouts={"read": 0.25})]})
    client = await RawClient.connect(gw.port)
    await client.send_raw(b"POST /s HTTP/1.1\r\nhost: a\r\ncontent-length: 8\r\n\r\n")
    for part in (b"ab", b"cd", b"ef", b"gh"):
        await asyncio.sleep(0.15)
        await client.send_raw(part)
    resp = await client.read_response()
    await client.close()
    assert (resp.status, resp.body) == (200, b"got-it")
    assert up.requests[-1].body == b"abcdefgh"
