"""Short-lived identity records in the gateway's state backend: codes, sessions,
login transactions, revocation marks.

A thin JSON layer over :class:`~campusgate.state.base.StateBackend` (in-process memory
or Redis, shared by every worker).  Keys are ``<prefix><kind>:<key>``; callers pass a
``key`` that is already a hash of any secret (``hashlib.sha256(code).hexdigest()``),
so a look at Redis reveals no usable code or session.  :class:`StateUnavailable`
propagates: endpoints answer ``temporarily_unavailable`` / 503.
"""

from __future__ import annotations

import json
from typing import Any

from campusgate.state.base import StateBackend

__all__ = ["Ephemeral"]


class Ephemeral:
    """Typed-by-``kind`` JSON records with a time to live."""

    def __init__(self, state: StateBackend, prefix: str = "idp:") -> None:
        self.state = state
        self.prefix = prefix

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"

    async def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (replacing any previous one)."""
        await self.state.set(self._key(kind, key), _encode(value), _ttl(ttl))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return _decode(await self.state.get(self._key(kind, key)))

    async def delete(self, kind: str, key: str) -> None:
        await self.state.delete(self._key(kind, key))

    async def claim(self, kind: str, key: str, ttl: float,
                    value: dict[str, Any] | None = None) -> bool:
        """Store ``value`` only if nothing is there (SET NX): True for the one caller
        that wins, across every worker sharing the backend."""
        return await self.state.add(self._key(kind, key), _encode(value or {}), _ttl(ttl))

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        """Read and forget (a single-use record).  Two concurrent takers may both read
        it: pair with :meth:`claim` where only one may win."""
        full = self._key(kind, key)
        value = _decode(await self.state.get(full))
        if value is not None:
            await self.state.delete(full)
        return value


def _ttl(ttl: float) -> float:
    # Backends require a positive TTL; a record already due to expire lives a moment.
    return max(float(ttl), 0.001)


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
