"""One request/response exchange over one upstream connection.

The exchange writes the request head, pushes the request body as it arrives, and
passes the response back: head through :meth:`wait_head` (so the caller can retry or
run response plugins), body straight from the upstream's ``data_received`` into the
client transport, with back-pressure both ways (a paused client pauses the upstream
read side, a paused upstream pauses the client read side).

Routes with body-phase plugins (``proxy/bodies.py``) use three more things: a request
body already read whole (``payload``) is sent instead of the stream; a streamed one
can be counted (``meter``) and refused mid-way (:attr:`Outcome.REFUSED`); and the
response body can be gathered (:meth:`collect`) before the head is written.
"""

from __future__ import annotations

import asyncio
import time
from enum import Enum
from typing import TYPE_CHECKING

from campusgate.proxy import wire
from campusgate.proxy.context import HeaderList, LocalResponse
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request
from campusgate.proxy.upstream import UpstreamConnection

if TYPE_CHECKING:
    from campusgate.proxy.bodies import RequestMeter

__all__ = ["Exchange", "Outcome"]


class Outcome(Enum):
    COMPLETE = "complete"
    LOST = "lost"  # the upstream closed or reset
    FAULT = "fault"  # the upstream sent something that is not HTTP
    TIMEOUT = "timeout"
    CLIENT_GONE = "client_gone"
    UPGRADED = "upgraded"
    REFUSED = "refused"  # a body-phase plugin stopped the request body
    OVERFLOW = "overflow"  # collect(): the response body is larger than the limit


