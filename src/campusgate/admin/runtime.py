"""What the admin API needs from the running gateway, and a fixed stand-in for tests."""

from __future__ import annotations

import os
import time
from typing import Any, Protocol, runtime_checkable

import campusgate
from campusgate.config.model import Entities

__all__ = ["RuntimeInfo", "StaticRuntime"]


@runtime_checkable
class RuntimeInfo(Protocol):
    """The gateway process as the admin API sees it (implemented by the server)."""

    def status(self) -> dict[str, Any]:
        """``{"revision", "connections", "upstreams", "uptime_seconds", "pid", "version"}``."""
        ...

    async def reload(self) -> None:
        """Apply the store's latest revision in this worker now (after a write)."""
        ...

    def check(self, entities: Entities) -> str | None:
        """Why ``entities`` cannot run on this gateway's bootstrap settings, if so."""
        ...

    async def signing_keys_changed(self) -> None:
        """The identity provider's signing keys were rotated: sign with the new ones
        in this worker now (the others pick them up within seconds)."""
        ...


class StaticRuntime:
    """A :class:`RuntimeInfo` that runs nothing: it reports fixed values and counts
    reloads.  For tests and for serving the admin API on its own."""

    def __init__(self, revision: int = 0, extra: dict[str, Any] | None = None) -> None:
        self.revision = revision
        self.reloads = 0
        self.key_changes = 0
        self._extra = dict(extra or {})
        self._started = time.monotonic()

    def status(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "connections": 0,
            "upstreams": {},
            "uptime_seconds": time.monotonic() - self._started,
            "pid": os.getpid(),
            "version": campusgate.__version__,
            **self._extra,
        }

    async def reload(self) -> None:
        self.reloads += 1

    def check(self, entities: Entities) -> str | None:
        return None

    async def signing_keys_changed(self) -> None:
        self.key_changes += 1
