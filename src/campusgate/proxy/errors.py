"""Errors the proxy answers with, as data that renders itself.

Client faults (4xx) and upstream faults (5xx) are separate classes, as h11 splits
local and remote protocol errors.  Each carries its wire code and status.
"""

from __future__ import annotations

from typing import ClassVar

from campusgate.proxy.context import HeaderList, LocalResponse

__all__ = [
    "BadGateway",
    "BadRequest",
    "ClientError",
    "ConnectFailed",
    "ConnectTimeout",
    "GatewayTimeout",
    "HeadersTooLarge",
    "MethodNotAllowed",
    "NoHealthyTarget",
    "NoRoute",
    "PayloadTooLarge",
    "ProxyError",
    "RequestTimeout",
    "TooManyConnections",
    "UpstreamError",
    "UriTooLong",
    "VersionNotSupported",
]


class ProxyError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, headers: HeaderList | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or []

    def response(self, request_id: str) -> LocalResponse:
        return LocalResponse.error(self.status, self.code, self.message, request_id,
                                   list(self.headers))


class ClientError(ProxyError):
    """The request is at fault."""

    status = 400
    code = "bad_request"


class BadRequest(ClientError):
    pass


class NoRoute(ClientError):
    status = 404
    code = "no_route"


class MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(ClientError):
    status = 408
    code = "request_timeout"


class PayloadTooLarge(ClientError):
    status = 413
    code = "payload_too_large"


class UriTooLong(ClientError):
    status = 414
    code = "uri_too_long"


class HeadersTooLarge(ClientError):
    status = 431
    code = "headers_too_large"


class VersionNotSupported(ClientError):
    """Only HTTP/1.0 and HTTP/1.1 are spoken on an HTTP/1 listener."""

    status = 505
    code = "http_version_not_supported"


class UpstreamError(ProxyError):
    """The upstream is at fault."""

    status = 502
    code = "bad_gateway"


class BadGateway(UpstreamError):
    pass


class NoHealthyTarget(UpstreamError):
    status = 503
    code = "no_healthy_upstream"


class GatewayTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class ConnectFailed(BadGateway):
    """No connection to the target (refused, unreachable)."""

    error_class: ClassVar[str] = "upstream_connect"


class ConnectTimeout(GatewayTimeout):
    """Connecting to the target took longer than ``timeouts.connect``."""

    error_class: ClassVar[str] = "upstream_connect"


class TooManyConnections(ProxyError):
    """The listener holds ``max_connections`` already: the gateway's own limit, not
    the client's fault nor the upstream's."""

    status = 503
    code = "too_many_connections"
    error_class: ClassVar[str] = "overloaded"
