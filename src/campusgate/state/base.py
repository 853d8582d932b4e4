"""The fast-state interface: counters (rate limits), short-lived keys.

Two backends implement it: :class:`~campusgate.state.memory.MemoryState` (in-process,
the default) and :class:`~campusgate.state.redis.RedisState` (shared by several
workers or machines).  Code that holds a backend checks ``waits``: when it is False
the ``*_now`` methods answer synchronously, so the data plane's fast path need not
suspend a request at all.

A backend that cannot answer raises :class:`StateUnavailable`; never anything that
would take the server down.  What to do then (fail open or closed) is the caller's
setting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from campusgate.state.ratelimit import Decision, Window

__all__ = ["StateBackend", "StateUnavailable", "WarningThrottle"]


class StateUnavailable(Exception):
    """The state backend could not answer (unreachable, timed out, refused)."""


class StateBackend(Protocol):
    """What the gateway needs of its shared fast state.

    Keys are plain strings; the Redis backend puts its prefix in front.  Rate-limit
    state lives under ``rl:<key>``, so keep other keys out of that namespace.  TTLs
    are seconds (> 0).
    """

    #: ``"memory"`` or ``"redis"``.
    kind: str
    #: False when the ``*_now`` methods work (no I/O needed).
    waits: bool

    def ratelimit_now(
        self, key: str, windows: Sequence[Window], algorithm: str, cost: int = 1
    ) -> Decision:
        """Check and count one request (see :mod:`campusgate.state.ratelimit`).

        Only for backends whose ``waits`` is False; the others raise
        NotImplementedError.
        """
        ...

    async def ratelimit(
        self, key: str, windows: Sequence[Window], algorithm: str, cost: int = 1
    ) -> Decision:
        """Check and count one request, atomically across every window of ``key``."""
        ...

    def get_now(self, key: str) -> bytes | None:
        """:meth:`get` without waiting (``waits`` False only)."""
        ...

    def set_now(self, key: str, value: bytes, ttl: float) -> None:
        """:meth:`set` without waiting (``waits`` False only)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when missing or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when missing)."""
        ...

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent: True if stored (SET NX).

        One caller wins, which is what replay protection (nonces, one-time codes)
        needs.
        """
        ...

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        """Add ``amount`` to the number under ``key`` (0 when missing) and return the
        new total, atomically; a new key lives ``ttl`` seconds, an existing one keeps
        its expiry (so a period's counter ends with its period).  ``amount`` 0 reads.

        Budgets count tokens, USD and requests with it.
        """
        ...

    async def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


class WarningThrottle:
    """For "the state backend is down" warnings, which would otherwise come once per
    request.  Says when to warn: at most once per ``interval`` seconds, and how many
    occurrences were held back since the last warning."""

    __slots__ = ("_clock", "_last", "held", "interval")

    def __init__(self, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self.held = 0

    def due(self) -> int | None:
        """None: stay quiet (counted); else warn now, mentioning the returned number
        of occurrences held back."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self.held += 1
            return None
        held, self.held, self._last = self.held, 0, now
        return held
