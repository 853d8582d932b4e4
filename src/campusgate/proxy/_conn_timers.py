"""A client connection's timers: the header, body and idle timeouts on one reused
timer handle, and the lingering close after an error answer.

:class:`ConnectionTimers` is the timing half of
:class:`~campusgate.proxy.http1.ClientConnection` (state lives on the connection, as
for :class:`~campusgate.proxy.responses.ResponseWriter`, the answering half it
extends).  Which timeout is running is the parser's business: it arms
``limits.header_timeout`` when a head starts, ``body_timeout`` while a body arrives
and ``keepalive_timeout`` between requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from campusgate.proxy.errors import ClientError, RequestTimeout
from campusgate.proxy.request import Request
from campusgate.proxy.responses import ResponseWriter

if TYPE_CHECKING:
    from campusgate.proxy.http1 import FastJob

__all__ = ["LINGER_IDLE_SECONDS", "LINGER_SECONDS", "ConnectionTimers"]

log = logging.getLogger("campusgate.proxy")

#: After an error answer, keep reading (and dropping) what the client still sends for
#: this long before closing, so its unread bytes do not turn our close into a reset
#: that destroys the answer before the client reads it ("lingering close").
LINGER_SECONDS = 2.0
#: ... or until the client has been quiet this long.
LINGER_IDLE_SECONDS = 0.25


class ConnectionTimers(ResponseWriter):
    """Timeouts and the lingering close of a client connection."""

    pending: deque[Request | ClientError]
    task: asyncio.Task[None] | None
    fast: FastJob | None
    _timer: asyncio.TimerHandle | None
    _timer_seconds: float | None
    _timer_due: float
    _timer_start: float
    _last_body: float
    _linger_until: float
    _stop_parsing: bool
    _in_message: bool
    _tunnel: Callable[[bytes], None] | None

    if TYPE_CHECKING:  # the connection's own
        def close(self) -> None: ...
        def resume_reading(self) -> None: ...
        def _refuse(self, req: Request | None, error: ClientError) -> None: ...

    def _arm(self, seconds: float) -> None:
        """Time the connection out ``seconds`` from now.

        Timer handles are reused rather than made per request: a handle due no later
        than the new deadline is kept (when it fires early it re-arms for the rest),
        and disarming only marks the state.  A keep-alive connection so costs one
        timer per keep-alive period, not two per request.
        """
        now = self.loop.time()
        self._timer_start = now
        self._last_body = now
        self._timer_seconds = seconds
        due = now + seconds
        timer = self._timer
        if timer is not None:
            if self._timer_due <= due:
                return
            timer.cancel()
        self._timer_due = due
        self._timer = self.loop.call_later(seconds, self._on_timer)

    def _cancel_timer(self) -> None:
        """Disarm (the handle, if any, finds nothing to do when it fires)."""
        self._timer_seconds = None

    def _kill_timer(self) -> None:
        self._timer_seconds = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        seconds = self._timer_seconds
        if self.closed or seconds is None:
            return
        now = self.loop.time()
        idle = now - max(self._last_body, self._timer_start)
        if idle < seconds:  # not yet (re-armed since, or body data arrived): wait on
            self._timer_due = now + seconds - idle
            self._timer = self.loop.call_later(seconds - idle, self._on_timer)
            return
        head = self.pending[0] if self.pending else None
        if isinstance(head, Request) and not head.body_done:
            log.info("client body timeout from %s", self.client_ip)
            self._stop_parsing = True
            if head.fault is None:
                head.fault = RequestTimeout("the request body took too long")
            head.feed_disconnect()
            if self.response_started:
                self.abort_response()
            elif self.task is None and self.fast is None:
                self.close()
            return  # the serving task answers 408 and closes
        fast = self.fast
        if fast is not None:
            delay = fast.on_timeout(now)
            if delay is not None and not self.closed and self.fast is fast:
                self._arm(delay)
            return
        if self.task is not None:
            return  # busy answering; the task re-arms the timer when it is done
        if self._in_message:
            self._stop_parsing = True
            self._refuse(None, RequestTimeout("the request headers took too long"))
            self._linger()  # a trickling client may still be sending
            return
        self.close()

    def _linger(self) -> None:
        """Close after an error answer without resetting on unread client bytes."""
        transport = self.transport
        if transport is None or self.closed:
            return
        self._stop_parsing = True
        self._tunnel = None
        self._kill_timer()
        self.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._linger_until = self.loop.time() + LINGER_SECONDS
        self._last_body = self.loop.time()
        self._timer = self.loop.call_later(LINGER_IDLE_SECONDS, self._on_linger)

    def _on_linger(self) -> None:
        now = self.loop.time()
        quiet = now - self._last_body
        if now >= self._linger_until or quiet >= LINGER_IDLE_SECONDS:
            self._timer = None
            self.close()
        else:
            self._timer = self.loop.call_later(LINGER_IDLE_SECONDS - quiet, self._on_linger)
