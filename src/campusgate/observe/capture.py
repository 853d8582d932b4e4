"""From a finished request's context to its :class:`AccessRecord`.

The request path only stamps plain attributes on its
:class:`~campusgate.proxy.context.RequestContext`.  In the log phase, after the
answer's last byte went out, the worker turns it into a flat tuple of plain values
(:meth:`Capture.row`: the context's own values, the names, the trace and the request
head's size) -- what it ships to the log-writer process -- and :func:`finish` turns
that into the :class:`AccessRecord` (latencies, error class, AI fields), in the writer
process, or inline.  See
``docs/observability.md``, "The queue and the writer", for the measurements.

``ERROR_CLASSES`` is the vocabulary of ``AccessRecord.error``: what went wrong, in a
word an operator can group by.  None means nothing did (an upstream's own 4xx is its
answer, not the gateway's error: ``status`` tells it).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, MutableSequence, Sequence
from itertools import repeat
from operator import add, mul, sub
from typing import TYPE_CHECKING, Any

from campusgate.observe.batch import RecordBatch
from campusgate.observe.record import FIELDS, AccessRecord
from campusgate.observe.tracing import start_trace
from campusgate.proxy.errors import (
    ClientError,
    GatewayTimeout,
    MethodNotAllowed,
    NoHealthyTarget,
    NoRoute,
    ProxyError,
    UpstreamError,
)

if TYPE_CHECKING:
    from campusgate.observe.queue import RecordQueue
    from campusgate.observe.tracing import Trace
    from campusgate.proxy.context import RequestContext

__all__ = ["ERROR_CLASSES", "Capture", "Extra", "add_extras", "ai_error", "answer_error",
           "finish", "finish_rows", "proxy_error", "trace_of"]

#: ``AccessRecord.error`` values, and what each means.
ERROR_CLASSES: dict[str, str] = {
    "no_route": "no route matches the request (404)",
    "method_not_allowed": "a route matches the path but not the method (405)",
    "auth": "an authentication or authorization plugin refused the request (401/403)",
    "rate_limited": "a rate limit, quota or AI budget refused the request (429)",
    "client_error": "any other refusal of the request as the client's fault (4xx)",
    "bad_request": "the connection refused the request before routing: not valid "
                   "HTTP/1.x, over a size limit (413, 414, 431), a version not served "
                   "(505), or its head too slow to arrive (408)",
    "overloaded": "the listener held max_connections open connections already: the "
                  "new one was answered 503 and closed",
    "plugin_error": "a plugin answered with a 5xx (e.g. its state backend is down and "
                    "it fails closed)",
    "upstream_connect": "no connection to the upstream target could be made",
    "upstream_timeout": "the upstream did not answer (or finish answering) in time",
    "upstream_unavailable": "no healthy target was left in the upstream (503)",
    "upstream_error": "the upstream reset, answered something that is not HTTP, or "
                      "broke off mid-response",
    "upstream_status": "the upstream answered with a 5xx of its own",
    "ai_provider": "the AI provider failed (5xx, timeout, refused credentials)",
    "client_abort": "the client went away before its answer was complete",
    "internal": "the gateway failed (a bug: see the worker's log)",
}

#: Longest User-Agent kept.
USER_AGENT_LIMIT = 512


def answer_error(status: int) -> str | None:
    """The class of an answer the gateway (a plugin) made itself with ``status``."""
    if status < 400:
        return None
    if status == 401 or status == 403:
        return "auth"
    if status == 429:
        return "rate_limited"
    return "client_error" if status < 500 else "plugin_error"


def ai_error(status: int) -> str | None:
    """The class of an AI endpoint's error answer with ``status``."""
    return "ai_provider" if status >= 500 else answer_error(status)


def proxy_error(exc: ProxyError) -> str:
    """The class of a :class:`ProxyError` the proxy answered with."""
    named = getattr(exc, "error_class", None)
    if isinstance(named, str):
        return named
    if isinstance(exc, NoRoute):
        return "no_route"
    if isinstance(exc, MethodNotAllowed):
        return "method_not_allowed"
    if isinstance(exc, ClientError):
        return answer_error(exc.status) or "client_error"
    if isinstance(exc, GatewayTimeout):
        return "upstream_timeout"
    if isinstance(exc, NoHealthyTarget):
        return "upstream_unavailable"
    if isinstance(exc, UpstreamError):
        return "upstream_error"
    return "internal"


def _redactions(value: Any) -> dict[str, int] | None:
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()} or None
    if isinstance(value, int) and value:
        return {"total": value}
    return None


def trace_of(ctx: RequestContext) -> Trace:
    """The trace of a request that propagated none (worked out in the log phase, off
    the request path): the caller's, or a new one whose id is the request id the
    gateway made."""
    made = ctx.request_id if ctx.header(b"x-request-id") is None else None
    return start_trace(ctx.headers, made)


#: A request as plain values: what :meth:`Capture.row` makes, :func:`finish` reads.
Row = tuple[Any, ...]


