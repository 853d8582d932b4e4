"""The in-process state backend: one worker's dict, answers without waiting.

Bounded: expired keys are dropped when read and swept a few per write (a rolling
pass over the keys), and a cap on the number of keys evicts the oldest ones rather
than letting memory grow without end.  Time comes from ``time.monotonic`` unless a
clock is injected (tests).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import cast

from campusgate.state.ratelimit import (
    SLIDING_WINDOW,
    US,
    Decision,
    Window,
    WindowStatus,
    check_request,
    gcra_decision,
    sliding_decision,
)

__all__ = ["MemoryState"]

#: Per-window rate-limit state: sliding-window ``(k, current, previous)`` keyed by
#: the window size, GCRA TAT keyed by ``(interval, limit)``.
_Slots = dict[object, object]


class _Entry:
    __slots__ = ("expires", "value")

    def __init__(self, expires: int, value: bytes | _Slots | float) -> None:
        self.expires = expires
        self.value = value


def _ttl_us(ttl: float) -> int:
    if not ttl > 0:
        raise ValueError("ttl must be > 0 seconds")
    return max(1, round(ttl * US))


class MemoryState:
    """The default backend (``state: memory``): exact, fast, private to a worker."""

    kind = "memory"
    waits = False

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1_000_000,
        sweep_step: int = 2,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self._clock = clock
        self._max_keys = max_keys
        self._sweep_step = sweep_step
        self._data: dict[str, _Entry] = {}
        self._sweep_keys: list[str] = []
        self._checked: tuple[object, str, int] | None = None
        self._calls = 0

    def __len__(self) -> int:
        """Keys held, counting expired ones not yet swept."""
        return len(self._data)

    def _now(self) -> int:
        return int(self._clock() * US)

    # ------------------------------------------------------------ rate limits

    def ratelimit_now(
        self, key: str, windows: Sequence[Window], algorithm: str, cost: int = 1
    ) -> Decision:
        checked = (windows, algorithm, cost)
        if checked != self._checked:  # callers pass the same tuple each time: check once
            check_request(windows, algorithm, cost)
            self._checked = checked
        now = self._now()
        self._calls += 1
        if not self._calls & 15:  # amortised: 16 calls' worth of sweeping at once
            self._sweep_some(now, 16)
        name = "rl:" + key
        entry = self._data.get(name)
        slots: _Slots = (
            entry.value
            if entry is not None and entry.expires > now and isinstance(entry.value, dict)
            else {}
        )
        if algorithm == SLIDING_WINDOW:
            return self._sliding(name, slots, windows, now, cost)
        tats = [
            max(cast(int, slots.get((w.interval_us, w.limit), now)), now) for w in windows
        ]
        decision = gcra_decision(windows, tats, now, cost)
        if decision.allowed:
            last = now
            for w, tat in zip(windows, tats, strict=True):
                tat += cost * w.interval_us
                slots[(w.interval_us, w.limit)] = tat
                last = max(last, tat)
            self._put(name, slots, last, now)
        return decision

    def _sliding(self, name: str, slots: _Slots, windows: Sequence[Window], now: int,
                 cost: int) -> Decision:
        """The sliding-window check, inlined for the common case (the request is
        admitted): the same arithmetic, in the same order, as ``sliding_decision``,
        which still decides the denials."""
        if len(windows) == 1:  # the common case, without the loops
            w = windows[0]
            size = w.us
            stored = cast("tuple[int, int, int] | None", slots.get(size))
            k = now // size
            if stored is None or stored[0] < k - 1:
                current = previous = 0
            elif stored[0] == k:
                current, previous = stored[1], stored[2]
            else:
                current, previous = 0, stored[1]
            left = size - now % size
            estimate = previous * (left / size) + current
            if estimate + cost > w.limit:
                return sliding_decision(windows, [(current, previous)], now, cost,
                                        allowed=False)
            estimate += cost
            slots[size] = (k, current + cost, previous)
            self._put(name, slots, now + 2 * size, now)
            return Decision(True, (WindowStatus(w, max(0, math.floor(w.limit - estimate)),
                                                max(0, math.ceil(left / US))),), 0)
        counts: list[tuple[int, int]] = []
        allowed = True
        longest = 0
        for w in windows:
            size = w.us
            stored = cast("tuple[int, int, int] | None", slots.get(size))
            k = now // size
            if stored is None or stored[0] < k - 1:
                current = previous = 0
            elif stored[0] == k:
                current, previous = stored[1], stored[2]
            else:
                current, previous = 0, stored[1]
            counts.append((current, previous))
            if previous * ((size - now % size) / size) + current + cost > w.limit:
                allowed = False
            longest = max(longest, size)
        if not allowed:
            return sliding_decision(windows, counts, now, cost, allowed=False)
        statuses = []
        for w, (current, previous) in zip(windows, counts, strict=True):
            size = w.us
            left = size - now % size
            estimate = previous * (left / size) + current
            estimate += cost
            statuses.append(WindowStatus(w, max(0, math.floor(w.limit - estimate)),
                                         max(0, math.ceil(left / US))))
            slots[size] = (now // size, current + cost, previous)
        self._put(name, slots, now + 2 * longest, now)
        return Decision(True, tuple(statuses), 0)

    async def ratelimit(
        self, key: str, windows: Sequence[Window], algorithm: str, cost: int = 1
    ) -> Decision:
        return self.ratelimit_now(key, windows, algorithm, cost)

    # ------------------------------------------------------------ keys

    def get_now(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires <= self._now():
            del self._data[key]
            return None
        return entry.value if isinstance(entry.value, bytes) else None

    def set_now(self, key: str, value: bytes, ttl: float) -> None:
        now = self._now()
        self._sweep_some(now)
        self._put(key, value, now + _ttl_us(ttl), now)

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.set_now(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        now = self._now()
        expires = now + _ttl_us(ttl)
        self._sweep_some(now)
        entry = self._data.get(key)
        if entry is not None and entry.expires > now:
            return False
        self._put(key, value, expires, now)
        return True

    def incr_now(self, key: str, amount: float, ttl: float) -> float:
        """:meth:`incr` without waiting."""
        now = self._now()
        entry = self._data.get(key)
        if entry is not None and entry.expires > now and isinstance(entry.value, float):
            entry.value += amount
            return entry.value
        self._sweep_some(now)
        total = float(amount)
        self._put(key, total, now + _ttl_us(ttl), now)
        return total

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        return self.incr_now(key, amount, ttl)

    async def close(self) -> None:
        self._data.clear()
        self._sweep_keys.clear()

    # ------------------------------------------------------------ bounds

    def sweep(self) -> int:
        """Drop every expired key now; returns how many."""
        now = self._now()
        expired = [key for key, entry in self._data.items() if entry.expires <= now]
        for key in expired:
            del self._data[key]
        return len(expired)

    def _put(self, key: str, value: bytes | _Slots | float, expires: int,
             now: int) -> None:
        entry = self._data.get(key)
        if entry is not None:
            entry.value, entry.expires = value, expires
            return
        if len(self._data) >= self._max_keys:
            self._make_room(now)
        self._data[key] = _Entry(expires, value)

    def _sweep_some(self, now: int, rounds: int = 1) -> None:
        """Check a few keys for expiry, in a rolling pass over all of them."""
        if not self._sweep_step:
            return
        keys = self._sweep_keys
        if not keys:
            if not self._data:
                return
            self._sweep_keys = keys = list(self._data)
        data = self._data
        for _ in range(min(self._sweep_step * rounds, len(keys))):
            key = keys.pop()
            entry = data.get(key)
            if entry is not None and entry.expires <= now:
                del data[key]

    def _make_room(self, now: int) -> None:
        """At the cap: among the oldest 1 % of keys, drop the expired ones, or else
        all of them."""
        batch = max(1, self._max_keys // 100)
        data = self._data
        oldest = list(itertools.islice(data, batch))
        expired = [key for key in oldest if data[key].expires <= now]
        for key in expired or oldest:
            del data[key]
