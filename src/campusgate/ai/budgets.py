"""Budgets and per-minute limits of the AI gateway: checked before a call, charged
after it.

A budget (``ai.budgets``, :class:`~campusgate.config.ai.AiBudget`) limits the tokens,
the cost in USD and/or the number of requests of the calls it applies to, per UTC
minute, day or month (requests- and tokens-per-minute limits are budgets with
``period: minute``).  Its counters live in the worker's state backend (memory, or
Redis shared by every worker) under ``aib:<budget>:<period start>:<what>`` and expire
with their period, so nothing needs resetting.

Before a call every applicable budget must be under each of its limits, else the
call is refused with a 429 naming the budget and when it resets (``retry_after``),
without calling a provider.  The call that passes may overshoot a token or USD limit
(its usage is only known after it): the next one is refused.  After the call --
whole, streamed, or streamed and left by its client -- its total tokens, cost and one
request are charged to every budget that applied.  The arithmetic is pure
(:func:`period_bounds`, :func:`applicable`, :func:`refusal`, :func:`charges`); the
:class:`Budgets` guard adds the state I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from campusgate.ai.errors import ProviderError
from campusgate.ai.types import Json
from campusgate.config.ai import AiBudget, AiConfig
from campusgate.state.base import StateBackend, StateUnavailable, WarningThrottle

__all__ = ["KINDS", "Budgets", "applicable", "charges", "counter_key", "period_bounds",
           "refusal"]

log = logging.getLogger("campusgate.ai")

Kind = Literal["tokens", "usd", "requests"]
KINDS: tuple[Kind, ...] = ("tokens", "usd", "requests")
_ADJECTIVE = {"minute": "per minute", "day": "daily", "month": "monthly"}
#: Seconds a counter outlives its period (clock skew between workers and Redis).
_GRACE = 60.0


def period_bounds(period: str, now: float) -> tuple[datetime, datetime]:
    """The UTC period holding the Unix time ``now``: ``(start, end)``."""
    at = datetime.fromtimestamp(now, UTC)
    if period == "minute":
        start = at.replace(second=0, microsecond=0)
        return start, start + timedelta(minutes=1)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return start, start + timedelta(days=1)
    start = start.replace(day=1)
    end = (start.replace(year=start.year + 1, month=1) if start.month == 12
           else start.replace(month=start.month + 1))
    return start, end


def applicable(budgets: Sequence[AiBudget], consumer: str | None,
               groups: Sequence[str], model: str) -> list[AiBudget]:
    """The budgets of a call by ``consumer`` (None: anonymous) in ``groups`` to the
    model name ``model``: each one whose given selectors all match."""
    return [b for b in budgets
            if (b.consumer is None or b.consumer == consumer)
            and (b.group is None or b.group in groups)
            and (b.model is None or b.model == model)]


def counter_key(budget: AiBudget, start: datetime, kind: Kind) -> str:
    return f"aib:{budget.name}:{start.strftime('%Y%m%dT%H%M')}:{kind}"


def _limit(budget: AiBudget, kind: Kind) -> Decimal | int | None:
    return budget.tokens if kind == "tokens" else budget.usd if kind == "usd" \
        else budget.requests


def _describe(budget: AiBudget, kind: Kind) -> str:
    if kind == "usd":
        return f"{budget.usd} USD"
    return f"{_limit(budget, kind)} {kind}"


def refusal(budget: AiBudget, used: dict[Kind, float], now: float) -> ProviderError | None:
    """The 429 for a call under ``budget`` whose counters stand at ``used``, or None
    when every limit has room left."""
    for kind in KINDS:
        limit = _limit(budget, kind)
        if limit is None or used.get(kind, 0.0) < float(limit):
            continue
        _, end = period_bounds(budget.period, now)
        return ProviderError(
            "rate_limited", f"budget {budget.name!r} ({_ADJECTIVE[budget.period]}, "
            f"{_describe(budget, kind)}) is used up; it resets at "
            f"{end.strftime('%Y-%m-%dT%H:%M:%SZ')}", status=429, code="budget_exceeded",
            retry_after=max(1.0, float(int(end.timestamp() - now + 0.999))))
    return None


def charges(usage: Json | None, cost: str | None) -> dict[Kind, float]:
    """What one finished call adds to each counter: its total tokens (input + output
    when the provider gave no total), its cost in USD (0 when unknown), 1 request."""
    tokens = 0
    if isinstance(usage, dict):
        total = usage.get("total_tokens")
        if isinstance(total, int):
            tokens = total
        else:
            parts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
            tokens = sum(p for p in parts if isinstance(p, int))
    usd = 0.0
    if cost is not None:
        try:
            usd = float(Decimal(cost))
        except (InvalidOperation, ValueError):
            usd = 0.0
    return {"tokens": float(tokens), "usd": usd, "requests": 1.0}


async def _incr_all(backend: StateBackend, increments: list[tuple[str, float, float]]
                    ) -> list[float]:
    """Every ``(key, amount, ttl)`` increment, sent together: one round trip's wait
    for all of them (a budget with three limits, or several budgets), not one each."""
    if len(increments) == 1:
        key, amount, ttl = increments[0]
        return [await backend.incr(key, amount, ttl)]
    return list(await asyncio.gather(*(backend.incr(key, amount, ttl)
                                       for key, amount, ttl in increments)))


class Budgets:
    """The check and the charge, over the state backend ``state()`` returns (looked
    up per call: the worker's backend can be made after the AI runtime)."""

    def __init__(self, state: Callable[[], StateBackend],
                 clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock
        self._warning = WarningThrottle(30.0)

    async def check(self, config: AiConfig, budgets: Sequence[AiBudget]) -> None:
        """Raise the 429 of the first applicable budget that is used up; with the
        state unavailable, a 503 when ``budgets_fail`` is closed."""
        if not budgets:
            return
        now = self.clock()
        backend = self.state()
        try:
            reads = [(budget, kind, counter_key(budget, start, kind),
                      end.timestamp() - now + _GRACE)
                     for budget in budgets
                     for start, end in (period_bounds(budget.period, now),)
                     for kind in KINDS if _limit(budget, kind) is not None]
            values = await _incr_all(backend, [(key, 0.0, ttl) for _, _, key, ttl in reads])
            used: dict[str, dict[Kind, float]] = {}
            for (budget, kind, _, _), value in zip(reads, values, strict=True):
                used.setdefault(budget.name, {})[kind] = value
            for budget in budgets:
                refused = refusal(budget, used.get(budget.name, {}), now)
                if refused is not None:
                    raise refused
        except StateUnavailable as exc:
            self._warn("checked", exc)
            if config.budgets_fail == "closed":
                raise ProviderError("overloaded", "budgets cannot be checked now (the "
                                    "state backend is unavailable)", status=503) from None

    async def charge(self, budgets: Sequence[AiBudget], usage: Json | None,
                     cost: str | None) -> None:
        """Add one finished call to every budget it applied to; never raises."""
        if not budgets:
            return
        now = self.clock()
        amounts = charges(usage, cost)
        backend = self.state()
        try:
            await _incr_all(backend, [
                (counter_key(budget, start, kind), amounts[kind],
                 end.timestamp() - now + _GRACE)
                for budget in budgets
                for start, end in (period_bounds(budget.period, now),)
                for kind in KINDS if _limit(budget, kind) is not None and amounts[kind]])
        except StateUnavailable as exc:
            self._warn("charged", exc)
        except Exception:  # a charge must never break the answer already given
            log.exception("AI budgets: charging a call failed")

    def _warn(self, what: str, exc: Exception) -> None:
        held = self._warning.due()
        if held is not None:
            log.warning("AI budgets cannot be %s: %s (%d more like this held back)",
                        what, exc, held)
