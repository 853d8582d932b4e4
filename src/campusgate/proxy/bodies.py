"""Body phases: the few plugins that must see a body, and only on their routes.

Bodies stream by default (ARCHITECTURE decision 1).  A plugin that needs one opts in
(:class:`~campusgate.plugins.base.Plugin` ``request_stream``, ``request_body``,
``response_body``); when a chain is compiled its body-phase plugins are gathered into
:class:`BodyHooks`, and a :class:`BodyStep` goes last in the chain's access phase.
The step hands the hooks to the request (``ctx.vars[BODY_HOOKS]``) on the task path,
and keeps the callback-only path (which cannot buffer) off routes that transform
responses.  A route without body-phase plugins has no step: nothing is checked per
request.

- ``request_stream`` plugins see the running byte count of a request body while it
  streams upstream (nothing is buffered); an answer cuts the upload.
- ``request_tap`` plugins see each chunk of a request body that streams upstream
  as it came (nothing is buffered by the gateway): a plugin that only looks.
- ``request_body`` plugins get the whole body, buffered up to the smallest
  ``body_limit`` of the plugins that want it (larger: 413, RFC 9110 section 15.5.14);
  the result goes upstream with its own Content-Length.
- ``response_body`` plugins get the whole response body, buffered up to the largest
  ``body_limit`` of the plugins that want it; a larger body streams through
  untouched (a warning is logged) and a plugin only runs on bodies within its own
  limit.  The result is sent with its own Content-Length (no chunked framing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final

from campusgate.plugins.base import WAIT, AccessAnswer, Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.proxy.errors import ClientError, PayloadTooLarge

if TYPE_CHECKING:
    from campusgate.proxy.request import Request

__all__ = [
    "BODY_HOOKS",
    "BodyHooks",
    "BodyRefused",
    "BodyStep",
    "RequestMeter",
    "read_request_body",
    "response_overflowed",
    "run_response_body",
    "streams_at_once",
]

log = logging.getLogger("campusgate.proxy")

#: ``ctx.vars`` key under which :class:`BodyStep` puts the request's hooks.
BODY_HOOKS: Final = "body.hooks"


class BodyRefused(ClientError):
    """A body-phase plugin answered instead of letting the body through."""

    code = "body_refused"

    def __init__(self, answer: LocalResponse) -> None:
        super().__init__(f"a plugin refused the request body ({answer.status})")
        self.answer = answer

    def response(self, request_id: str) -> LocalResponse:
        return self.answer


class RequestMeter:
    """Counts a streaming request body, asks the ``request_stream`` plugins and shows
    each chunk to the ``request_tap`` ones."""

    __slots__ = ("ctx", "plugins", "received", "taps")

    def __init__(self, ctx: RequestContext, plugins: tuple[Plugin, ...],
                 taps: tuple[Plugin, ...] = ()) -> None:
        self.ctx = ctx
        self.plugins = plugins
        self.taps = taps
        self.received = 0

    def add(self, data: bytes) -> LocalResponse | None:
        """``data`` arrived: None to go on, or the answer that stops the body."""
        self.received += len(data)
        for plugin in self.plugins:
            answer = plugin.request_stream(self.ctx, self.received)
            if answer is not None:
                return answer
        for plugin in self.taps:
            plugin.request_tap(self.ctx, data)
        return None


@dataclass(frozen=True, eq=False)
class BodyHooks:
    """A chain's body-phase plugins, each tuple in run order."""

    request_stream: tuple[Plugin, ...] = ()
    request_body: tuple[Plugin, ...] = ()
    response_body: tuple[Plugin, ...] = ()
    request_tap: tuple[Plugin, ...] = ()

    @classmethod
    def of(cls, plugins: Iterable[Plugin]) -> BodyHooks | None:
        """The hooks among ``plugins`` (in priority order), or None when there are none."""
        ordered = list(plugins)
        phases = {phase.name: tuple(p for p in ordered if p.runs(phase.name))
                  for phase in fields(cls)}
        return cls(**phases) if any(phases.values()) else None

    def meter(self, ctx: RequestContext) -> RequestMeter | None:
        if self.request_stream or self.request_tap:
            return RequestMeter(ctx, self.request_stream, self.request_tap)
        return None

    def response_plugins(self, ctx: RequestContext, method: bytes, status: int,
                         headers: HeaderList) -> list[Plugin]:
        """The ``response_body`` plugins that want this response's body (none for a
        response that has no body: HEAD, 1xx, 204, 304)."""
        if not self.response_body or method == b"HEAD" or status < 200 or status in (204, 304):
            return []
        return [p for p in self.response_body if p.wants_response_body(ctx, status, headers)]


