"""What the plugin chain sees of one request, and what a plugin may answer with."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from campusgate.observe.tracing import Trace
    from campusgate.proxy.consumers import ConsumerInfo
    from campusgate.proxy.snapshot import CompiledRoute, CompiledService, Plan

__all__ = ["HeaderList", "LocalResponse", "RequestContext", "RouteOptions", "header_value"]

# Header names are lower-cased bytes; values are raw bytes, as received.
HeaderList = list[tuple[bytes, bytes]]


def header_value(headers: HeaderList, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """What forwarding needs of a route, kept instead of the whole config model (a
    worker holding 10,000 routes keeps 10,000 of these, not 10,000 pydantic models)."""

    name: str
    strip_path: bool = True
    rewrite: str | None = None
    preserve_host: bool = False


@dataclass(slots=True)
class LocalResponse:
    """An answer produced by the gateway itself (a plugin, or an error)."""

    status: int
    body: bytes = b""
    headers: HeaderList = field(default_factory=list)
    content_type: bytes = b"application/json"

    @classmethod
    def json(cls, status: int, payload: Any, headers: HeaderList | None = None) -> LocalResponse:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, headers or [])

    @classmethod
    def error(
        cls, status: int, code: str, message: str, request_id: str,
        headers: HeaderList | None = None,
    ) -> LocalResponse:
        """The gateway's error shape: ``{"error": {"code", "message", "request_id"}}``."""
        payload = {"error": {"code": code, "message": message, "request_id": request_id}}
        return cls.json(status, payload, headers)


@dataclass(slots=True)
class RequestContext:
    """One request as it travels through the plugin chain.

    ``headers`` are the client's request headers (lower-case names).  Plugins that add
    headers for the upstream append to ``upstream_headers_add``; headers for the
    client go in ``response_headers_add``.  ``vars`` is free space for plugins.

    The fields after ``started`` feed the access record (``observe/capture.py``);
    times are ``time.monotonic()`` seconds, 0.0 when not reached.
    """

    method: str
    path: str
    query: str
    headers: HeaderList
    client_ip: str
    scheme: str
    host: str
    request_id: str
    route: CompiledRoute | None = None
    service: CompiledService | None = None
    params: dict[str, str] = field(default_factory=dict)
    #: Set by authentication: who is calling, and with which credential (its id).
    consumer: ConsumerInfo | None = None
    credential: str | None = None
    #: The plugin chains for this request when its consumer (or a group of it) has
    #: plugins of its own; None means the route's chains.
    plan: Plan | None = None
    upstream_headers_add: HeaderList = field(default_factory=list)
    upstream_headers_remove: set[bytes] = field(default_factory=set)
    response_headers_add: HeaderList = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    status: int = 0
    #: The request as received (head and body) and the response as sent; while the
    #: request runs ``bytes_out`` holds the connection's count at its start.  Set
    #: only when access records are on, as ``ended`` is (``Gateway._finish``).
    bytes_in: int = 0
    bytes_out: int = 0
    upstream_target: str | None = None
    #: The upstream request's head written, and the upstream answer's last byte.
    upstream_started: float = 0.0
    upstream_ended: float = 0.0
    #: Further upstream attempts after the first.
    retries: int = 0
    #: ``allowed`` or ``limited`` (the rate-limit plugin), None when none ran.
    rate_limit: str | None = None
    #: What went wrong, if anything: a name of ``observe.capture.ERROR_CLASSES``.
    error: str | None = None
    #: W3C Trace Context (``observe/tracing.py``); None until needed.
    trace: Trace | None = None
    #: The last byte of the answer went out (or the exchange ended).
    ended: float = 0.0

    def header(self, name: bytes) -> bytes | None:
        return header_value(self.headers, name)
