"""ProviderClient (ai/client.py) against a real HTTP server on 127.0.0.1: whole and
streamed answers, keep-alive reuse, a pooled connection the server closed, timeouts,
and a consumer that stops mid-stream (the server sees the connection go)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from campusgate.ai.client import ProviderClient, request_bytes
from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import UpstreamRequest


@dataclass
class FakeProvider:
    """Answers by path: /json, /stream (chunked, paced), /slow (no answer),
    /close-after (answers, then closes the kept-alive connection)."""

    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    stream_gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                path = head.split(b" ")[1]
                served += 1
                if path == b"/drop-if-reused" and served > 1:
                    return  # as if the server had timed the idle connection out
                if path in (b"/json", b"/drop-if-reused"):
                    data = b'{"ok": true, "echo": ' + (body or b"null") + b"}"
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(data), data))
                elif path == b"/close-after":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    await writer.drain()
                    writer.close()
                    return
                elif path == b"/stream":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n")
                    try:
                        for n in range(50):
                            piece = b"data: %d\n\n" % n
                            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                            await writer.drain()
                            await asyncio.sleep(0.01)
                        writer.write(b"0\r\n\r\n")
                    except (ConnectionError, OSError):
                        self.stream_gone.set()
                        return
                elif path == b"/slow":
                    await asyncio.sleep(5)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            if not self.stream_gone.is_set():
                self.stream_gone.set()
        finally:
            writer.close()


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    fake = FakeProvider()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    made = ProviderClient(asyncio.get_running_loop())
    yield made
    made.close()


def post(fake: FakeProvider, path: str, body: bytes = b"{}") -> UpstreamRequest:
    return UpstreamRequest("POST", f"http://127.0.0.1:{fake.port}{path}",
                           {"content-type": "application/json", "authorization": "Bearer k"},
                           body)


async def test_a_whole_answer_and_keep_alive_reuse(provider: FakeProvider,
                                                   client: ProviderClient) -> None:
    for n in range(3):
        answer = await client.call(post(provider, "/json", b'{"n": %d}' % n))
        assert answer.status == 200 and answer.headers["content-type"] == "application/json"
        assert await answer.read() == b'{"ok": true, "echo": {"n": %d}}' % n
    assert provider.connections == 1
    sent = provider.requests[0]
    assert sent.startswith(b"POST /json HTTP/1.1\r\n") and b"\r\nauthorization: Bearer k" in sent
    assert f"host: 127.0.0.1:{provider.port}".encode() in sent


async def test_a_stream_arrives_piece_by_piece(provider: FakeProvider,
                                               client: ProviderClient) -> None:
    answer = await client.call(post(provider, "/stream"))
    pieces = [piece async for piece in answer.chunks()]
    assert len(pieces) > 10  # not buffered into one
    assert b"".join(pieces) == b"".join(b"data: %d\n\n" % n for n in range(50))


async def test_a_closed_pooled_connection_is_not_reused(
        provider: FakeProvider, client: ProviderClient) -> None:
    first = await client.call(post(provider, "/close-after"))
    assert await first.read() == b"ok"
    await asyncio.sleep(0.05)
    again = await client.call(post(provider, "/json"))
    assert again.status == 200 and (await again.read()).startswith(b'{"ok": true')
    assert provider.connections == 2


async def test_a_pooled_connection_dropped_under_the_request_is_retried_once(
        provider: FakeProvider, client: ProviderClient) -> None:
    first = await client.call(post(provider, "/drop-if-reused"))
    assert (await first.read()).startswith(b'{"ok": true')
    again = await client.call(post(provider, "/drop-if-reused"))  # the pooled one drops it
    assert again.status == 200 and (await again.read()).startswith(b'{"ok": true')
    assert provider.connections == 2


async def test_no_answer_in_time_is_a_timeout(provider: FakeProvider,
                                              client: ProviderClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await client.call(post(provider, "/slow"), read_timeout=0.2)
    assert caught.value.kind == "timeout" and "127.0.0.1" in caught.value.message


async def test_a_short_timeout_fires_while_a_longer_one_is_waiting(
        provider: FakeProvider, client: ProviderClient) -> None:
    """The client's one read timer is armed for the nearest deadline: a call with a
    short read timeout started after one with a long timeout still times out in time,
    and the long one goes on waiting."""
    slow = asyncio.ensure_future(client.call(post(provider, "/slow"), read_timeout=30))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ProviderError) as caught:
        await client.call(post(provider, "/slow"), read_timeout=0.2)
    assert caught.value.kind == "timeout" and loop.time() - began < 5
    assert not slow.done()
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow


async def test_stopping_mid_stream_closes_the_providers_connection(
        provider: FakeProvider, client: ProviderClient) -> None:
    answer = await client.call(post(provider, "/stream"))
    async for _ in answer.chunks():
        break
    answer.close()
    await asyncio.wait_for(provider.stream_gone.wait(), 5)


async def test_nobody_listening_is_a_server_error(client: ProviderClient) -> None:
    request = UpstreamRequest("POST", "http://127.0.0.1:9/v1", {}, b"")
    with pytest.raises(ProviderError) as caught:
        await client.call(request)
    assert caught.value.kind == "server"


async def test_every_call_sends_its_own_body_and_headers(provider: FakeProvider,
                                                         client: ProviderClient) -> None:
    """The request head is made once per deployment: the length and the body are
    still each call's, and a changed header (a rotated key) is sent."""
    bodies = [b'{"n": 1}', b'{"n": 22222}', b"[]"]
    for body in bodies:
        answer = await client.call(post(provider, "/json", body))
        assert await answer.read() == b'{"ok": true, "echo": ' + body + b"}"
    rotated = UpstreamRequest("POST", f"http://127.0.0.1:{provider.port}/json",
                              {"content-type": "application/json",
                               "authorization": "Bearer rotated"}, b"{}")
    assert (await (await client.call(rotated)).read()).endswith(b"{}}")
    sent = provider.requests
    for request, body in zip(sent, bodies, strict=False):
        assert request.endswith(b"\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    assert b"authorization: Bearer k\r\n" in sent[0]
    assert b"authorization: Bearer rotated\r\n" in sent[3] and b"Bearer k" not in sent[3]
    assert provider.connections == 1


def test_header_injection_is_refused() -> None:
    bad = UpstreamRequest("POST", "https://api.example.com/v1/x", {"x-a": "1\r\nx-b: 2"}, b"")
    with pytest.raises(ProviderError):
        request_bytes(bad, "api.example.com")
    ok = request_bytes(UpstreamRequest("GET", "https://h/p?q=1", {"Host": "evil"}, b""), "h")
    assert ok.startswith(b"GET /p?q=1 HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n")
    assert b"evil" not in ok