class Capture:
    """Records of one listener of one worker, in two steps: the row (in the worker's
    log phase, :meth:`recorder`: a flat tuple of plain values, cheap to ship) and
    :func:`finish` (in the log writer, or inline: the :class:`AccessRecord`)."""

    def __init__(self, listener: str = "proxy", worker: int | None = None) -> None:
        self.listener = listener
        self.worker = os.getpid() if worker is None else worker
        # wall = monotonic + (wall0 - mono0): one clock read per record, not two
        self.offset = time.time() - time.monotonic()
        self._made: list[Row] = []
        self._make = self._recorder(self._made, sys.maxsize, self._made.append)

    def row(self, ctx: RequestContext) -> Row:
        """The request as plain values (``marshal``-able), for :func:`finish`."""
        self._make(ctx)
        return self._made.pop()

    def recorder(self, queue: RecordQueue[Row]) -> Callable[[RequestContext], None]:
        """What the log phase calls with each finished request: its row, put in
        ``queue`` -- appended straight to the queue's deque while no drop or wake-up
        can be due (``queue.room``), else by ``queue.put``."""
        return self._recorder(queue.items, queue.room, queue.put)

    def _recorder(self, items: MutableSequence[Row], room: int,
                  put: Callable[[Row], None]) -> Callable[[RequestContext], None]:
        """The row maker and its put, in one frame.

        The context's attributes are read by the interpreter's specialized slot
        loads (an ``attrgetter`` looks each name up by the type's generic path); the
        request head's size (request line, headers, blank line, as received) and
        User-Agent are found in one pass over the headers, inline; the per-worker
        values are the closure's.  Callgrind counted, per request: about 9,500
        instructions for an ``attrgetter`` row and a helper for the head; about 5,300
        for the row read like this, 9,500 with its put through two more frames (the
        queue's ``put`` and its counters); 7,900 for this one frame."""
        offset, listener, worker = self.offset, self.listener, self.worker
        append = items.append

        def record(ctx: RequestContext) -> None:
            trace = ctx.trace
            if trace is None:  # not propagated: worked out here, off the request path
                trace = trace_of(ctx)
            route, service, consumer, method, path = (
                ctx.route, ctx.service, ctx.consumer, ctx.method, ctx.path)
            head = len(method) + len(path) + 13  # " " + " HTTP/1.1\r\n" + final CRLF
            if ctx.query:
                head += len(ctx.query) + 1
            agent: bytes | None = None
            for name, value in ctx.headers:
                head += len(name) + len(value) + 4
                if name == b"user-agent" and agent is None:
                    agent = value[:USER_AGENT_LIMIT]
            extras = ctx.vars
            row = (
                ctx.started, ctx.ended, ctx.upstream_started, ctx.upstream_ended,
                ctx.request_id, ctx.upstream_target, ctx.credential, ctx.client_ip, method,
                ctx.host, path, ctx.status, ctx.bytes_in, ctx.bytes_out, ctx.retries,
                ctx.rate_limit, ctx.error, offset, listener, worker,
                trace.trace_id, trace.span_id, trace.parent_id,
                None if route is None else route.name,
                None if service is None else service.name,
                None if consumer is None else consumer.name, head, agent,
                extras.get("ai") if extras else None,
                extras.get("log.bodies") if extras else None,
            )
            if len(items) < room:
                append(row)
            else:
                put(row)

        return record

    def record(self, ctx: RequestContext) -> AccessRecord:
        return finish(self.row(ctx))

    def records(self, batch: list[RequestContext]) -> list[AccessRecord]:
        return finish_rows(list(map(self.row, batch))).records


def finish(row: Row) -> AccessRecord:
    """The access record of a :meth:`Capture.row` (a malformed row raises)."""
    return finish_rows([row]).records[0]


