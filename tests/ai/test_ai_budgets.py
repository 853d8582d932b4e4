"""The budgets' arithmetic (periods, which budgets apply, the refusal and its
retry-after, what a call charges) and the guard over a memory state with a clock,
including a state backend that is down (fail open / closed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from campusgate.ai.budgets import (
    Budgets,
    applicable,
    charges,
    counter_key,
    period_bounds,
    refusal,
)
from campusgate.ai.errors import ProviderError
from campusgate.config.ai import AiBudget, AiConfig
from campusgate.config.loader import load_config_text
from campusgate.state.base import StateUnavailable
from campusgate.state.memory import MemoryState


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def budget(**fields: Any) -> AiBudget:
    return AiBudget.model_validate({"name": "b", "period": "day", "tokens": 100, **fields})


@pytest.mark.parametrize(("period", "now", "start", "end"), [
    ("minute", "2026-11-28T13:05:59.999", "2026-11-28T13:05:00", "2026-11-28T13:06:00"),
    ("minute", "2026-11-28T13:06:00", "2026-11-28T13:06:00", "2026-11-28T13:07:00"),
    ("day", "2026-11-28T23:59:59.5", "2026-11-28T00:00:00", "2026-11-29T00:00:00"),
    ("day", "2026-11-29T00:00:00", "2026-11-29T00:00:00", "2026-11-30T00:00:00"),
    ("month", "2026-11-30T23:59:59", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
    ("month", "2026-12-31T12:00:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ("month", "2028-02-29T12:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
])
def test_periods_are_aligned_to_utc(period: str, now: str, start: str, end: str) -> None:
    got = period_bounds(period, at(now))
    assert (iso(got[0]), iso(got[1])) == (start, end)


def test_which_budgets_apply() -> None:
    everyone = budget(name="all")
    ada = budget(name="ada", consumer="ada")
    staff = budget(name="staff", group="staff")
    fast = budget(name="fast", model="gpt-fast")
    ada_fast = budget(name="ada-fast", consumer="ada", model="gpt-fast")
    rules = [everyone, ada, staff, fast, ada_fast]
    names = lambda *a: [b.name for b in applicable(rules, *a)]  # noqa: E731
    assert names("ada", ("staff",), "gpt-fast") == ["all", "ada", "staff", "fast", "ada-fast"]
    assert names("ada", (), "gpt-big") == ["all", "ada"]
    assert names("bob", ("staff",), "gpt-big") == ["all", "staff"]
    assert names(None, (), "gpt-fast") == ["all", "fast"]


@pytest.mark.parametrize(("fields", "used", "message", "retry"), [
    ({"period": "day", "tokens": 100000}, {"tokens": 100000.0},
     "budget 'b' (daily, 100000 tokens) is used up; it resets at 2026-11-29T00:00:00Z",
     39600.0),
    ({"period": "minute", "tokens": None, "requests": 60}, {"requests": 60.0},
     "budget 'b' (per minute, 60 requests) is used up; it resets at 2026-11-28T13:01:00Z",
     60.0),
    ({"period": "month", "tokens": None, "usd": "5.00"}, {"usd": 5.0000001},
     "budget 'b' (monthly, 5.00 USD) is used up; it resets at 2026-12-01T00:00:00Z",
     ((3 * 24) - 13) * 3600.0),
    ({"period": "day", "tokens": 10, "requests": 5}, {"tokens": 9.0, "requests": 5.0},
     "budget 'b' (daily, 5 requests) is used up", None),
    ({"period": "day", "tokens": 10, "requests": 5}, {"tokens": 9.0, "requests": 4.0},
     None, None),
])
def test_the_refusal_names_the_budget_and_when_it_resets(
        fields: dict[str, Any], used: Any, message: str | None, retry: float | None) -> None:
    error = refusal(budget(**fields), used, at("2026-11-28T13:00:00"))
    if message is None:
        assert error is None
        return
    assert error is not None and message in error.message
    assert (error.kind, error.status, error.client_status()) == ("rate_limited", 429, 429)
    if retry is not None:
        assert error.retry_after == retry


def test_a_refusal_a_fraction_of_a_second_before_the_reset_says_one_second() -> None:
    error = refusal(budget(period="minute"), {"tokens": 100.0}, at("2026-11-28T13:00:59.9"))
    assert error is not None and error.retry_after == 1.0


@pytest.mark.parametrize(("usage", "cost", "expected"), [
    ({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}, "0.0015",
     {"tokens": 7.0, "usd": 0.0015, "requests": 1.0}),
    ({"prompt_tokens": 5, "completion_tokens": 2}, None,
     {"tokens": 7.0, "usd": 0.0, "requests": 1.0}),
    (None, None, {"tokens": 0.0, "usd": 0.0, "requests": 1.0}),
    ({"prompt_tokens": 3}, "junk", {"tokens": 3.0, "usd": 0.0, "requests": 1.0}),
])
def test_what_a_call_charges(usage: Any, cost: str | None, expected: Any) -> None:
    assert charges(usage, cost) == expected


def test_config_wants_a_limit_and_unique_names() -> None:
    with pytest.raises(ValueError, match="give tokens, usd and/or requests"):
        AiBudget.model_validate({"name": "b", "period": "day"})
    with pytest.raises(ValueError, match=r"duplicate name in ai\.budgets"):
        AiConfig.model_validate({"budgets": [budget().model_dump()] * 2})
    with pytest.raises(ValueError):
        AiBudget.model_validate({"name": "b", "period": "week", "tokens": 1})
    assert budget(usd="0.5").usd == Decimal("0.5")


def test_counter_keys_are_per_budget_period_and_kind() -> None:
    start, _ = period_bounds("day", at("2026-11-28T13:00:00"))
    assert counter_key(budget(), start, "usd") == "aib:b:20261128T0000:usd"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_the_guard_checks_charges_and_forgets_at_the_period_end() -> None:
    clock = Clock(at("2026-11-28T23:59:00"))
    memory = MemoryState(clock=clock)
    guard = Budgets(lambda: memory, clock)
    config = AiConfig()
    rules = [budget(tokens=10), budget(name="rpm", period="minute", tokens=None, requests=2)]
    await guard.check(config, rules)
    await guard.charge(rules, {"total_tokens": 6}, None)
    await guard.check(config, rules)
    await guard.charge(rules, {"total_tokens": 6}, None)  # overshoots: the next is refused
    with pytest.raises(ProviderError, match="'b' \\(daily, 10 tokens\\)") as refused:
        await guard.check(config, rules)
    assert refused.value.retry_after == 60.0
    clock.now = at("2026-11-29T00:00:00")  # a new day, and a new minute
    await guard.check(config, rules)
    await guard.charge(rules, {"total_tokens": 1}, None)


class Down:
    kind = "redis"
    waits = True

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        raise StateUnavailable("cannot connect to redis")


async def test_a_state_that_is_down_fails_open_or_closed(
        caplog: pytest.LogCaptureFixture) -> None:
    down: Any = Down()
    guard = Budgets(lambda: down)
    rules = [budget()]
    await guard.check(AiConfig(), rules)  # open: the call goes on
    await guard.charge(rules, {"total_tokens": 5}, None)  # never raises
    with pytest.raises(ProviderError, match="budgets cannot be checked") as closed:
        await guard.check(AiConfig(budgets_fail="closed"), rules)
    assert closed.value.client_status() == 503
    warnings = [r for r in caplog.records if "AI budgets cannot be" in r.getMessage()]
    assert len(warnings) == 1  # once per 30 s



def test_the_budgets_of_the_ai_page_apply_as_it_says() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "ai.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", page, flags=re.S)
    config = load_config_text(block, "docs/ai.md", env={})
    assert config.ai is not None
    rules = config.ai.budgets
    assert [b.name for b in applicable(rules, "physics-lab", ("staff",), "claude-fast")] \
        == ["lab-daily", "staff-monthly", "claude-rpm"]
    assert [b.name for b in applicable(rules, "guest", (), "gpt-fast")] == []
    assert "budget 'lab-daily' (daily, 200000 tokens) is used up; it resets at " \
        "2026-11-29T00:00:00Z" in page
