"""The ASGI bridge (proxy/asgi.py) serving a small Starlette app over real sockets.

Served the way the admin listener is served: ``proxy.app_dispatcher.AppDispatcher`` on a
``ClientConnection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from client_harness import read_reply, read_until_close
from gateway_harness import http, start_gateway
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from campusgate.config.model import Limits
from campusgate.proxy.app_dispatcher import HEALTHY, AppDispatcher
from campusgate.proxy.echo import echo_app
from campusgate.proxy.http1 import ClientConnection, ListenerState

MB = 1024 * 1024


class Events:
    def __init__(self) -> None:
        self.stream_closed = asyncio.Event()
        self.sent = 0


def make_app(events: Events) -> Starlette:
    async def count(request: Request) -> Response:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return JSONResponse({"bytes": total})

    async def echo_json(request: Request) -> Response:
        return JSONResponse(await request.json())

    async def download(request: Request) -> Response:
        size = int(request.query_params["mb"]) * MB

        async def body() -> AsyncIterator[bytes]:
            piece = b"z" * (64 * 1024)
            for _ in range(size // len(piece)):
                yield piece

        return StreamingResponse(body(), media_type="application/octet-stream")

    async def endless(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    events.sent += 1
                    yield b"data: tick\n\n"
                    await asyncio.sleep(0.01)
            finally:
                events.stream_closed.set()

        return StreamingResponse(body(), media_type="text/event-stream")

    async def fail_early(request: Request) -> Response:
        raise RuntimeError("secret internal detail")

    async def fail_late(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first part;"
            await asyncio.sleep(0.01)
            raise RuntimeError("broken mid-stream")

        return StreamingResponse(body())

    return Starlette(routes=[
        Route("/count", count, methods=["POST"]),
        Route("/json", echo_json, methods=["POST"]),
        Route("/download", download),
        Route("/endless", endless),
        Route("/fail-early", fail_early),
        Route("/fail-late", fail_late),
    ])


@contextlib.asynccontextmanager
async def serving(app: object, limits: Limits | None = None) -> AsyncIterator[int]:
    dispatcher = app if isinstance(app, AppDispatcher) else AppDispatcher(app)  # type: ignore[arg-type]
    async with serving_with(dispatcher, limits) as port:
        yield port


@contextlib.asynccontextmanager
async def serving_with(dispatcher: AppDispatcher, limits: Limits | None = None
                       ) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    state = ListenerState(dispatcher, limits or Limits())
    server = await loop.create_server(lambda: ClientConnection(state, loop), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for conn in list(state.connections):
            conn.close()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def port(events: Events) -> AsyncIterator[int]:
    async with serving(make_app(events)) as p:
        yield p


async def open_(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=4 * MB)


async def test_fixed_answers_do_not_load_the_app(events: Events) -> None:
    """The admin listener's ``/healthz``: a liveness probe gets its answer without
    the admin plane being built (the factory runs at the first other request)."""
    built: list[int] = []

    async def factory() -> Starlette:
        built.append(1)
        return make_app(events)

    dispatcher = AppDispatcher(factory=factory, fixed={"/healthz": HEALTHY})
    async with serving_with(dispatcher) as p:
        for method in ("GET", "HEAD"):
            resp = await http(p, method, "/healthz")
            assert resp.status == 200 and resp.header("content-type") == "application/json"
            assert len(resp.header("x-request-id") or "") == 32
            assert resp.body == (b'{"status":"ok"}' if method == "GET" else b"")
        assert built == []
        assert (await http(p, "POST", "/healthz", body=b"{}")).status == 404  # the app's
        assert (await http(p, "POST", "/json", body=b"{\"a\": 1}")).status == 200
        assert built == [1]


async def test_large_upload_streams_into_the_app(port: int) -> None:
    reader, writer = await open_(port)
    size = 30 * MB
    writer.write(b"POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size)
    piece = bytes(MB)
    for _ in range(30):
        writer.write(piece)
        await writer.drain()
    reply = await asyncio.wait_for(read_reply(reader), 10)
    writer.close()
    assert reply.status == 200 and reply.json() == {"bytes": size}


async def test_chunked_upload_reaches_the_app(port: int) -> None:
    reader, writer = await open_(port)
    writer.write(b"POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(10):
        writer.write(b"10000\r\n" + bytes(0x10000) + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    reply = await asyncio.wait_for(read_reply(reader), 10)
    writer.close()
    assert reply.json() == {"bytes": 10 * 0x10000}


async def test_json_round_trip_with_a_large_body(port: int) -> None:
    payload = {"items": [{"n": i, "s": "x" * 50} for i in range(20000)]}
    body = json.dumps(payload).encode()
    reader, writer = await open_(port)
    writer.write(b"POST /json HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    reply = await asyncio.wait_for(read_reply(reader), 10)
    writer.close()
    assert reply.status == 200 and reply.json() == payload


async def test_large_streaming_response_arrives_whole_and_chunked(port: int) -> None:
    reader, writer = await open_(port)
    writer.write(b"GET /download?mb=20 HTTP/1.1\r\nHost: a\r\n\r\n")
    reply = await asyncio.wait_for(read_reply(reader), 10)
    # the same connection still works after a streamed response
    writer.write(b"GET /download?mb=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    second = await asyncio.wait_for(read_reply(reader), 10)
    writer.close()
    assert reply.header("transfer-encoding") == "chunked"
    assert len(reply.body) == 20 * MB and set(reply.body) == {ord("z")}
    assert len(second.body) == MB


async def test_raw_app_failing_before_its_response_gives_500_json() -> None:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        raise RuntimeError("secret internal detail")

    async with serving(app) as p:
        reader, writer = await open_(p)
        for _ in range(2):  # the connection stays usable
            writer.write(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            reply = await asyncio.wait_for(read_reply(reader), 5)
            assert reply.status == 500
            error = reply.json()["error"]
            assert error["code"] == "internal_error"
            assert "secret" not in reply.body.decode()
            assert reply.header("x-request-id") == error["request_id"]
        writer.close()


async def test_starlette_app_failing_gets_starlettes_500_and_keeps_serving(port: int) -> None:
    reader, writer = await open_(port)
    writer.write(b"GET /fail-early HTTP/1.1\r\nHost: a\r\n\r\n")
    reply = await asyncio.wait_for(read_reply(reader), 5)
    assert reply.status == 500
    assert b"secret" not in reply.body
    writer.write(b"GET /download?mb=1 HTTP/1.1\r\nHost: a\r\n\r\n")  # still usable
    assert (await asyncio.wait_for(read_reply(reader), 5)).status == 200
    writer.close()


async def test_app_failing_mid_response_cuts_the_connection(port: int) -> None:
    reader, writer = await open_(port)
    writer.write(b"GET /fail-late HTTP/1.1\r\nHost: a\r\n\r\n")
    raw = await read_until_close(reader, 5)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b"first part;" in raw
    assert not raw.endswith(b"0\r\n\r\n")  # no clean end: the client knows it is cut


async def test_client_disconnect_stops_a_streaming_response(port: int, events: Events) -> None:
    reader, writer = await open_(port)
    writer.write(b"GET /endless HTTP/1.1\r\nHost: a\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"data: tick"), 5)
    writer.transport.abort()
    await asyncio.wait_for(events.stream_closed.wait(), 5)
    sent = events.sent
    await asyncio.sleep(0.1)
    assert events.sent == sent  # the app stopped producing


async def test_raw_asgi_app_sees_disconnect_while_waiting_on_receive() -> None:
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        assert callable(receive) and callable(send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        message = await receive()  # body is complete: the next one is a disconnect
        message = await receive()
        await seen.put(message["type"])

    async with serving(app) as p:
        reader, writer = await open_(p)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n1\r\nx"), 5)
        writer.transport.abort()
        assert await asyncio.wait_for(seen.get(), 5) == "http.disconnect"


async def test_builtin_echo_app_through_the_bridge() -> None:
    async with serving(echo_app) as p:
        reader, writer = await open_(p)
        writer.write(b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nX-Request-Id: keep-me\r\n"
                     b"Content-Length: 2\r\n\r\nhi")
        reply = await asyncio.wait_for(read_reply(reader), 5)
        writer.close()
    data = reply.json()
    assert (data["path"], data["query"], data["body"]) == ("/x", "y=1", "hi")
    assert reply.header("x-request-id") == data["headers"]["x-request-id"]


async def test_an_app_sees_the_request_as_an_upstream_would_after_plugins() -> None:
    """Credentials stripped and consumer headers added by authentication reach an
    in-process app exactly as they reach an HTTP upstream."""
    gw = await start_gateway({
        "services": [{"name": "echo", "url": "builtin://echo",
                      "plugins": [{"name": "key-auth"}],
                      "routes": [{"name": "echo", "paths": ["/echo"]}]}],
        "consumers": [{"name": "app", "credentials": [
            {"type": "key-auth", "key": "app-key-0123456789"}]}]})
    try:
        answer = await http(gw.port, "GET", "/echo", [(b"apikey", b"app-key-0123456789")])
        seen = json.loads(answer.body)["headers"]
        assert answer.status == 200
        assert "apikey" not in seen
        assert seen["x-consumer-name"] == "app"
    finally:
        await gw.close()
