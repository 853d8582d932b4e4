"""``request-id``: choose the header that carries the request id, and whether to trust it.

The core always gives each request an id (kept from a valid ``X-Request-Id`` from the
client, else generated), sends it upstream and returns it to the client.  This plugin
changes the header name (e.g. ``X-Correlation-Id``), can refuse ids from clients,
and can keep the id out of the response.
"""

from __future__ import annotations

from pydantic import Field

from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.proxy.request_ids import is_valid_request_id, new_request_id

__all__ = ["RequestIdConfig", "RequestIdPlugin"]


class RequestIdConfig(PluginConfig):
    #: The header that carries the id (1-64 letters, digits and `-`).
    header_name: str = Field(default="X-Request-Id", pattern=r"^[A-Za-z0-9-]{1,64}$")
    #: Keep a valid id sent by the client in that header; false makes a new id for
    #: every request.
    trust_incoming: bool = True
    #: Send the id back to the client in the response headers.
    echo_downstream: bool = True


class RequestIdPlugin(Plugin):
    name = "request-id"
    priority = 100000
    config_model = RequestIdConfig

    def __init__(self, config: RequestIdConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.header = config.header_name.encode()
        self.lower = self.header.lower()
        self.trust = config.trust_incoming
        self.echo = config.echo_downstream
        #: The defaults are what the core does for every request already.
        self.default = self.lower == b"x-request-id" and self.trust and self.echo

    def runs(self, phase: str) -> bool:
        return not self.default and super().runs(phase)

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        incoming = ctx.header(self.lower) if self.trust else None
        if incoming is not None and is_valid_request_id(incoming):
            ctx.request_id = incoming.decode()
        elif self.lower != b"x-request-id" or not self.trust:
            ctx.request_id = new_request_id()
        ctx.upstream_headers_remove.add(self.lower)
        ctx.upstream_headers_add.append((self.header, ctx.request_id.encode()))
        if not self.echo:
            ctx.vars["request_id.hide"] = True
        return None

    def response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        if self.echo and self.lower != b"x-request-id":
            headers.append((self.header, ctx.request_id.encode()))


PLUGIN = RequestIdPlugin
