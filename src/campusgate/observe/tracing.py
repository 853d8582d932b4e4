"""W3C Trace Context (https://www.w3.org/TR/trace-context/): ``traceparent`` in,
a child ``traceparent`` out.  Sans-IO: plain values in, plain values out.

Each request gets a :class:`Trace`: the caller's trace id when its ``traceparent``
is valid (section 3.2), else a new trace; a new span id for the gateway's own work
(the upstream call is its child); the caller's span id as the parent.  The upstream
gets ``traceparent: 00-<trace id>-<gateway span id>-<flags>`` in place of the
client's; ``tracestate`` is forwarded as it came (section 3.3: a vendor that adds no
entry of its own leaves it alone).

Ids are cheap random numbers (``random.getrandbits``, as request ids are): a trace
id must be unique, not unguessable.  A trace the gateway starts reuses the request
id when it is one the gateway made (32 lower-case hex, 128 random bits): one random
number per request instead of two, and a log search by either id finds the request.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Trace", "parse_traceparent", "start_trace", "trace_from", "traceparent_of"]

_getrandbits = random.getrandbits
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
#: Flags of a trace the gateway starts: sampled (every request is recorded).
NEW_TRACE_FLAGS = "01"


@dataclass(slots=True)
class Trace:
    """One request's place in a distributed trace."""

    trace_id: str
    #: The gateway's span (new per request): the upstream call's parent.
    span_id: str
    #: The caller's span, from its ``traceparent``; None when a new trace started.
    parent_id: str | None
    flags: str

    def traceparent(self) -> bytes:
        """The ``traceparent`` value the upstream gets."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode()


#: version-traceid-parentid-flags, lower-case hex; a later version may add fields.
_TRACEPARENT = re.compile(
    rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[\x21-\x7e]*)?")


def parse_traceparent(value: bytes) -> tuple[str, str, str] | None:
    """``(trace id, parent span id, flags)`` of a valid ``traceparent``, else None.

    Section 3.2: lower-case hex only; version ``ff`` is invalid; version ``00`` is
    exactly 55 characters; a later version may be longer (its extra fields after a
    ``-`` are ignored) and is read as version ``00``; an all-zero trace id or parent
    id is invalid.
    """
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace, parent, flags, rest = match.groups()
    if version == b"ff" or (rest is not None and version == b"00"):
        return None
    if trace == _ZERO_TRACE or parent == _ZERO_SPAN:
        return None
    return trace.decode(), parent.decode(), flags.decode()


def start_trace(headers: Iterable[tuple[bytes, bytes]], request_id: str | None) -> Trace:
    """The request's :class:`Trace`: continuing the caller's (one valid
    ``traceparent`` header), else a new one (section 4.3: an invalid or repeated
    ``traceparent`` starts a new trace).  ``request_id``: an id the gateway made for
    this request (``new_request_id``: 32 hex, not all zeros; never a client's),
    reused as a new trace's id."""
    incoming: bytes | None = None
    for name, value in headers:
        if name == b"traceparent":
            incoming = value if incoming is None else REPEATED
    return trace_from(incoming, request_id)


#: What a header scan holds as the ``traceparent`` once it saw two: never valid.
REPEATED = b""


def trace_from(traceparent: bytes | None, request_id: str | None) -> Trace:
    """:func:`start_trace` for a caller that scanned the headers itself:
    ``traceparent`` is the one header's value, :data:`REPEATED` when there were
    several, None when there was none."""
    if traceparent:
        parsed = parse_traceparent(traceparent.strip())
        if parsed is not None:
            trace_id, parent_id, flags = parsed
            return Trace(trace_id, (_getrandbits(64) or 1).to_bytes(8).hex(), parent_id, flags)
    # int.to_bytes().hex(): the same lower-case hex as f"{n:016x}", in half the time
    return Trace(request_id or (_getrandbits(128) or 1).to_bytes(16).hex(),
                 (_getrandbits(64) or 1).to_bytes(8).hex(), None, NEW_TRACE_FLAGS)


def traceparent_of(trace: Trace | None) -> str | None:
    """The ``traceparent`` header value to send an AI provider for a request whose
    ``ctx.trace`` is ``trace`` (None: propagation is off, send none)."""
    return None if trace is None else f"00-{trace.trace_id}-{trace.span_id}-{trace.flags}"