def finish_rows(rows: list[Row]) -> RecordBatch:
    """The records of a batch of rows, as columns (a malformed row raises).

    Column by column, with C-level builtins: the rows transposed once
    (``zip``), each derived column made by ``map`` with an ``operator`` function
    (``latency = (ended - started) * 1000``), a column that needs a value fixed
    here and there (a 5xx's error class, a request still running) rebuilt only when
    a C-level scan says it does.  An AI call's or a captured body's fields are
    worked out record by record (:func:`_with_extras`); they are rare.  The values
    are exactly those of one record at a time.
    """
    count = len(rows)
    if not count:
        return RecordBatch.of(())
    (started, ended, upstream_started, upstream_ended, request_id, upstream_target,
     credential, client_ip, method, host, path, status, bytes_in, bytes_out, retries,
     rate_limit, error, offset, listener, worker, trace_id, span_id, parent_id, route,
     service, consumer, head, agent, ai, bodies) = zip(*rows, strict=True)
    if not all(ended):  # still running (a stream cut at shutdown): ended now
        now = time.monotonic()  # CLOCK_MONOTONIC: the same in every process
        ended = tuple(end or now for end in ended)
    latency = list(map(mul, map(sub, ended, started), repeat(1000.0)))
    upstream_latency: Sequence[float | None]
    overhead: Sequence[float]
    if all(upstream_started) and all(upstream_ended):  # the usual batch: all proxied
        measured: list[float] = list(map(mul, map(sub, upstream_ended, upstream_started),
                                         repeat(1000.0)))
        if min(measured) < 0.0:
            measured = [0.0 if ms < 0.0 else ms for ms in measured]
        upstream_latency, overhead = measured, list(map(sub, latency, measured))
    else:
        upstream_latency, overhead = _upstream_each(latency, ended, upstream_started,
                                                    upstream_ended)
    if max(status) >= 500:
        error = tuple(("upstream_status" if done else "internal")
                      if cls is None and code >= 500 else cls
                      for cls, code, done in zip(error, status, upstream_ended, strict=True))
    nothing = (None,) * count
    columns: list[Sequence[Any]] = [
        list(map(add, started, offset)), request_id, trace_id, span_id, parent_id,
        listener, worker, route, service, upstream_target, consumer, credential,
        client_ip, method, host, path, status, list(map(add, head, bytes_in)),
        bytes_out if min(bytes_out) >= 0 else [max(sent, 0) for sent in bytes_out],
        latency, upstream_latency, overhead, retries, rate_limit, error,
        list(map(bytes.decode, agent, repeat("latin-1"))) if None not in agent
        else [None if text is None else text.decode("latin-1") for text in agent],
        *repeat(nothing, len(FIELDS) - _AI),  # the AI call's and the bodies' fields
    ]
    if ai.count(None) < count or bodies.count(None) < count:
        add_extras(columns, [(index, call, captured) for index, (call, captured)
                             in enumerate(zip(ai, bodies, strict=True))
                             if call is not None or captured is not None])
    return RecordBatch(columns)


def _upstream_each(latency: list[float], ended: Sequence[float],
                   started: Sequence[float | None], done: Sequence[float | None],
                   ) -> tuple[list[float | None], list[float]]:
    """Upstream latencies and overheads of a batch where some requests called no
    upstream (or it never answered), one record at a time."""
    upstream_latency: list[float | None] = []
    overhead: list[float] = []
    for total, end, begun, answered in zip(latency, ended, started, done, strict=True):
        if begun:
            upstream = ((answered or end) - begun) * 1000.0
            if upstream < 0.0:
                upstream = 0.0
            upstream_latency.append(upstream)
            overhead.append(total - upstream)
        else:
            upstream_latency.append(None)
            overhead.append(total)
    return upstream_latency, overhead


#: A record that carries an AI call or captured bodies: its index in the batch,
#: ``ctx.vars["ai"]`` and ``ctx.vars["log.bodies"]``.
Extra = tuple[int, dict[str, Any] | None, dict[str, Any] | None]


def add_extras(columns: list[Sequence[Any]], extras: Sequence[Extra]) -> None:
    """Rewrite the columns of the records that carry an AI call or bodies."""
    fixed = [list(column) for column in columns]
    for index, call, captured in extras:
        values = _with_extras(tuple(column[index] for column in fixed), call, captured)
        for column, value in zip(fixed, values, strict=True):
            column[index] = value
    columns[:] = fixed


_UPSTREAM, _UPSTREAM_LATENCY, _OVERHEAD, _LATENCY, _ERROR, _AI, _REQUEST_BODY, \
    _RESPONSE_BODY = map(FIELDS.index, (
        "upstream", "upstream_latency_ms", "overhead_ms", "latency_ms", "error",
        "ai_provider", "request_body", "response_body"))


def _with_extras(values: tuple[Any, ...], ai: dict[str, Any] | None,
                 bodies: dict[str, Any] | None) -> tuple[Any, ...]:
    """``values`` with the AI call's fields (``ctx.vars["ai"]``: ``ai/gateway/chat.py``)
    and the captured bodies (``log-bodies``)."""
    out = list(values)
    if bodies is not None:
        out[_REQUEST_BODY] = bodies.get("request")
        out[_RESPONSE_BODY] = bodies.get("response")
    if ai is None:
        return tuple(out)
    provider = ai.get("provider")
    if out[_UPSTREAM] is None:
        out[_UPSTREAM] = provider
    if provider is None:  # no provider call (a cache hit, a refusal)
        out[_OVERHEAD] = out[_LATENCY]
        out[_UPSTREAM_LATENCY] = None
    tokens: list[Any] = [None, None, None]
    usage = ai.get("usage")
    if isinstance(usage, dict):
        details = usage.get("prompt_tokens_details")
        tokens = [usage.get("prompt_tokens"), usage.get("completion_tokens"),
                  details.get("cached_tokens") if isinstance(details, dict) else None]
    out[_AI:_AI + 8] = [provider, ai.get("model"), ai.get("provider_model"), *tokens,
                        ai.get("cost"), _redactions(ai.get("redactions"))]
    if out[_ERROR] == "upstream_status":  # the provider's failure, answered in its shape
        out[_ERROR] = "ai_provider"
    return tuple(out)
