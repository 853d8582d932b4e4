"""What a relying party reads from its OpenID provider and keeps: the provider's
metadata (its discovery document), for every relying party in campusgate -- the
``sso`` plugin and the identity provider's login sources.

A :class:`ProviderCache` holds one value and the coroutine that reads it:

- the value is kept for ``max_age`` seconds, then read again;
- a failed read is not tried again within ``retry_after`` seconds, so a provider
  that is down is not hammered by every browser that arrives;  meanwhile the last
  good value is served (stale beats nothing), or, when there never was one, the
  failure is raised again;
- callers that arrive together share one read.

Which exceptions count as a failed read is the caller's choice (its own errors,
which already say what to tell the person); anything else propagates untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["ProviderCache"]

T = TypeVar("T")


class ProviderCache(Generic[T]):
    """One value read by ``load`` and kept (see the module docstring)."""

    def __init__(self, load: Callable[[], Awaitable[T]],
                 failures: type[Exception] | tuple[type[Exception], ...], *,
                 max_age: float, retry_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.load = load
        self.failures = failures
        self.max_age = max_age
        self.retry_after = retry_after
        self.clock = clock
        self.value: T | None = None
        #: The last failed read (its message is fit for the operator's log).
        self.failure: Exception | None = None
        self._read_at = -float("inf")
        self._failed_at = -float("inf")
        self._lock = asyncio.Lock()

    def current(self) -> T | None:
        """The value if it is fresh (no I/O); None when :meth:`get` must read."""
        if self.value is not None and self.clock() - self._read_at < self.max_age:
            return self.value
        return None

    async def get(self) -> T:
        """The value: kept, read now, or kept past its age while reads fail."""
        async with self._lock:
            now = self.clock()
            if self.value is not None and now - self._read_at < self.max_age:
                return self.value
            if now - self._failed_at >= self.retry_after:
                try:
                    self.value = await self.load()
                except self.failures as exc:
                    self._failed_at, self.failure = now, exc
                else:
                    self._read_at, self.failure = now, None
                    return self.value
            if self.value is not None:
                return self.value
            assert self.failure is not None
            raise self.failure.with_traceback(None)
