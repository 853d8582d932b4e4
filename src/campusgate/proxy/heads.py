"""The heads the gateway writes: the request head sent upstream and the response head
sent back, as plain functions over plain values.

Which client headers go upstream (hop-by-hop ones never do, RFC 9110 section 7.6.1),
the ``X-Forwarded-*`` headers (believed from trusted proxies only), the upstream path
(stripped or rewritten by the route), and which upstream response headers reach the
client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from campusgate.proxy import wire
from campusgate.proxy.addresses import AddressSet, parse_address
from campusgate.proxy.context import HeaderList, RequestContext, RouteOptions
from campusgate.proxy.request import Request

__all__ = ["DROP_UP", "Forwarding", "forwarded_headers", "response_headers", "upstream_path"]

#: Client request headers never sent upstream as they are: hop-by-hop, framing, and
#: those the gateway sets itself.
DROP_UP = wire.HOP_BY_HOP | {
    b"host", b"expect", b"content-length", b"x-forwarded-for", b"x-forwarded-proto",
    b"x-forwarded-host", b"x-request-id",
}
# The gateway sets X-Request-Id on every response itself.
_DROP_DOWN = wire.HOP_BY_HOP | {b"content-length", b"x-request-id"}


@dataclass(frozen=True)
class Forwarding:
    """Trusted-proxy setting: whose X-Forwarded-* headers are believed."""

    trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    _set: AddressSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_set", AddressSet(self.trusted))

    def trusts(self, ip: str) -> bool:
        if not self.trusted or not ip:
            return False
        addr = parse_address(ip)
        return addr is not None and addr in self._set


def upstream_path(service_path: str, req_path: str, route: RouteOptions, matched_path: str,
                  params: dict[str, str]) -> str:
    """The path sent upstream: service path + request path, stripped or rewritten."""
    rest = req_path
    if route.rewrite is not None:
        rewritten = route.rewrite
        for key, value in params.items():
            rewritten = rewritten.replace("{" + key + "}", value)
        rest = rewritten + req_path[len(matched_path):]
    elif route.strip_path and matched_path:
        rest = req_path[len(matched_path):]
    if rest and not rest.startswith("/"):
        rest = "/" + rest
    path = service_path + rest
    return path or "/"


def forwarded_headers(req: Request, ctx: RequestContext, fwd: Forwarding) -> HeaderList:
    """X-Forwarded-* for the upstream: the client's own are believed only from a
    trusted proxy (then X-Forwarded-For is appended to, in order), else replaced."""
    client_ip = ctx.client_ip.encode("latin-1")
    xff = client_ip
    proto = ctx.scheme.encode()
    host = req.host
    if fwd.trusts(ctx.client_ip):
        chain: list[bytes] = []
        for name, value in req.headers:
            if name == b"x-forwarded-for":
                chain.append(value.strip())
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-host":
                host = value
        if chain:
            chain.append(client_ip)
            xff = b", ".join(chain)
    return [
        (b"x-forwarded-for", xff),
        (b"x-forwarded-proto", proto),
        (b"x-forwarded-host", host),
        (b"x-request-id", ctx.request_id.encode()),
    ]


def response_headers(upstream: HeaderList, framed: bool) -> tuple[HeaderList, int | None]:
    """The upstream's response headers for the client, and its Content-Length if any.

    Hop-by-hop headers (and those named in Connection) are dropped; framing is the
    client connection's to choose, so Content-Length comes back separately.
    """
    content_length: int | None = None
    headers: HeaderList = []
    tokens = wire.connection_tokens(upstream)
    drop = _DROP_DOWN | tokens if tokens else _DROP_DOWN
    chunked = False
    for name, value in upstream:
        if name == b"content-length":
            if framed and value.strip().isdigit():
                content_length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
        elif name not in drop:
            headers.append((name, value))
    return headers, None if chunked else content_length
