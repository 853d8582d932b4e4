"""Active health checks against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from campusgate.config.model import Upstream
from campusgate.proxy.balancer import Balancer
from campusgate.proxy.health import (
    ActiveHealthChecker,
    ProbeError,
    ProbeTally,
    http_probe,
)

# ---------------------------------------------------------------- test servers


@dataclass
class FakeTarget:
    """A tiny HTTP server: answers ``status``, or nothing at all when it is None."""

    status: int | None = 200
    raw: bytes | None = None
    requests: list[bytes] = field(default_factory=list)
    disconnects: int = 0
    server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            if self.raw is not None:
                writer.write(self.raw)
            elif self.status is not None:
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode()
                )
            await reader.read()  # until the prober closes
            self.disconnects += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            self.disconnects += 1
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    servers: list[asyncio.Server] = []

    async def start(**kwargs: Any) -> FakeTarget:
        target = FakeTarget(**kwargs)
        target.server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
        servers.append(target.server)
        return target

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def upstream(addresses: list[str], **active: Any) -> Upstream:
    settings = {"interval": 0.05, "timeout": 0.2, "healthy_threshold": 2,
                "unhealthy_threshold": 2, "path": "/healthz", **active}
    return Upstream.model_validate(
        {
            "name": "up",
            "targets": [{"target": a} for a in addresses],
            "healthchecks": {"active": settings},
        }
    )


async def wait_for(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll ``condition`` (state changed by other tasks) until it holds."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await asyncio.sleep(0.01)


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


# ---------------------------------------------------------------- http_probe


async def test_probe_returns_the_status_and_sends_path_and_host(serve: Any) -> None:
    ok, failing = await serve(status=204), await serve(status=500)
    assert await http_probe(*split(ok.address), "/healthz?full=1", None, 1.0) == 204
    assert await http_probe(*split(failing.address), "/", "api.example.edu", 1.0) == 500
    assert ok.requests[0].startswith(b"GET /healthz?full=1 HTTP/1.1\r\n")
    assert f"\r\nHost: {ok.address}\r\n".encode() in ok.requests[0]
    assert b"\r\nHost: api.example.edu\r\n" in failing.requests[0]
    await wait_for(lambda: ok.disconnects == 1)  # the probe closed its connection


async def test_probe_failures_raise(serve: Any) -> None:
    silent, garbage = await serve(status=None), await serve(raw=b"SSH-2.0-OpenSSH\r\n")
    with pytest.raises(TimeoutError):
        await http_probe(*split(silent.address), "/", None, 0.1)
    with pytest.raises(ProbeError, match="not an HTTP status line"):
        await http_probe(*split(garbage.address), "/", None, 1.0)
    with pytest.raises(OSError):
        await http_probe(*split(closed_port()), "/", None, 1.0)


async def test_probe_of_a_server_that_closes_at_once() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionError):
            await http_probe("127.0.0.1", port, "/", None, 1.0)
    finally:
        server.close()
        await server.wait_closed()


# ---------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    ("results", "verdicts"),
    [
        # healthy_threshold 2, unhealthy_threshold 3; None = no change
        ("++", [None, True]),
        ("++++", [None, True, None, None]),
        ("---", [None, None, False]),
        ("--+--", [None, None, None, None, None]),  # never 3 in a row
        ("---++", [None, None, False, None, True]),
        ("++-+-", [None, True, None, None, None]),
        ("++---", [None, True, None, None, False]),
    ],
)
def test_tally_thresholds(results: str, verdicts: list[bool | None]) -> None:
    tally = ProbeTally(healthy_threshold=2, unhealthy_threshold=3)
    assert [tally.record(r == "+") for r in results] == verdicts


# ---------------------------------------------------------------- the checker


async def test_checker_marks_targets_by_thresholds(serve: Any) -> None:
    healthy, failing, silent = await serve(), await serve(status=500), await serve(status=None)
    dead = closed_port()
    up = upstream([healthy.address, failing.address, silent.address, dead])
    balancer = Balancer(up)
    checker = ActiveHealthChecker(up, balancer)
    checker.start()
    try:
        def verdicts() -> list[object]:
            health = balancer.health(0.0)
            return [health[a]["active"] for a in (healthy.address, failing.address,
                                                  silent.address, dead)]

        await wait_for(lambda: verdicts() == ["healthy", "unhealthy", "unhealthy", "unhealthy"])
        assert {balancer.pick(0.0).address for _ in range(4)} == {  # type: ignore[union-attr]
            healthy.address
        }
        assert all(r.startswith(b"GET /healthz HTTP/1.1") for r in healthy.requests)
    finally:
        await checker.close()


async def test_checker_follows_a_target_that_fails_and_recovers(serve: Any) -> None:
    target = await serve(status=200)
    other = await serve(status=200)
    up = upstream([target.address, other.address], healthy_threshold=2,
                  unhealthy_threshold=3)
    balancer = Balancer(up)
    checker = ActiveHealthChecker(up, balancer)

    def state() -> object:
        return balancer.health(0.0)[target.address]["active"]

    await checker.check_once()
    assert state() == "unknown"  # one success of two
    await checker.check_once()
    assert state() == "healthy"
    target.status = 503
    await checker.check_once()
    await checker.check_once()
    assert state() == "healthy"  # two failures of three
    await checker.check_once()
    assert state() == "unhealthy"
    assert {balancer.pick(0.0).address for _ in range(3)} == {other.address}  # type: ignore[union-attr]
    target.status = 200
    await checker.check_once()
    assert state() == "unhealthy"
    await checker.check_once()
    assert state() == "healthy"


async def test_statuses_outside_healthy_statuses_are_failures(serve: Any) -> None:
    target = await serve(status=404)
    up = upstream([target.address], healthy_statuses=[200, 404], unhealthy_threshold=1,
                  healthy_threshold=1)
    balancer = Balancer(up)
    checker = ActiveHealthChecker(up, balancer)
    await checker.check_once()
    assert balancer.health(0.0)[target.address]["active"] == "healthy"
    target.status = 200
    up2 = upstream([target.address], healthy_statuses=[204], unhealthy_threshold=1)
    checker2 = ActiveHealthChecker(up2, balancer)
    await checker2.check_once()
    assert balancer.health(0.0)[target.address]["active"] == "unhealthy"


async def test_a_probe_that_raises_does_not_stop_the_checker(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = await serve()
    up = upstream([healthy.address, "127.0.0.1:9"], unhealthy_threshold=1, healthy_threshold=1)
    balancer = Balancer(up)
    calls: list[int] = []

    async def flaky_probe(host: str, port: int, path: str, host_header: str | None,
                          timeout: float) -> int:  # noqa: ASYNC109
        calls.append(port)
        if port == 9:
            raise RuntimeError("probe bug")
        return await http_probe(host, port, path, host_header, timeout)

    checker = ActiveHealthChecker(up, balancer, flaky_probe)
    caplog.set_level(logging.INFO, logger="campusgate.health")
    checker.start()
    try:
        await wait_for(lambda: calls.count(9) >= 3)
    finally:
        await checker.close()
    health = balancer.health(0.0)
    assert health["127.0.0.1:9"]["active"] == "unhealthy"
    assert health[healthy.address]["active"] == "healthy"
    assert any("probe bug" in (r.exc_text or "") for r in caplog.records)
    assert any("is now unhealthy" in r.getMessage() for r in caplog.records)


async def test_close_cancels_a_probe_in_flight_and_stops_probing(serve: Any) -> None:
    silent = await serve(status=None)
    up = upstream([silent.address], timeout=5.0, interval=0.05)
    checker = ActiveHealthChecker(up, Balancer(up))
    task = checker.start()
    assert checker.start() is task  # starting twice runs one loop
    await wait_for(lambda: len(silent.requests) == 1)
    await checker.close()
    assert task.cancelled()
    await wait_for(lambda: silent.disconnects == 1)  # the probe's socket was closed
    await asyncio.sleep(0.15)
    assert len(silent.requests) == 1
    await checker.close()  # closing twice is harmless


async def test_stop_then_close_and_reload_to_a_new_checker(serve: Any) -> None:
    target = await serve(status=500)
    up = upstream([target.address], unhealthy_threshold=1)
    old_balancer = Balancer(up)
    old = ActiveHealthChecker(up, old_balancer)
    old.start()
    await wait_for(lambda: old_balancer.health(0.0)[target.address]["active"] == "unhealthy")
    old.stop()
    await old.close()

    # the next revision: carried verdict holds until the new checker decides otherwise
    target.status = 200
    new_balancer = Balancer(up)
    new_balancer.carry_over(old_balancer)
    assert new_balancer.pick(0.0) is None
    new = ActiveHealthChecker(up, new_balancer)
    new.start()
    try:
        await wait_for(lambda: new_balancer.pick(0.0) is not None)
    finally:
        await new.close()


def test_checker_needs_active_settings() -> None:
    up = Upstream.model_validate({"name": "up", "targets": [{"target": "127.0.0.1:1"}]})
    with pytest.raises(ValueError, match="no active health check"):
        ActiveHealthChecker(up, Balancer(up))
