"""Which deployment serves a call, in what order the others are tried, and what a
failure does to a deployment: sans-IO, one :class:`ModelRouter` per worker.

A client names a model three ways (the issue's): a configured alias (``gpt-fast``,
a :class:`ModelGroup`), ``provider/model`` (that provider's model, no group needed),
or a bare model name (the groups that serve it).  A group spreads calls over its
:class:`Target` s -- several deployments, or several keys of one -- by ``weighted``
random choice, ``least-busy`` (fewest calls in flight) or ``lowest-latency`` (an
exponentially weighted mean of each target's time to answer), and names other groups
to fall back to.

:meth:`ModelRouter.plan` gives the attempts in order: the group's available targets,
best first, then each fallback group's.  :meth:`ModelRouter.report` takes each
attempt's outcome: a 429 cools the target down (for the provider's ``retry_after``,
or :data:`COOLDOWN`), a 401/403 disables it until the configuration changes (its key
is wrong: reported, never retried), :data:`FAILURES_TO_COOL` server errors or
timeouts in a row cool it down too.  A target that is cooling down is skipped unless
no other is left, so a group never refuses a call only because every target had a
bad minute.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import Deployment

__all__ = ["COOLDOWN", "FAILURES_TO_COOL", "ModelGroup", "ModelRouter", "Strategy",
           "Target", "TargetHealth", "UnknownModel"]

Strategy = Literal["weighted", "least-busy", "lowest-latency"]
#: Seconds a target rests after a 429 without retry-after, or repeated failures.
COOLDOWN = 30.0
#: Server errors or timeouts in a row that cool a target down.
FAILURES_TO_COOL = 3
#: Weight of the newest latency in the moving average.
_ALPHA = 0.3


class UnknownModel(LookupError):
    """No group, provider or deployment answers to the name."""


@dataclass(frozen=True)
class Target:
    """One deployment (a provider, a model there, a key) in a group."""

    #: Unique and stable: ``<provider name>/<model>`` plus ``#<n>`` for extra keys.
    id: str
    #: The configured provider's name (``openai-east``), not its type.
    provider: str
    deployment: Deployment
    weight: int = 1


@dataclass(frozen=True)
class ModelGroup:
    """A model name clients use, and what serves it."""

    name: str
    targets: tuple[Target, ...]
    strategy: Strategy = "weighted"
    #: Other groups to try, in order, when none of these answers.
    fallbacks: tuple[str, ...] = ()


@dataclass
class TargetHealth:
    in_flight: int = 0
    latency: float | None = None
    failures: int = 0
    cooling_until: float = 0.0
    #: Why it is disabled (a 401/403), or None.
    disabled: str | None = None


@dataclass
class ModelRouter:
    groups: dict[str, ModelGroup]
    #: Provider name -> a deployment factory for ``provider/model`` names.
    providers: dict[str, Callable[[str], Target]] = field(default_factory=dict)
    health: dict[str, TargetHealth] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    # ------------------------------------------------------------ names
    def resolve(self, name: str) -> list[ModelGroup]:
        """The groups a model name means: an alias; ``provider/model``; or the groups
        with a target of that model (in configuration order)."""
        if name in self.groups:
            return [self.groups[name]]
        provider, slash, model = name.partition("/")
        if slash and provider in self.providers and model:
            target = self.providers[provider](model)
            return [ModelGroup(name, (target,))]
        serving = [g for g in self.groups.values()
                   if any(t.deployment.model == name for t in g.targets)]
        if not serving:
            raise UnknownModel(name)
        return serving

    def plan(self, name: str, now: float) -> list[Target]:
        """Every target to try for ``name``, in order (UnknownModel if none)."""
        alone = self.groups.get(name)
        if alone is not None and len(alone.targets) == 1 and not alone.fallbacks:
            (target,) = alone.targets  # the common case, on every call: no ranking
            health = self.health.get(target.id)
            return [target] if health is None or health.disabled is None else []
        order: list[Target] = []
        seen: set[str] = set()
        seen_groups: set[str] = set()
        queue = list(self.resolve(name))
        while queue:
            group = queue.pop(0)
            if group.name in seen_groups:
                continue
            seen_groups.add(group.name)
            for target in self._ranked(group, now):
                if target.id not in seen:
                    seen.add(target.id)
                    order.append(target)
            queue.extend(self.groups[f] for f in group.fallbacks if f in self.groups)
        return order

    def _ranked(self, group: ModelGroup, now: float) -> list[Target]:
        usable = [t for t in group.targets if self._health(t).disabled is None]
        ready = [t for t in usable if self._health(t).cooling_until <= now]
        resting = sorted((t for t in usable if t not in ready),
                         key=lambda t: self._health(t).cooling_until)
        return self._order(ready, group.strategy) + resting

    def _order(self, targets: Sequence[Target], strategy: Strategy) -> list[Target]:
        if strategy == "least-busy":
            return sorted(targets, key=lambda t: (self._health(t).in_flight, -t.weight))
        if strategy == "lowest-latency":
            # unmeasured targets first, so that each gets measured
            return sorted(targets, key=lambda t: (self._health(t).latency is not None,
                                                  self._health(t).latency or 0.0))
        left = list(targets)
        ordered: list[Target] = []
        while left:
            pick = self.rng.choices(left, weights=[max(t.weight, 0) or 1 for t in left])[0]
            ordered.append(pick)
            left.remove(pick)
        return ordered

    def _health(self, target: Target) -> TargetHealth:
        return self.health.setdefault(target.id, TargetHealth())

    # ------------------------------------------------------------ outcomes
    def started(self, target: Target) -> None:
        health = self.health.get(target.id)  # on every call: no setdefault's default
        if health is None:
            health = self._health(target)
        health.in_flight += 1

    def report(self, target: Target, now: float, *, latency: float | None = None,
               error: ProviderError | None = None) -> None:
        """One attempt ended: answered (``error`` None, with its time to answer), or
        failed with ``error``."""
        health = self.health.get(target.id)
        if health is None:
            health = self._health(target)
        health.in_flight = max(0, health.in_flight - 1)
        if error is None:
            health.failures = 0
            if latency is not None:
                health.latency = latency if health.latency is None else (
                    _ALPHA * latency + (1 - _ALPHA) * health.latency)
            return
        if error.kind in ("auth", "permission"):
            health.disabled = f"{error.kind}: {error.message}"
        elif error.kind == "rate_limited":
            health.cooling_until = now + (error.retry_after or COOLDOWN)
        elif error.kind in ("server", "timeout", "overloaded", "bad_response"):
            health.failures += 1
            if health.failures >= FAILURES_TO_COOL or error.kind == "overloaded":
                health.cooling_until = now + (error.retry_after or COOLDOWN)
                health.failures = 0

    def disabled(self) -> dict[str, str]:
        """Targets disabled by a 401/403, and why (for the operator)."""
        return {tid: h.disabled for tid, h in self.health.items() if h.disabled}
