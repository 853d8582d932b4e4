"""``request-size-limit``: refuse request bodies over a size (RFC 9110 section 15.5.14).

A declared Content-Length over the limit is answered with 413 at once, before a byte
of the body is read (and without ``100 Continue``).  A chunked body has no declared
length: its bytes are counted as they stream upstream, nothing is buffered, and the
upload is cut with 413 when it passes the limit (if the upstream already began its
answer, the connection is cut instead).  ``require_content_length`` refuses chunked
bodies outright, with 411 (RFC 9110 section 15.5.12).

This is per route (or service, consumer...); the listener's ``max_body_bytes`` limit
applies to every request regardless.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import LocalResponse, RequestContext

__all__ = ["RequestSizeLimitConfig", "RequestSizeLimitPlugin"]

UNITS = {"bytes": 1, "kilobytes": 1024, "megabytes": 1024 * 1024}


class RequestSizeLimitConfig(PluginConfig):
    #: The largest request body allowed, in ``size_unit``.
    allowed_payload_size: int = Field(default=128, ge=0)
    #: ``bytes``, ``kilobytes`` (1024 bytes) or ``megabytes`` (1024 kilobytes).
    size_unit: Literal["bytes", "kilobytes", "megabytes"] = "megabytes"
    #: Refuse bodies sent without a Content-Length (chunked) with 411.
    require_content_length: bool = False


class RequestSizeLimitPlugin(Plugin):
    name = "request-size-limit"
    priority = 1700
    config_model = RequestSizeLimitConfig

    def __init__(self, config: RequestSizeLimitConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.limit = config.allowed_payload_size * UNITS[config.size_unit]
        self.require_length = config.require_content_length
        self.message = (f"the request body is larger than {config.allowed_payload_size} "
                        f"{config.size_unit}")

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        length = ctx.header(b"content-length")
        if length is not None:
            if length.strip().isdigit() and int(length) > self.limit:
                return self._too_large(ctx)
        elif self.require_length and ctx.header(b"transfer-encoding") is not None:
            return LocalResponse.error(411, "length_required",
                                       "the request body must have a Content-Length",
                                       ctx.request_id)
        return None

    def request_stream(self, ctx: RequestContext, received: int) -> LocalResponse | None:
        return self._too_large(ctx) if received > self.limit else None

    def _too_large(self, ctx: RequestContext) -> LocalResponse:
        return LocalResponse.error(413, "payload_too_large", self.message, ctx.request_id)


PLUGIN = RequestSizeLimitPlugin
