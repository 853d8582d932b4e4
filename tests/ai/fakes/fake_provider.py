"""A fake model provider: a raw asyncio HTTP/1.1 server on 127.0.0.1 speaking OpenAI's
and Anthropic's wire formats (:mod:`fake_openai_wire`, :mod:`fake_anthropic_wire`).

Why raw asyncio and httptools rather than a web framework: the same server is the
upstream of the AI benchmarks, and it must be much faster than the gateway in front
of it (a canned answer costs a JSON parse of the request and a cached write).

Paths: ``POST /v1/chat/completions``, ``POST /v1/embeddings``, ``GET /v1/models``
(OpenAI; ``base_url`` ``{url}/v1``) and ``POST /v1/messages`` (Anthropic; ``base_url``
``{url}``).  What it answers is a :class:`~fake_reply.Reply`: the next one queued
(:meth:`FakeProvider.push`), else the one set for the request's model
(:attr:`FakeProvider.by_model`), else :attr:`FakeProvider.default`.  With ``keys`` set,
a request without one of them gets the provider's 401.  Every request is recorded
(:attr:`FakeProvider.seen`), and a client that closes the connection before a stream
ends is counted (:attr:`FakeProvider.aborted`).

In tests: ``with running_fake() as fake: ...`` (a thread with its own loop).  As a
process (benchmarks): ``python tests/ai/fakes/fake_provider.py --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import fake_anthropic_wire as anthropic_wire
import fake_openai_wire as openai_wire
import httptools
from fake_reply import Reply

__all__ = ["FakeProvider", "RunningFake", "Seen", "running_fake", "serve"]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable", 529: "Overloaded"}


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeProvider:
    """What the fake answers and what it saw (shared by its connections)."""

    default: Reply = field(default_factory=Reply)
    by_model: dict[str, Reply] = field(default_factory=dict)
    #: Accepted API keys (Bearer or x-api-key); None accepts any.
    keys: set[str] | None = None
    #: Keep the last this many requests (benchmarks run millions).
    keep: int = 1000
    seen: deque[Seen] = field(default_factory=deque)
    aborted: int = 0
    streams_done: int = 0
    _queue: deque[Reply] = field(default_factory=deque)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _cache: dict[tuple[Any, ...], bytes] = field(default_factory=dict)

    def push(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self._queue.extend(replies)

    def reply_for(self, model: str) -> Reply:
        if self._queue:
            return self._queue.popleft()
        return self.by_model.get(model, self.default)

    def record(self, seen: Seen) -> None:
        self.seen.append(seen)
        if len(self.seen) > self.keep:
            self.seen.popleft()

    def models_seen(self, path: str | None = None) -> list[str]:
        return [str(s.body.get("model")) for s in self.seen
                if path is None or s.path == path]

    def note(self, *, aborted: bool) -> None:
        with self._changed:
            if aborted:
                self.aborted += 1
            else:
                self.streams_done += 1
            self._changed.notify_all()

    def wait_aborted(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` streams were closed by the client before their end."""
        with self._changed:
            return self._changed.wait_for(lambda: self.aborted >= count, timeout)

    def cached(self, key: tuple[Any, ...], make: Any) -> bytes:
        """A rendered answer, made once per key (the benchmarks' fast path)."""
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = make()
        return found