class Exchange:
    def __init__(
        self,
        client: ClientConnection,
        req: Request,
        upstream: UpstreamConnection,
        read_timeout: float,
        write_timeout: float,
        payload: bytes | None = None,
        meter: RequestMeter | None = None,
    ) -> None:
        self.client = client
        self.req = req
        self.upstream = upstream
        self.loop = client.loop
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.status = 0
        self.headers: HeaderList = []
        self.framed = True
        self.keep_alive = False
        self.fault = ""
        self.body_sent = False  # the request body finished going upstream
        self.body_started = False
        self.piping = False
        self._held: list[bytes] = []
        self._upgrade_rest = b""
        self._head: asyncio.Future[Outcome] = self.loop.create_future()
        self._done: asyncio.Future[Outcome] = self.loop.create_future()
        self._write_paused_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._chunked_up = req.chunked
        self.payload = payload  # the request body, read whole (body-phase plugins)
        self.meter = meter
        self.refusal: LocalResponse | None = None
        self._held_size = 0
        self._collect_limit = -1  # >= 0 while collect() gathers the response body
        self._collected: asyncio.Future[Outcome] | None = None
        #: ``time.monotonic()`` when the response's last byte arrived (0.0: not yet).
        self.completed_at = 0.0

    # ---------------------------------------------------------------- driving
    def send(self, head: bytes) -> None:
        """Write the request head and start the body (if any)."""
        self.upstream.begin(self, self.req.method == b"HEAD")
        self.upstream.write(head)
        self._arm(self.read_timeout)
        req = self.req
        req.on_disconnect = self._client_gone
        if self.payload is not None:
            self.body_started = self.body_sent = True
            self.upstream.write(self.payload)
        elif req.has_body and not req.upgrade:
            self.body_started = True
            req.attach_sink(self._body_out if self.meter is None else self._metered_out,
                            self._body_end)
        else:
            self.body_sent = True

    @property
    def finished(self) -> bool:
        """The whole response has arrived (or the exchange ended otherwise)."""
        return self._done.done()

    async def wait_head(self) -> Outcome:
        return await self._head

    def pipe_body(self) -> None:
        """After the caller wrote the response head: stream the body to the client."""
        self.piping = True
        upstream = self.upstream
        self.client.write_pause_hooks.append((self._client_paused, upstream.resume_reading))
        if self.client.write_paused:  # the client is already behind: hold the upstream
            self._client_paused()
        for data in self._held:
            self.client.write_body(data)
        self._held.clear()
        if self._collect_limit >= 0 and (self._done.done() or not self.client.write_paused):
            upstream.resume_reading()  # collect() held it at the limit

    async def collect(self, limit: int) -> Outcome:
        """Before the head is written: gather the response body.  COMPLETE when the
        whole body is in (:meth:`take_body`), OVERFLOW once more than ``limit`` bytes
        arrived (they stay held for :meth:`pipe_body`), else how the exchange ended."""
        self._collect_limit = limit
        if self._done.done():
            return self._done.result()
        if self._held_size > limit:
            return self._overflow()
        collected: asyncio.Future[Outcome] = self.loop.create_future()
        self._collected = collected

        def ended(done: asyncio.Future[Outcome]) -> None:
            if not collected.done():
                collected.set_result(done.result())

        self._done.add_done_callback(ended)
        return await collected

    def held(self) -> bytes:
        """What is held of the body (left held, for :meth:`pipe_body`)."""
        return b"".join(self._held)

    def take_body(self) -> bytes:
        """The body :meth:`collect` gathered."""
        body = b"".join(self._held)
        self._held.clear()
        return body

    def _overflow(self) -> Outcome:
        self.upstream.pause_reading()
        return Outcome.OVERFLOW

    def _client_paused(self) -> None:
        """The client's socket is full: hold the upstream, and time the client."""
        self.upstream.pause_reading()
        if self._timer is not None and not self._done.done():
            self._timer.cancel()
            self._arm(min(self.read_timeout, self.client.limits.send_timeout))

    async def wait_done(self) -> Outcome:
        try:
            return await self._done
        finally:
            self.finish()

    def finish(self) -> None:
        """Detach from client and timers (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.client.write_pause_hooks.clear()
        self.req.detach_sink()
        self.req.on_disconnect = None

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(delay, self._check_timeout)

    def _check_timeout(self) -> None:
        self._timer = None
        if self._done.done():
            return
        now = self.loop.time()
        if self.upstream.write_paused:
            waited = now - self._write_paused_at
            if waited >= self.write_timeout:
                self._end(Outcome.TIMEOUT)
            else:
                self._arm(self.write_timeout - waited)
            return
        client = self.client
        if client.write_paused:  # the client is slow, not the upstream
            stalled = now - client.write_paused_at
            send_timeout = client.limits.send_timeout
            if stalled >= send_timeout:
                self.upstream.abort()
                client.abort_response()
                self._end(Outcome.CLIENT_GONE)
            else:
                self._arm(min(self.read_timeout, send_timeout - stalled))
            return
        if not self.body_sent and self.status == 0:
            # still uploading: the upstream may rightly wait for the whole body (the
            # client side's body timeout guards against a stalled client)
            self._arm(self.read_timeout)
            return
        idle = now - self.upstream.last_read
        if idle >= self.read_timeout:
            self.upstream.abort()
            self._end(Outcome.TIMEOUT)
        else:
            self._arm(self.read_timeout - idle)

    def _end(self, outcome: Outcome) -> Outcome:
        for fut in (self._head, self._done):
            if not fut.done():
                fut.set_result(outcome)
        return outcome

    # ---------------------------------------------------------------- request body out
    def _body_out(self, data: bytes) -> None:
        self.upstream.write(wire.chunk(data) if self._chunked_up else data)

    def _metered_out(self, data: bytes) -> None:
        if self.refusal is not None:
            return  # refused: the rest is dropped
        assert self.meter is not None
        answer = self.meter.add(data)
        if answer is None:
            self._body_out(data)
        else:
            self.refuse(answer)

    def refuse(self, answer: LocalResponse) -> None:
        """Stop the request body: abandon the upstream; the caller sends ``answer``."""
        self.refusal = answer
        self.req.detach_sink()
        self._end(Outcome.REFUSED)
        self.upstream.abort()

    def _body_end(self) -> None:
        if self._chunked_up:
            self.upstream.write(wire.LAST_CHUNK)
        self.body_sent = True
        self.upstream.last_read = self.loop.time()  # the read timeout starts now

    def _client_gone(self) -> None:
        self.upstream.abort()
        self._end(Outcome.CLIENT_GONE)

    # ---------------------------------------------------------------- ResponseListener
    def on_head(self, status: int, headers: HeaderList, framed: bool) -> None:
        self.status = status
        self.headers = headers
        self.framed = framed
        if not self._head.done():
            self._head.set_result(Outcome.COMPLETE)

    def on_read(self, started: bool) -> None:
        if self.piping:
            if started:
                self.client.cork()
            else:
                self.client.uncork()

    def on_body(self, data: bytes) -> None:
        if self.piping:
            self.client.write_body(data)
            return
        self._held.append(data)
        self._held_size += len(data)
        collected = self._collected
        if (collected is not None and self._held_size > self._collect_limit
                and not collected.done()):
            collected.set_result(self._overflow())

    def on_complete(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.completed_at = time.monotonic()
        if not self._head.done():
            self._head.set_result(Outcome.LOST)
        if not self._done.done():
            self._done.set_result(Outcome.COMPLETE)

    def on_upgrade(self, rest: bytes) -> None:
        self._upgrade_rest = rest
        self.upstream.pause_reading()
        self._end(Outcome.UPGRADED)

    def on_fault(self, message: str) -> None:
        self.fault = message
        self._end(Outcome.FAULT)

    def on_lost(self) -> None:
        self._end(Outcome.LOST)

    def on_write_paused(self, paused: bool) -> None:
        if paused:
            self._write_paused_at = self.loop.time()
            self.client.pause_reading()
        else:
            self.client.resume_reading()

    # ---------------------------------------------------------------- WebSocket tunnel
    async def tunnel(self) -> None:
        """Join client and upstream byte streams until either side closes."""
        client, upstream = self.client, self.upstream
        closed: asyncio.Future[None] = self.loop.create_future()

        def upstream_lost() -> None:
            if not closed.done():
                closed.set_result(None)

        upstream.listener = None
        upstream.tunnel = client.write_raw
        client.write_pause_hooks.append((upstream.pause_reading, upstream.resume_reading))
        self.req.on_disconnect = upstream_lost
        rest = client.start_tunnel(upstream.write)
        if self._upgrade_rest:
            client.write_raw(self._upgrade_rest)
        if rest:
            upstream.write(rest)
        upstream.resume_reading()
        watcher = _LostWatcher(upstream_lost)
        upstream.listener = watcher
        try:
            await closed
        finally:
            upstream.close()
            client.close()


class _LostWatcher:
    """Listens only for the upstream going away while tunnelling."""

    def __init__(self, on_lost: object) -> None:
        self._on_lost = on_lost

    def on_lost(self) -> None:
        callback = self._on_lost
        if callable(callback):
            callback()

    def on_complete(self, keep_alive: bool) -> None:
        self.on_lost()

    def on_head(self, status: int, headers: HeaderList, framed: bool) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_upgrade(self, rest: bytes) -> None: ...
    def on_fault(self, message: str) -> None: ...
    def on_write_paused(self, paused: bool) -> None: ...
    def on_read(self, started: bool) -> None: ...
