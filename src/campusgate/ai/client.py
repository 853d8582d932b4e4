"""Calls to model providers over the proxy's own keep-alive pools.

A :class:`ProviderClient` (one per worker) sends a translator's
:class:`~campusgate.ai.providers.base.UpstreamRequest` on a pooled connection
(:class:`~campusgate.proxy.upstream.TargetPool`: the same httptools-parsed,
keep-alive, TLS-capable connections the proxy forwards on) and gives back a
:class:`ProviderAnswer`: the status and headers first, then the body whole
(:meth:`ProviderAnswer.read`) or chunk by chunk as it arrives
(:meth:`ProviderAnswer.chunks`: a stream is never buffered).

- A pooled connection the provider had already closed (the answer is lost before any
  byte) is retried once on a new connection: that is not the provider failing.
- Timeouts: ``connect`` to get a connection, ``read`` between two reads of the
  answer (the head, then each piece of the body), so a slow first token counts
  against ``read`` but a long stream does not.  One timer per client watches every
  answer waiting (:class:`ReadWatch`): it is armed for the nearest deadline and kept
  while later ones come, so a call costs no timer of its own (making and cancelling
  one per wait cost about a tenth of an AI call's CPU).
- Per call, only what differs is made: a deployment's request head (request line,
  ``Host``, its headers) is remembered, the body and its length are appended; an
  idle pooled connection is taken without a coroutine; an answer complete when its
  head is read (a short completion arrives in one piece) is read without waiting.
- :meth:`ProviderAnswer.close` before the end aborts the connection: a client that
  went away mid-stream cancels the provider's work, and the connection is not reused.
- Backpressure: past :data:`HIGH_WATER` bytes unread, reading from the provider
  pauses until the consumer catches up.

Errors are :class:`~campusgate.ai.errors.ProviderError` ``timeout`` or ``server``
(connection refused, reset, an invalid HTTP answer), naming the provider host.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

from campusgate.ai.answer_parts import AnswerHeaders, ReadWatch
from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import UpstreamRequest
from campusgate.config.model import PoolSettings
from campusgate.proxy.context import HeaderList
from campusgate.proxy.upstream import TargetPool, UpstreamConnection

__all__ = ["HIGH_WATER", "AnswerHeaders", "ProviderAnswer", "ProviderClient", "ReadWatch",
           "request_bytes", "request_head", "request_target"]

#: Unread body bytes past which reading from the provider pauses.
HIGH_WATER = 256 * 1024
#: URLs whose pool and request-target are remembered (more: the memo starts over).
MAX_ROUTES = 1024
#: Request heads remembered (more: the memo starts over).  A deployment's head is the
#: same on every call; one signed per call (Bedrock) is never asked for again.
MAX_HEADS = 256
#: Largest non-streamed answer read (a chat completion is far smaller).
MAX_BODY = 32 * 1024 * 1024


def request_target(url: str) -> str:
    """The request-target of ``url``: its path and query."""
    parts = urlsplit(url)
    target = parts.path or "/"
    return target + "?" + parts.query if parts.query else target


def request_bytes(request: UpstreamRequest, host: str, target: str | None = None) -> bytes:
    """The HTTP/1.1 request: ``Host``, ``Content-Length`` and keep-alive set here;
    the translator's headers otherwise as given."""
    return _with_body(request_head(request, host, target or request_target(request.url)),
                      request.body)


def _with_body(head: bytes, body: bytes) -> bytes:
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


