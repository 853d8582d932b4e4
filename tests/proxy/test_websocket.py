"""WebSocket through the gateway: a ``websockets`` client, the gateway, a ``websockets`` server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import pytest
from gateway_harness import RunningGateway, http, service, start_gateway
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response


class WsUpstream:
    """An echo server that records paths and how each connection closed."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.close_codes: list[int | None] = []
        self.server: Server | None = None

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        try:
            async for message in ws:
                if message == "close-please":
                    await ws.close(4000, "bye")
                    break
                await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            self.close_codes.append(ws.close_code)

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/forbidden"):
            return conn.respond(HTTPStatus.FORBIDDEN, "no sockets for you\n")
        return None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(next(iter(self.server.sockets)).getsockname()[1])


@pytest.fixture
async def ws_gateway() -> AsyncIterator[tuple[WsUpstream, RunningGateway]]:
    up = WsUpstream()
    up.server = await serve(up.handler, "127.0.0.1", 0, process_request=up.process_request)
    gw = await start_gateway({"services": [
        service("ws", f"http://127.0.0.1:{up.port}", paths=["/ws"]),
    ]})
    yield up, gw
    await gw.close()
    up.server.close()
    await up.server.wait_closed()


def _uri(gw: RunningGateway, path: str = "/ws/chat") -> str:
    return f"ws://127.0.0.1:{gw.port}{path}"


async def test_messages_flow_both_ways(ws_gateway: tuple[WsUpstream, RunningGateway]) -> None:
    up, gw = ws_gateway
    async with connect(_uri(gw, "/ws/chat?room=1")) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01binary")
        assert await ws.recv() == b"\x00\x01binary"
        big = "x" * (1024 * 1024)
        await ws.send(big)
        assert await ws.recv() == big
        for i in range(50):
            await ws.send(f"m{i}")
        assert [await ws.recv() for _ in range(50)] == [f"m{i}" for i in range(50)]
    assert up.paths == ["/chat?room=1"]
    assert up.headers[0]["x-forwarded-for"] == "127.0.0.1"
    assert "x-request-id" in up.headers[0]
    await asyncio.sleep(0.05)
    assert up.close_codes == [1000]  # the client's close handshake reached the server


async def test_server_close_reaches_the_client(
    ws_gateway: tuple[WsUpstream, RunningGateway]
) -> None:
    _, gw = ws_gateway
    async with connect(_uri(gw)) as ws:
        await ws.send("close-please")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")


async def test_refused_upgrade_is_passed_through(
    ws_gateway: tuple[WsUpstream, RunningGateway]
) -> None:
    _, gw = ws_gateway
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_uri(gw, "/ws/forbidden")):
            pass
    assert refused.value.response.status_code == 403
    assert refused.value.response.body == b"no sockets for you\n"


async def test_several_sockets_at_once_and_plain_http_after(
    ws_gateway: tuple[WsUpstream, RunningGateway]
) -> None:
    _up, gw = ws_gateway

    async def talk(n: int) -> list[Any]:
        async with connect(_uri(gw)) as ws:
            out = []
            for i in range(20):
                await ws.send(f"{n}:{i}")
                out.append(await ws.recv())
            return out

    results = await asyncio.gather(*(talk(n) for n in range(5)))
    assert results == [[f"{n}:{i}" for i in range(20)] for n in range(5)]
    # the websockets server answers plain HTTP with 426: the gateway passes it through
    resp = await http(gw.port, "GET", "/ws/chat")
    assert resp.status == 426
