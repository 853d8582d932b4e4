"""The callback-only path for the common request: no task, no future.

A request without a body, on a route whose plugins need not await, to an HTTP
upstream that has an idle keep-alive connection, is answered entirely from
protocol callbacks: the client parser's callback writes the request upstream, the
upstream's ``data_received`` writes the response to the client.  Creating and
scheduling a task and two futures per request cost about as much as the rest of
the proxying; the common case skips them.

Anything unusual hands the request back to the task path before a byte reaches the
client: a retryable status, an upstream that closed a pooled connection, a failure.
The request has no body, so sending it again is safe.  Routes whose plugins buffer
response bodies never come here (their chain's ``BodyStep`` waits,
``proxy/bodies.py``); request-body plugins have nothing to do on a body-less request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from campusgate.proxy.context import HeaderList, RequestContext
from campusgate.proxy.errors import GatewayTimeout, ProxyError
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request
from campusgate.proxy.upstream import UpstreamConnection

if TYPE_CHECKING:
    from campusgate.proxy.backends import HttpBackend
    from campusgate.proxy.balancer import TargetState

__all__ = ["FastForward"]

log = logging.getLogger("campusgate.proxy")

_monotonic = time.monotonic

#: Called when the job ends: (the job, an error to answer with, hand back to the task path?).
Finish = Callable[["FastForward", ProxyError | None, bool], None]


class FastForward:
    """One request through one pooled upstream connection, by callbacks."""

    __slots__ = (
        "_head_seen",
        "backend",
        "client",
        "ctx",
        "finish",
        "on_response",
        "piping",
        "req",
        "target",
        "upstream",
    )

    def __init__(self, backend: HttpBackend, client: ClientConnection, req: Request,
                 ctx: RequestContext, target: TargetState, upstream: UpstreamConnection,
                 on_response: Callable[[RequestContext, int, HeaderList], None] | None,
                 finish: Finish) -> None:
        self.backend = backend
        self.client = client
        self.req = req
        self.ctx = ctx
        self.target = target
        self.upstream = upstream
        self.on_response = on_response
        self.finish = finish
        self.piping = False
        self._head_seen = False

    def start(self, head: bytes) -> None:
        upstream = self.upstream
        upstream.begin(self, self.req.method == b"HEAD")
        upstream.write(head)
        self.ctx.upstream_started = _monotonic()
        self.req.on_disconnect = self._client_gone
        # The client connection's timer calls on_timeout (no timer per request).
        self.client._arm(self.backend.service.timeouts.read)

    # ---------------------------------------------------------------- ending
    def _end(self, error: ProxyError | None, handback: bool = False) -> None:
        if self.piping:
            self.client.write_pause_hooks.clear()
        self.req.on_disconnect = None
        self.backend.balancer.on_release(self.target)
        self.finish(self, error, handback)

    def _fail_before_head(self, reason: str) -> None:
        """No byte reached the client yet: let the task path try again (or answer)."""
        self.upstream.abort()
        balancer = self.backend.balancer
        if not self.upstream.reused:
            balancer.report_failure(self.target, self.client.loop.time(), reason)
        self.ctx.vars["fast.tried"] = self.target.address
        self._end(None, handback=True)

    def _client_gone(self) -> None:
        self.upstream.abort()
        self.ctx.error = "client_abort"
        self._end(None)

    def on_timeout(self, now: float) -> float | None:
        """Called by the client connection's timer: seconds until the next check, or
        None when this ended the exchange (read or send timeout)."""
        read_timeout = self.backend.service.timeouts.read
        client = self.client
        if client.write_paused:  # the client is slow, not the upstream
            stalled = now - client.write_paused_at
            send_timeout = client.limits.send_timeout
            if stalled < send_timeout:
                return min(read_timeout, send_timeout - stalled)
            self.upstream.abort()
            client.abort_response()
            self.ctx.error = "client_abort"  # it stopped reading
            self._end(None)
            return None
        idle = now - self.upstream.last_read
        if idle < read_timeout:
            return read_timeout - idle
        self.upstream.abort()
        self.backend.balancer.report_failure(self.target, now, "timeout")
        if self._head_seen:
            client.abort_response()
            self.ctx.error = "upstream_timeout"
            self._end(None)
        else:
            self._end(GatewayTimeout(f"upstream {self.target.address} did not answer in time"))
        return None

    # ---------------------------------------------------------------- ResponseListener
    def on_head(self, status: int, headers: HeaderList, framed: bool) -> None:
        backend = self.backend
        balancer = backend.balancer
        target = self.target
        if balancer.is_failure_status(status):
            svc = backend.service
            balancer.report_failure(target, self.client.loop.time(), f"status {status}")
            if status in svc.retries.on_statuses and svc.retries.count > 0:
                self.upstream.listener = None
                self.upstream.abort()
                self.ctx.vars["fast.tried"] = self.target.address
                self._end(None, handback=True)
                return
        elif target.failures or target.half_open:  # else there is nothing to reset
            balancer.report_success(target, self.client.loop.time())
        if status == 101:  # never asked for: the task path turns it into a 502
            self._fail_before_head("unasked 101")
            return
        self._head_seen = True
        ctx = self.ctx
        ctx.status = status
        client = self.client
        # When no plugin edits the head, it is filtered and written in one pass, with
        # the request id and any headers plugins queued (rate-limit fields) appended.
        proxied = False
        if self.on_response is None and "request_id.hide" not in ctx.vars:
            extra = b"x-request-id: %s\r\n" % ctx.request_id.encode()
            if ctx.response_headers_add:
                extra += b"".join(b"%s: %s\r\n" % pair for pair in ctx.response_headers_add)
            proxied = client.start_proxied(self.req, status, headers, framed, extra)
        if not proxied:
            from campusgate.proxy.heads import response_headers
            from campusgate.proxy.snapshot import finish_headers

            out, content_length = response_headers(headers, framed)
            if self.on_response is not None:
                self.on_response(ctx, status, out)
            else:
                finish_headers(ctx, out)
            client.start_response(self.req, status, out, content_length)
        self.piping = True
        client.write_pause_hooks.append((self._client_paused, self.upstream.resume_reading))

    def _client_paused(self) -> None:
        """The client's socket is full: hold the upstream, and time the client."""
        self.upstream.pause_reading()
        client = self.client
        client._arm(min(self.backend.service.timeouts.read, client.limits.send_timeout))

    def on_read(self, started: bool) -> None:
        if started:
            self.client.cork()
        else:
            self.client.uncork()

    def on_body(self, data: bytes) -> None:
        if self.piping:
            self.client.write_body(data)

    def on_complete(self, keep_alive: bool) -> None:
        if not self._head_seen:
            self._fail_before_head("no answer")
            return
        self.ctx.upstream_ended = _monotonic()
        client = self.client
        client.end_body()
        upstream = self.upstream
        if keep_alive and not upstream.closed:
            self.backend.pools[self.target.address].release(upstream)
        else:
            upstream.close()
        self._end(None)

    def on_upgrade(self, rest: bytes) -> None:
        self._fail_before_head("unasked upgrade") if not self._head_seen else self._cut("upgrade")

    def on_fault(self, message: str) -> None:
        if self._head_seen:
            self._cut("fault")
        else:
            self.ctx.vars["fast.fault"] = message
            self._fail_before_head("fault")

    def on_lost(self) -> None:
        if self._head_seen:
            self._cut("lost")
        else:
            self._fail_before_head("reset")

    def _cut(self, why: str) -> None:
        """The upstream failed mid-body: the client must see a cut, not an end."""
        self.upstream.abort()
        self.backend.balancer.report_failure(self.target, self.client.loop.time(), why)
        log.warning("upstream %s failed mid-response (%s): %s %s", self.target.address, why,
                    self.req.method.decode(), self.req.path)
        self.client.abort_response()
        self.ctx.error = "upstream_error"
        self._end(None)

    def on_write_paused(self, paused: bool) -> None:
        return None