class _Connection(asyncio.Protocol):
    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.streaming = False
        self.tail: asyncio.Task[None] | None = None

    # -- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming:
            self.streaming = False
            self.fake.note(aborted=True)
        if self.tail is not None:
            self.tail.cancel()

    # -- httptools
    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        path = self.url.decode().split("?", 1)[0]
        try:
            body = json.loads(self.body) if self.body else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        self.fake.record(Seen(method, path, self.headers, body))
        self._answer(method, path, body)

    # -- answers
    def _answer(self, method: str, path: str, body: dict[str, Any]) -> None:
        anthropic = path == "/v1/messages"
        model = str(body.get("model", ""))
        if method == "GET" and path == "/v1/models":
            self._write(200, b'{"object":"list","data":[]}')
            return
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/embeddings",
                                            "/v1/messages"):
            self._write(404, b'{"error":{"message":"no such path","type":'
                             b'"invalid_request_error","param":null,"code":null}}')
            return
        reply = self.fake.reply_for(model)
        bearer = self.headers.get("authorization", "").removeprefix("Bearer ")
        key = (self.headers.get("x-api-key") or bearer) if anthropic else bearer
        if self.fake.keys is not None and key not in self.fake.keys:
            reply = Reply(status=401, error_message="Incorrect API key provided.")
        if reply.status != 200:
            wire = anthropic_wire if anthropic else openai_wire
            extra = {"retry-after": str(reply.retry_after)} if reply.retry_after else {}
            self._later(reply, [wire.error_body(reply)], status=reply.status, extra=extra)
        elif path == "/v1/embeddings":
            self._later(reply, [openai_wire.embeddings(body, reply)])
        elif not body.get("stream"):
            made = self.fake.cached(
                (path, model, reply),
                lambda: (anthropic_wire.message(reply, model) if anthropic
                         else openai_wire.chat_completion(reply, model)))
            self._later(reply, [made])
        else:
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = (anthropic_wire.message_events(reply, model) if anthropic else
                      openai_wire.chat_events(reply, model, usage))
            self._later(reply, events, stream=True)

    def _later(self, reply: Reply, pieces: list[bytes], *, status: int = 200,
               stream: bool = False, extra: dict[str, str] | None = None) -> None:
        if not stream and not reply.first_byte_delay and reply.cut_after is None:
            self._write(status, pieces[0], extra)
            return
        self.tail = asyncio.get_running_loop().create_task(
            self._slowly(reply, pieces, status, stream, extra or {}))

    async def _slowly(self, reply: Reply, pieces: list[bytes], status: int,
                      stream: bool, extra: dict[str, str]) -> None:
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        if self.transport is None or self.transport.is_closing():
            return
        if not stream:
            body = pieces[0]
            if reply.cut_after is None:
                self._write(status, body, extra)
            else:
                self._head(status, "application/json", {"content-length": str(len(body)),
                                                        **extra})
                self.transport.write(body[:len(body) // 2])
                self._close()
            return
        self._head(200, "text/event-stream", {"transfer-encoding": "chunked",
                                              "cache-control": "no-cache"})
        self.streaming = True
        for number, event in enumerate(pieces):
            if reply.cut_after is not None and number >= reply.cut_after:
                self.streaming = False
                self._close()
                return
            if number and reply.event_delay:
                await asyncio.sleep(reply.event_delay)
            if self.transport.is_closing():
                return
            self.transport.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.transport.write(b"0\r\n\r\n")
        self.streaming = False
        self.fake.note(aborted=False)

    def _head(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        assert self.transport is not None
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                 f"content-type: {content_type}", "x-request-id: req_fake",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _write(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        assert self.transport is not None
        if status == 200 and not extra:
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
            return
        self._head(status, "application/json",
                   {"content-length": str(len(body)), **(extra or {})})
        self.transport.write(body)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(fake: FakeProvider, port: int = 0) -> asyncio.Server:
    """Listen on 127.0.0.1:``port`` (0: any free port)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Connection(fake), "127.0.0.1", port)


@dataclass
class RunningFake:
    """A fake served from a thread of the test process."""

    fake: FakeProvider
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)


@contextlib.contextmanager
def running_fake(fake: FakeProvider | None = None) -> Iterator[RunningFake]:
    """Serve ``fake`` (a default one if None) on a free port until the block ends."""
    fake = fake or FakeProvider()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: list[asyncio.Server] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder.append(loop.run_until_complete(serve(fake)))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-provider", daemon=True)
    thread.start()
    started.wait(10)
    server = holder[0]
    try:
        yield RunningFake(fake, int(server.sockets[0].getsockname()[1]))
    finally:
        async def stop() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-byte-delay", type=float, default=0.0)
    parser.add_argument("--event-delay", type=float, default=0.0)
    args = parser.parse_args()
    fake = FakeProvider(Reply(first_byte_delay=args.first_byte_delay,
                              event_delay=args.event_delay), keep=0)

    async def forever() -> None:
        server = await serve(fake, args.port)
        print(f"fake provider on 127.0.0.1:{args.port}", flush=True)
        await server.serve_forever()

    try:
        import uvloop
        uvloop.run(forever())
    except ImportError:  # pragma: no cover - uvloop is a campusgate dependency
        asyncio.run(forever())


if __name__ == "__main__":
    main()
