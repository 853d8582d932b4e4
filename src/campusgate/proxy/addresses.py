"""Client addresses and sets of networks: who is a trusted proxy, who the client is.

The client's address is the socket peer, unless the peer is one of the
``trusted_proxies``: then ``X-Forwarded-For`` is read from the right (each proxy
appends the address it saw), trusted proxies are skipped, and the first address that
is not a trusted proxy is the client -- the only one no client can forge.  When every
entry is a trusted proxy the left-most is taken.  (X-Forwarded-For has no RFC; the
``for=`` parameter of RFC 7239 section 5.2 carries the same list.)

Membership tests are integer comparisons: a set of networks is compiled once into
sorted, merged ranges per address family and searched with :func:`bisect.bisect_right`.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Iterable

from campusgate.proxy.context import HeaderList

__all__ = ["AddressSet", "IPAddress", "IPNetwork", "client_address", "parse_address"]

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
