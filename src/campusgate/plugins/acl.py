"""``acl``: let consumers through by consumer group -- an allow list or a deny list.

Runs after authentication (priority 950), on the consumer it chose (the anonymous
consumer included, with its own groups).  A request without a consumer cannot be
judged: it gets a 401, so a route protected by ``acl`` but by no authentication
plugin is closed rather than open.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from campusgate.config.common import Name
from campusgate.plugins.authentication import GROUPS_HEADER_VAR
from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import LocalResponse, RequestContext

__all__ = ["AclConfig", "AclPlugin"]

#: The header the authentication step names the consumer's groups in, by default.
GROUPS_HEADER = b"x-consumer-groups"


class AclConfig(PluginConfig):
    allow: list[Name] = Field(
        default_factory=list,
        description="Consumer groups let through; every other consumer gets a 403.")
    deny: list[Name] = Field(
        default_factory=list,
        description="Consumer groups refused with a 403; every other consumer passes.")
    hide_groups_header: bool = Field(
        default=False,
        description="Keep the X-Consumer-Groups header from the upstream.")

    @model_validator(mode="after")
    def _one_list(self) -> AclConfig:
        if bool(self.allow) == bool(self.deny):
            raise ValueError("set exactly one of allow or deny (a non-empty list of "
                             "consumer groups)")
        return self


class AclPlugin(Plugin):
    name = "acl"
    priority = 950
    config_model = AclConfig

    def __init__(self, config: AclConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.allow = frozenset(config.allow)
        self.deny = frozenset(config.deny)
        self.hide = config.hide_groups_header

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        consumer = ctx.consumer
        if consumer is None:
            return LocalResponse.error(401, "unauthorized", "authentication required",
                                       ctx.request_id)
        groups = consumer.groups
        member = not (self.allow or self.deny).isdisjoint(groups)
        if member != bool(self.allow):  # not in the allow list, or in the deny list
            return LocalResponse.error(403, "forbidden", "you cannot consume this service",
                                       ctx.request_id)
        if self.hide:
            header = ctx.vars.get(GROUPS_HEADER_VAR, GROUPS_HEADER)
            ctx.upstream_headers_add[:] = [h for h in ctx.upstream_headers_add
                                           if h[0].lower() != header]
        return None


PLUGIN = AclPlugin
