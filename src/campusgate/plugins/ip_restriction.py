"""``ip-restriction``: allow or refuse clients by address (IPv4 and IPv6 CIDR lists).

The client's address is the socket peer, unless the peer is one of the
``trusted_proxies``: then it is read from ``X-Forwarded-For``
(:func:`campusgate.proxy.addresses.client_address`).

A client on a ``deny`` network is refused, even when it is also on an ``allow``
network; when ``allow`` is set, every address not on it is refused too.  An address
that cannot be parsed matches nothing and is refused.

Lookups are integer comparisons over networks compiled once
(:class:`campusgate.proxy.addresses.AddressSet`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pydantic import Field, field_validator, model_validator

from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.addresses import AddressSet, IPAddress, client_address, parse_address
from campusgate.proxy.context import LocalResponse, RequestContext

__all__ = [
    "AddressSet",
    "IpRestrictionConfig",
    "IpRestrictionPlugin",
    "client_address",
    "parse_address",
]

def _networks(values: list[str], what: str) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not an IP address or CIDR network "
                             "(e.g. 192.0.2.0/24, 2001:db8::/32)") from None
    return values


class IpRestrictionConfig(PluginConfig):
    #: Addresses or CIDR networks that may call; when set, all others are refused.
    allow: list[str] = Field(default_factory=list)
    #: Addresses or CIDR networks that are refused (this wins over ``allow``).
    deny: list[str] = Field(default_factory=list)
    #: Status of the refusal.
    status: int = Field(default=403, ge=400, le=599)
    #: Message in the refusal's JSON error.
    message: str = "your IP address is not allowed"

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        return _networks(value, "allow")

    @field_validator("deny")
    @classmethod
    def _deny(cls, value: list[str]) -> list[str]:
        return _networks(value, "deny")

    @model_validator(mode="after")
    def _something(self) -> IpRestrictionConfig:
        if not self.allow and not self.deny:
            raise ValueError("set allow, deny or both")
        return self


def _address_set(values: Iterable[str]) -> AddressSet:
    return AddressSet(ipaddress.ip_network(v, strict=False) for v in values)


class IpRestrictionPlugin(Plugin):
    name = "ip-restriction"
    priority = 1900
    config_model = IpRestrictionConfig
    consumer_scoped = False

    def __init__(self, config: IpRestrictionConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.allow = _address_set(config.allow) if config.allow else None
        self.deny = _address_set(config.deny)
        self.trusted = AddressSet(env.resources.trusted_proxies)
        self.status = config.status
        self.message = config.message

    def permits(self, addr: IPAddress | None) -> bool:
        if addr is None or addr in self.deny:
            return False
        return self.allow is None or addr in self.allow

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        if self.permits(client_address(ctx.client_ip, ctx.headers, self.trusted)):
            return None
        return LocalResponse.error(self.status, "forbidden", self.message, ctx.request_id)


PLUGIN = IpRestrictionPlugin
