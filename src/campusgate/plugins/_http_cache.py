"""HTTP caching rules and the stored form of a response, for ``proxy-cache``.

Plain functions over plain values: Cache-Control parsing (RFC 9111 section 5.2),
what a shared cache may store (RFC 9111 section 3) and for how long (section 4.2.1),
and a compact binary encoding of a stored response.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from campusgate.proxy.context import HeaderList

__all__ = ["CacheEntry", "cache_control", "freshness", "media_type", "storable_vary"]

_MAGIC: Final = b"PC1"
_HEAD: Final = struct.Struct("!3sdHI")  # magic, stored-at (epoch seconds), status, headers
_FIELD: Final = struct.Struct("!HI")  # name length, value length


def cache_control(headers: HeaderList) -> dict[str, str | None]:
    """The directives of every Cache-Control header, lower-cased names (RFC 9111
    section 5.2): ``{"max-age": "60", "no-store": None}``."""
    found: dict[str, str | None] = {}
    for name, value in headers:
        if name != b"cache-control":
            continue
        for item in value.decode("latin-1").split(","):
            key, eq, arg = item.strip().partition("=")
            if key:
                found.setdefault(key.lower(), arg.strip().strip('"') if eq else None)
    return found


def _seconds(value: str | None) -> int | None:
    """A delta-seconds argument (RFC 9111 section 1.2.2); None when malformed."""
    return int(value) if value is not None and value.isdigit() else None


def freshness(directives: dict[str, str | None], ttl: float) -> float:
    """How long a response may be kept: ``ttl``, capped by ``s-maxage`` (which a shared
    cache prefers, RFC 9111 section 5.2.2.10) or else ``max-age``."""
    for name in ("s-maxage", "max-age"):
        if name in directives:
            limit = _seconds(directives[name])
            return 0.0 if limit is None else min(ttl, float(limit))
    return ttl


def media_type(headers: HeaderList) -> str | None:
    """The Content-Type without parameters, lower-cased."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return None


def storable_vary(headers: HeaderList, keyed: frozenset[str]) -> bool:
    """A response that varies (``Vary``, RFC 9110 section 12.5.5) only on request
    headers the cache key holds may be stored; ``Vary: *`` never."""
    for name, value in headers:
        if name == b"vary":
            for item in value.decode("latin-1").split(","):
                field = item.strip().lower()
                if field and field not in keyed:
                    return False
    return True


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A stored response: status, headers (Content-Type included), body, and when it
    was stored (seconds since the epoch: several gateways may share the store)."""

    status: int
    headers: HeaderList
    body: bytes
    stored_at: float

    def encode(self) -> bytes:
        parts = [_HEAD.pack(_MAGIC, self.stored_at, self.status, len(self.headers))]
        for name, value in self.headers:
            parts += (_FIELD.pack(len(name), len(value)), name, value)
        parts.append(self.body)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> CacheEntry:
        """ValueError when ``data`` is not an entry this version wrote."""
        try:
            magic, stored_at, status, count = _HEAD.unpack_from(data)
            if magic != _MAGIC:
                raise ValueError("not a proxy-cache entry")
            at = _HEAD.size
            headers: HeaderList = []
            for _ in range(count):
                name_len, value_len = _FIELD.unpack_from(data, at)
                at += _FIELD.size
                name = data[at:at + name_len]
                value = data[at + name_len:at + name_len + value_len]
                if len(name) != name_len or len(value) != value_len:
                    raise ValueError("truncated proxy-cache entry")
                headers.append((name, value))
                at += name_len + value_len
        except struct.error as exc:
            raise ValueError(f"truncated proxy-cache entry: {exc}") from None
        return cls(status, headers, data[at:], stored_at)
