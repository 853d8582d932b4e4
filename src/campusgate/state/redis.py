"""The Redis state backend: one state shared by every worker and machine.

A rate-limit check is one ``EVALSHA`` of a script from :mod:`.scripts` that checks
and updates every window of the key atomically on Redis's own clock, so the gateway
nodes agree whatever their clocks say.  The Python side only encodes the call (the
constant part of the command is encoded once per windows tuple) and turns the
script's reply into a :class:`Decision` with the same arithmetic as the in-process
backend.  Every failure is :class:`StateUnavailable`.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from campusgate.state import scripts
from campusgate.state.base import StateUnavailable
from campusgate.state.ratelimit import (
    SLIDING_WINDOW,
    US,
    Decision,
    Window,
    check_request,
    gcra_decision,
    sliding_decision,
)
from campusgate.state.resp import Reply, ReplyError, RespClient, encode_command

__all__ = ["NeedsTask", "PendingDecision", "RedisState"]

_PLAN_CACHE = 256


class _Plan:
    """The constant parts of one (windows, algorithm) EVALSHA call."""

    __slots__ = ("head", "reply_size", "script", "sliding", "tail", "windows")

    def __init__(self, windows: Sequence[Window], algorithm: str) -> None:
        self.windows = windows
        self.sliding = sliding = algorithm == SLIDING_WINDOW
        self.script = scripts.SLIDING_WINDOW if sliding else scripts.GCRA
        args: list[bytes | str | int] = []
        for w in windows:
            if sliding:
                args += [f"s{w.us}", w.us, w.limit]
            else:
                args += [f"g{w.interval_us}x{w.limit}", w.interval_us, w.limit]
        # EVALSHA sha 1 key cost now args...
        count = 6 + len(args)
        self.head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n1\r\n" % (count, self.script.sha)
        self.tail = encode_command(*args).split(b"\r\n", 1)[1]
        self.reply_size = 2 + len(windows) * (2 if sliding else 1)


def _ms(ttl: float) -> int:
    if not ttl > 0:
        raise ValueError("ttl must be > 0 seconds")
    return max(1, math.ceil(ttl * 1000))


class NeedsTask(Exception):
    """The reply needs more work than a callback can do (the script must be loaded
    first): run the check again with ``await ratelimit()``; nothing was counted."""


@dataclass(eq=False)
class PendingDecision:
    """A rate-limit check sent to Redis whose reply has not been read yet."""

    state: RedisState
    plan: _Plan
    future: asyncio.Future[Reply]
    windows: Sequence[Window]
    cost: int

    def result(self) -> Decision:
        """The decision, once ``future`` is done.  Raises :class:`NeedsTask` when
        Redis does not know the script yet, StateUnavailable when Redis failed."""
        try:
            reply = self.future.result()
        except ReplyError as exc:
            if exc.code == "NOSCRIPT":
                raise NeedsTask() from None
            raise
        return self.state._decide(self.plan, reply, self.windows, self.cost)


class RedisState:
    """``state: redis://[[user]:password@]host[:port][/db]`` (or ``rediss://``).

    ``prefix`` starts every key, so several installations can share one Redis.
    ``clock`` (tests only) replaces Redis's clock in rate limits with this one.
    """

    kind = "redis"
    waits = True

    def __init__(
        self,
        url: str,
        prefix: str = "cg:",
        *,
        clock: Callable[[], float] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **options: float,
    ) -> None:
        extra: dict[str, object] = dict(options)
        if ssl_context is not None:
            extra["ssl_context"] = ssl_context
        self.client = RespClient.from_url(url, **extra)
        self._prefix = prefix.encode()
        self._rl_prefix = self._prefix + b"rl:"
        self._clock = clock
        self._plans: dict[tuple[int, str], _Plan] = {}

    # ------------------------------------------------------------ rate limits

    def ratelimit_now(
        self, key: str, windows: Sequence[Window], algorithm: str, cost: int = 1
    ) -> Decision:
        raise NotImplementedError("the redis state waits: use await ratelimit()")

    async def ratelimit(
        self, key: str, windows: Sequence[Window], algorithm: str, cost: int = 1
    ) -> Decision:
        plan, payload = self._ratelimit_command(key, windows, algorithm, cost)
        reply = await self.client.execute_script(plan.script, payload)
        return self._decide(plan, reply, windows, cost)

    def ratelimit_start(
        self, key: str, windows: Sequence[Window], algorithm: str, cost: int = 1
    ) -> PendingDecision | None:
        """Send the check on the open connection without awaiting (the proxy's
        callback path continues when the reply arrives); None when there is no open
        connection -- then use :meth:`ratelimit`."""
        plan, payload = self._ratelimit_command(key, windows, algorithm, cost)
        fut = self.client.send_now(payload)
        return None if fut is None else PendingDecision(self, plan, fut, windows, cost)

    def _ratelimit_command(self, key: str, windows: Sequence[Window], algorithm: str,
                           cost: int) -> tuple[_Plan, bytes]:
        plan = self._plans.get((id(windows), algorithm))
        if plan is None or plan.windows is not windows:
            plan = self._plan(windows, algorithm)
        if cost < 1:
            raise ValueError("cost must be >= 1")
        name = self._rl_prefix + key.encode()
        amount = b"%d" % cost
        now = b"" if self._clock is None else b"%d" % int(self._clock() * US)
        payload = b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n%s" % (
            plan.head, len(name), name, len(amount), amount, len(now), now, plan.tail
        )
        return plan, payload

    @staticmethod
    def _decide(plan: _Plan, reply: Reply, windows: Sequence[Window], cost: int) -> Decision:
        if not isinstance(reply, list) or len(reply) != plan.reply_size:
            raise StateUnavailable(f"unexpected reply to the rate-limit script: {reply!r}")
        values = cast(list[int], reply)
        if plan.sliding:
            counts = list(zip(values[2::2], values[3::2], strict=True))
            return sliding_decision(windows, counts, values[1], cost, values[0] == 1)
        return gcra_decision(windows, values[2:], values[1], cost, values[0] == 1)

    def _plan(self, windows: Sequence[Window], algorithm: str) -> _Plan:
        check_request(windows, algorithm, 1)
        plan = _Plan(windows, algorithm)
        if isinstance(windows, tuple):  # immutable: safe to remember by identity
            if len(self._plans) >= _PLAN_CACHE:
                self._plans.clear()
            self._plans[(id(windows), algorithm)] = plan
        return plan

    # ------------------------------------------------------------ keys

    def get_now(self, key: str) -> bytes | None:
        raise NotImplementedError("the redis state waits: use await get()")

    def set_now(self, key: str, value: bytes, ttl: float) -> None:
        raise NotImplementedError("the redis state waits: use await set()")

    async def get(self, key: str) -> bytes | None:
        reply = await self.client.execute(b"GET", self._prefix + key.encode())
        return reply if isinstance(reply, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self.client.execute(b"SET", self._prefix + key.encode(), value, b"PX", _ms(ttl))

    async def delete(self, key: str) -> None:
        await self.client.execute(b"DEL", self._prefix + key.encode())

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        reply = await self.client.execute(
            b"SET", self._prefix + key.encode(), value, b"NX", b"PX", _ms(ttl)
        )
        return reply is not None

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        reply = await self.client.evalsha(scripts.INCR, [self._prefix + key.encode()],
                                          [repr(float(amount)), _ms(ttl)])
        try:
            return float(cast(bytes, reply))
        except (TypeError, ValueError):
            raise StateUnavailable(f"unexpected reply to INCRBYFLOAT: {reply!r}") from None

    async def close(self) -> None:
        await self.client.close()