def request_head(request: UpstreamRequest, host: str, target: str) -> bytes:
    """The request line and headers, up to (not including) ``content-length`` and the
    blank line: the same for every call of a deployment, so it is made once."""
    lines = [f"{request.method} {target} HTTP/1.1", f"host: {host}"]
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered in ("host", "content-length", "connection", "transfer-encoding"):
            continue
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ProviderError("bad_request", f"header {name!r} has a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class ProviderAnswer:
    """One provider answer, read by one consumer.  A slotted class, not a dataclass:
    one is made per call, and a dataclass's default factories cost more than the
    assignments."""

    __slots__ = ("_buffered", "_chunks", "_done", "_expired", "_fault", "_keep_alive",
                 "_lost", "_paused", "_released", "_waiter", "conn", "headers", "host",
                 "pool", "read_timeout", "status", "watch")

    def __init__(self, host: str, conn: UpstreamConnection, pool: TargetPool,
                 read_timeout: float, watch: ReadWatch | None = None) -> None:
        self.host = host
        self.conn = conn
        self.pool = pool
        self.read_timeout = read_timeout
        self.watch = watch
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._keep_alive = False
        self._fault: str | None = None
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._released = False
        self._expired = False

    # ------------------------------------------------------------ the listener side
    def on_head(self, status: int, headers: HeaderList, framed: bool) -> None:
        self.status = status
        self.headers = AnswerHeaders(headers)
        self._wake()

    def on_body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self.conn.pause_reading()
        self._wake()

    def on_complete(self, keep_alive: bool) -> None:
        self._done = True
        self._keep_alive = keep_alive
        self._wake()

    def on_upgrade(self, rest: bytes) -> None:
        self.on_fault("the provider switched protocols")

    def on_fault(self, message: str) -> None:
        self._fault = message
        self._wake()

    def on_lost(self) -> None:
        self._lost = True
        self._wake()

    def on_write_paused(self, paused: bool) -> None:
        return None

    def on_read(self, started: bool) -> None:
        return None

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def expire(self) -> None:
        """The read timeout passed while waiting (called by :class:`ReadWatch`)."""
        self._expired = True
        self._wake()

    # ------------------------------------------------------------ the consumer side
    # Waiting is split in three plain methods, awaited as ``try: await
    # self._armed() finally: self._disarm()`` then ``self._expiry(what)``, so that
    # the waiting coroutine awaits the future itself: a helper coroutine would be one
    # more frame to make and to resume on every wake-up.
    def _armed(self) -> asyncio.Future[None]:
        """A future the next event resolves, watched for the read timeout."""
        loop = self.pool.loop
        waiter = self._waiter = loop.create_future()
        watch = self.watch
        if watch is None:  # an answer made by hand: a timer of its own
            watch = self.watch = ReadWatch(loop)
        watch.watch(self, loop.time() + self.read_timeout)
        return waiter

    def _disarm(self) -> None:
        if self.watch is not None:
            self.watch.unwatch(self)

    def _expiry(self, what: str) -> None:
        """Raise the read timeout if it passed while waiting."""
        if self._expired:
            self.close()
            raise ProviderError("timeout", f"{self.host} sent no {what} within "
                                f"{self.read_timeout:g} s")

    async def head(self) -> None:
        while not self.status and self._fault is None and not self._lost:
            try:
                await self._armed()
            finally:
                self._disarm()
            self._expiry("answer")
        self._check()

    def _check(self) -> None:
        if self._fault is not None:
            self.close()
            raise ProviderError("server", f"{self.host}: {self._fault}")
        if self._lost and not self._done:
            self.close()
            raise ProviderError("server", f"{self.host} closed the connection mid-answer")

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as it arrives; ends when the answer does."""
        while True:
            while self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._paused and self._buffered <= HIGH_WATER // 2:
                    self._paused = False
                    self.conn.resume_reading()
                yield data
            if self._done:
                self._release()
                return
            self._check()
            try:
                await self._armed()
            finally:
                self._disarm()
            self._expiry("data")

    def body_now(self, limit: int = MAX_BODY) -> bytes | None:
        """The whole body if it has all arrived (a short answer comes with its head),
        taken without a coroutine; else None (then :meth:`read` it)."""
        if self._done and not self._paused and self._buffered <= limit:
            body = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            self._release()
            return body
        return None

    async def read(self, limit: int = MAX_BODY) -> bytes:
        """The whole body (a ProviderError ``bad_response`` past ``limit`` bytes)."""
        body = self.body_now(limit)
        if body is not None:  # all there
            return body
        parts: list[bytes] = []
        size = 0
        async for data in self.chunks():
            size += len(data)
            if size > limit:
                self.close()
                raise ProviderError("bad_response",
                                    f"{self.host} answered more than {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._keep_alive and not self.conn.closed:
            self.pool.release(self.conn)
        else:
            self.conn.close()

    def close(self) -> None:
        """Stop reading: an unfinished answer aborts its connection (the provider
        stops generating); a finished one goes back to the pool."""
        if self._released:
            return
        if self._done:
            self._release()
            return
        self._released = True
        self.conn.abort()


class ProviderClient:
    """Pools per provider origin (``scheme://host:port``), for one worker's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: PoolSettings | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = loop
        self.settings = settings or PoolSettings()
        self._ssl = ssl_context
        self._pools: dict[str, TargetPool] = {}
        self._watch = ReadWatch(loop)
        #: URL -> (pool, Host value, request-target): a provider's URLs are few and
        #: asked for on every call.
        self._routes: dict[str, tuple[TargetPool, str, str]] = {}
        #: (method, URL, headers) -> the request's head without its length: a
        #: deployment's are the same on every call.
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}

    def route(self, url: str) -> tuple[TargetPool, str, str]:
        """:meth:`pool` and the request-target of ``url``, remembered."""
        found = self._routes.get(url)
        if found is None:
            pool, host = self.pool(url)
            found = (pool, host, request_target(url))
            if len(self._routes) >= MAX_ROUTES:
                self._routes.clear()
            self._routes[url] = found
        return found

    def pool(self, url: str) -> tuple[TargetPool, str]:
        """The pool for ``url``'s origin, and the ``Host`` header value."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderError("bad_request", f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        default = port == (443 if tls else 80)
        host_header = parts.hostname if default else f"{parts.hostname}:{port}"
        key = f"{parts.scheme}://{parts.hostname}:{port}"
        found = self._pools.get(key)
        if found is None:
            context = (self._ssl or ssl.create_default_context()) if tls else None
            found = TargetPool(self.loop, parts.hostname, port, self.settings, context,
                               server_hostname=parts.hostname)
            self._pools[key] = found
        return found, host_header

    async def call(self, request: UpstreamRequest, *, connect_timeout: float = 10.0,
                   read_timeout: float = 120.0,
                   traceparent: str | None = None) -> ProviderAnswer:
        """Send ``request``; the answer once its head has arrived.  ``traceparent``
        (W3C Trace Context, made by the gateway: no line breaks) is added after the
        deployment's cached head, so it never enters the head cache."""
        pool, host, target = self.route(request.url)
        key = (request.method, request.url, tuple(request.headers.items()))
        head = self._heads.get(key)
        if head is None:
            head = request_head(request, host, target)
            if len(self._heads) >= MAX_HEADS:
                self._heads.clear()
            self._heads[key] = head
        if traceparent is not None:
            head += b"traceparent: " + traceparent.encode("ascii") + b"\r\n"
        data = _with_body(head, request.body)
        for attempt in (1, 2):
            try:  # an idle connection needs no coroutine
                conn = pool.take_idle() or await pool.acquire(connect_timeout)
            except TimeoutError:
                raise ProviderError("timeout", f"connecting to {host} timed out") from None
            except OSError as exc:
                raise ProviderError("server", f"cannot connect to {host}: "
                                    f"{exc.strerror or exc}") from None
            answer = ProviderAnswer(host, conn, pool, read_timeout, self._watch)
            conn.begin(answer, head_only=request.method == "HEAD")
            conn.write(data)
            try:  # answer.head(), inlined: one coroutine frame less on every wake-up
                while not answer.status and answer._fault is None and not answer._lost:
                    try:
                        await answer._armed()
                    finally:
                        answer._disarm()
                    answer._expiry("answer")
                answer._check()
            except ProviderError:
                stale = conn.reused and not answer.status and answer._lost
                if stale and attempt == 1:
                    continue  # the pool's connection had been closed by the provider
                raise
            return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        for pool in self._pools.values():
            pool.retired = True
            pool.close_all()
        self._pools.clear()
        self._routes.clear()
        self._heads.clear()
        self._watch.close()
