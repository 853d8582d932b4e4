"""ModelRouter (ai/routing.py): names, the order of attempts, and what failures do."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import Deployment
from campusgate.ai.routing import (
    COOLDOWN,
    FAILURES_TO_COOL,
    ModelGroup,
    ModelRouter,
    Target,
    UnknownModel,
)


def target(tid: str, model: str = "gpt-4o-mini", weight: int = 1) -> Target:
    provider = tid.split("/")[0]
    return Target(tid, provider, Deployment("openai", model, "https://x", "k"), weight)


EAST, WEST = target("east/gpt-4o-mini", weight=3), target("west/gpt-4o-mini")
CLAUDE = target("claude/sonnet", model="claude-sonnet-4")


def router(**groups: ModelGroup) -> ModelRouter:
    defaults = {"fast": ModelGroup("fast", (EAST, WEST), fallbacks=("smart",)),
                "smart": ModelGroup("smart", (CLAUDE,))}
    return ModelRouter({**defaults, **groups},
                       providers={"east": lambda m: target(f"east/{m}", model=m)},
                       rng=random.Random(7))


def test_names_resolve_as_alias_provider_slash_model_or_bare_model() -> None:
    r = router()
    assert [g.name for g in r.resolve("fast")] == ["fast"]
    (adhoc,) = r.resolve("east/o3-mini")
    assert adhoc.targets[0].deployment.model == "o3-mini"
    assert [g.name for g in r.resolve("claude-sonnet-4")] == ["smart"]
    with pytest.raises(UnknownModel):
        r.resolve("nope")
    with pytest.raises(UnknownModel):
        r.resolve("unknown-provider/model")


def test_a_plan_tries_the_group_then_its_fallbacks() -> None:
    plan = router().plan("fast", now=0)
    assert {t.id for t in plan[:2]} == {EAST.id, WEST.id} and plan[2] == CLAUDE


def test_weighted_choice_follows_the_weights() -> None:
    r = router()
    firsts = Counter(r.plan("fast", now=0)[0].id for _ in range(4000))
    assert 0.70 < firsts[EAST.id] / 4000 < 0.80  # 3 : 1


def test_least_busy_and_lowest_latency() -> None:
    r = router(busy=ModelGroup("busy", (EAST, WEST), strategy="least-busy"),
               quick=ModelGroup("quick", (EAST, WEST), strategy="lowest-latency"))
    r.started(EAST)
    assert r.plan("busy", now=0)[0] == WEST
    r.report(EAST, 0, latency=0.9)
    assert r.plan("quick", now=0)[0] == WEST  # not measured yet: tried first
    r.started(WEST)
    r.report(WEST, 0, latency=0.2)
    assert [t.id for t in r.plan("quick", now=0)] == [WEST.id, EAST.id]


def test_a_429_cools_a_target_down_for_its_retry_after() -> None:
    r = router()
    r.started(EAST)
    r.report(EAST, 100, error=ProviderError("rate_limited", "slow down", 429, retry_after=5))
    assert [t.id for t in r.plan("fast", now=101)][:2] == [WEST.id, EAST.id]  # resting last
    assert r.plan("fast", now=106)[0] in (EAST, WEST)
    r.started(WEST)
    r.report(WEST, 200, error=ProviderError("rate_limited", "slow down", 429))
    assert r.health[WEST.id].cooling_until == 200 + COOLDOWN


def test_a_rejected_key_is_disabled_and_reported_never_retried() -> None:
    r = router()
    r.started(WEST)
    r.report(WEST, 0, error=ProviderError("auth", "invalid x-api-key", 401))
    assert WEST not in r.plan("fast", now=1000)
    assert r.disabled() == {WEST.id: "auth: invalid x-api-key"}


def test_repeated_server_errors_cool_down_and_a_success_resets_the_count() -> None:
    r = router()
    for n in range(FAILURES_TO_COOL - 1):
        r.started(EAST)
        r.report(EAST, n, error=ProviderError("server", "boom", 500))
    r.started(EAST)
    r.report(EAST, 10, latency=0.1)
    assert r.health[EAST.id].failures == 0
    for n in range(FAILURES_TO_COOL):
        r.started(EAST)
        r.report(EAST, 20 + n, error=ProviderError("timeout", "slow", 0))
    assert r.health[EAST.id].cooling_until > 20
    assert r.health[EAST.id].in_flight == 0


def test_a_context_length_error_moves_on_without_blaming_the_target() -> None:
    r = router()
    r.started(EAST)
    r.report(EAST, 0, error=ProviderError("context_length", "too long", 400))
    health = r.health[EAST.id]
    assert health.cooling_until == 0 and health.disabled is None and health.failures == 0
