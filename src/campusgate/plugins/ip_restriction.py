"""``ip-restriction``: allow or refuse clients by address (IPv4 and IPv6 CIDR lists).

The client's address is the socket peer, unless the peer is one of the
``trusted_proxies``: then ``X-Forwarded-For`` is read from the right (each proxy
appends the address it saw), trusted proxies are skipped, and the first address that
is not a trusted proxy is the client -- the only one no client can forge.  When every
entry is a trusted proxy the left-most is taken.  (X-Forwarded-For has no RFC; the
``for=`` parameter of RFC 7239 section 5.2 carries the same list.)

A client on a ``deny`` network is refused, even when it is also on an ``allow``
network; when ``allow`` is set, every address not on it is refused too.  An address
that cannot be parsed matches nothing and is refused.

Lookups are integer comparisons: each list is compiled once into sorted, merged
ranges per address family and searched with :func:`bisect.bisect_right`.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Iterable

from pydantic import Field, field_validator, model_validator

from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

__all__ = [
    "AddressSet",
    "IpRestrictionConfig",
    "IpRestrictionPlugin",
    "client_address",
    "parse_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_Ranges = tuple[tuple[int, ...], tuple[int, ...]]  # (starts, ends), sorted, disjoint


def _merge(networks: Iterable[IPNetwork]) -> _Ranges:
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in networks)
    starts: list[int] = []
    ends: list[int] = []
    for start, end in spans:
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return tuple(starts), tuple(ends)


class AddressSet:
    """A set of networks, for fast membership tests of single addresses."""

    __slots__ = ("_v4", "_v6")

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        nets = list(networks)
        self._v4 = _merge(n for n in nets if n.version == 4)
        self._v6 = _merge(n for n in nets if n.version == 6)

    def __contains__(self, addr: IPAddress) -> bool:
        starts, ends = self._v4 if addr.version == 4 else self._v6
        value = int(addr)
        i = bisect_right(starts, value) - 1
        return i >= 0 and value <= ends[i]

    def __bool__(self) -> bool:
        return bool(self._v4[0] or self._v6[0])


def parse_address(text: str) -> IPAddress | None:
    """An address as a socket or a proxy writes it: ``192.0.2.1``, ``2001:db8::1``,
    ``[2001:db8::1]``, with or without a port (``192.0.2.1:443``,
    ``[2001:db8::1]:443``).  IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``, what a
    dual-stack socket reports for IPv4 peers) come back as IPv4.  None if unparsable."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_address(peer: str, headers: HeaderList, trusted: AddressSet) -> IPAddress | None:
    """The client's address: ``peer`` (the socket's), or, when ``peer`` is a trusted
    proxy, the right-most ``X-Forwarded-For`` entry that is not a trusted proxy (the
    left-most when all are).  Several ``X-Forwarded-For`` lines form one list, in
    order (RFC 9110 section 5.3).  None when the address found cannot be parsed."""
    addr = parse_address(peer)
    if addr is None or not trusted or addr not in trusted:
        return addr
    entries = [entry for name, value in headers if name == b"x-forwarded-for"
               for entry in value.decode("latin-1").split(",") if entry.strip()]
    for entry in reversed(entries):
        hop = parse_address(entry)
        if hop is None or hop not in trusted:
            return hop
    return parse_address(entries[0]) if entries else addr


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