class BodyStep(Plugin):
    """Last in a chain's access phase when the chain has body-phase plugins."""

    name = "body-phases"
    priority = -(2**31)

    def __init__(self, hooks: BodyHooks, env: PluginEnv) -> None:
        super().__init__(PluginConfig(), env)
        self.hooks = hooks

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        # The callback path carries only requests without a body, so request-body
        # hooks have nothing to do there; a response body, though, needs the task path.
        return WAIT if self.hooks.response_body else None

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        ctx.vars[BODY_HOOKS] = self.hooks
        return None


async def read_request_body(req: Request, ctx: RequestContext,
                            hooks: BodyHooks) -> tuple[bytes | None, RequestMeter | None]:
    """Before forwarding: (the body to send, None to stream it; the meter for a
    streamed body, if any).

    A body that ``request_body`` plugins want is read whole, counted by the
    ``request_stream`` plugins as it arrives, and passed through each plugin.  Raises
    :class:`PayloadTooLarge` or :class:`BodyRefused` (with the body partly unread: the
    client connection then closes after the answer), and
    :class:`~campusgate.proxy.request.ClientDisconnected` when the client goes away.
    """
    if not req.has_body or req.upgrade:
        return None, None
    plugins = [p for p in hooks.request_body if p.wants_request_body(ctx)]
    if not plugins:
        return None, hooks.meter(ctx)
    # held whole: counted by the request_stream plugins, not shown to the taps
    meter = RequestMeter(ctx, hooks.request_stream) if hooks.request_stream else None
    limit = min(p.body_limit for p in plugins)
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    while data := await req.read_chunk():
        size += len(data)
        if meter is not None:
            answer = meter.add(data)
            if answer is not None:
                raise BodyRefused(answer)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        parts.append(data)
    body = b"".join(parts)
    for plugin in plugins:
        result = plugin.request_body(ctx, body)
        if isinstance(result, LocalResponse):
            raise BodyRefused(result)
        body = result
    return body, None


def response_limit(plugins: Sequence[Plugin]) -> int:
    """How much of a response body to buffer for ``plugins``."""
    return max(p.body_limit for p in plugins)


def streams_at_once(plugins: Sequence[Plugin], content_length: int | None) -> bool:
    """A response whose declared length is over the buffer streams on at once,
    unless one of ``plugins`` wants its first bytes (``taps_overflow``): then it is
    gathered up to the limit, and overflows like a body without a declared length."""
    return (content_length is not None and content_length > response_limit(plugins)
            and not any(p.taps_overflow for p in plugins))


def warn_unbuffered(ctx: RequestContext, plugins: Sequence[Plugin], size: int | None) -> None:
    """A response body too large to buffer passes through untouched: say so."""
    names = [p.name for p in plugins if p.warn_unbuffered]
    if names:
        what = f"{size} bytes" if size is not None else "larger than the buffer"
        log.warning("%s %s: the response body (%s) passed through without the body "
                    "phase of %s (body_limit %d)", ctx.method, ctx.path, what,
                    ", ".join(names), response_limit(plugins))


def response_overflowed(ctx: RequestContext, status: int, headers: HeaderList,
                        held: bytes, plugins: Sequence[Plugin],
                        size: int | None = None) -> None:
    """A gathered response body outgrew the buffer: it will stream on untouched.
    Warn, and give each plugin the body's first ``body_limit`` bytes
    (``response_overflow``), as :func:`run_response_body` does for a body over a
    plugin's own limit."""
    warn_unbuffered(ctx, plugins, None)
    for plugin in plugins:
        plugin.response_overflow(ctx, status, headers, held[:plugin.body_limit], size)


def run_response_body(ctx: RequestContext, status: int, headers: HeaderList, body: bytes,
                      plugins: Sequence[Plugin]) -> bytes:
    """Pass a buffered response body through ``plugins``; each runs only when the body
    is within its own ``body_limit`` (else it gets the body's first bytes, as when a
    body outgrows the buffer: ``response_overflow``)."""
    for plugin in plugins:
        if len(body) <= plugin.body_limit:
            body = plugin.response_body(ctx, status, headers, body)
            continue
        if plugin.warn_unbuffered:
            log.warning("%s %s: the response body (%d bytes) is over the body_limit of "
                        "%s (%d); it was not applied", ctx.method, ctx.path, len(body),
                        plugin.name, plugin.body_limit)
        plugin.response_overflow(ctx, status, headers, body[:plugin.body_limit], len(body))
    return body
