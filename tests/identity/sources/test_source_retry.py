"""The retry schedule of calls to a login source: bounded, jittered, Retry-After."""

from __future__ import annotations

import pytest

from campusgate.identity.sources.retry import RetryPolicy, retry_delay

POLICY = RetryPolicy(attempts=3, base=0.25, cap=2.0, budget=4.0)


@pytest.mark.parametrize(("attempt", "waited", "retry_after", "rand", "expected"), [
    (1, 0.0, None, 1.0, 0.25),        # first backoff ceiling
    (2, 0.25, None, 1.0, 0.5),        # doubled
    (2, 0.25, None, 0.5, 0.25),       # full jitter: anywhere below the ceiling
    (1, 0.0, "2", 0.0, 2.0),          # Retry-After in seconds is honoured
    (1, 0.0, "Wed, 21 Oct 2026 07:28:00 GMT", 1.0, 0.25),  # a date: our own schedule
    (1, 0.0, "30", 1.0, None),        # longer than the budget: stop now
    (2, 3.9, None, 1.0, None),        # the budget is spent
    (3, 0.0, None, 1.0, None),        # the last attempt
])
def test_the_next_delay(attempt: int, waited: float, retry_after: str | None, rand: float,
                        expected: float | None) -> None:
    assert retry_delay(POLICY, attempt, waited, retry_after, lambda: rand) == expected


def test_the_backoff_never_passes_its_cap() -> None:
    policy = RetryPolicy(attempts=10, base=1.0, cap=2.0, budget=100.0)
    assert retry_delay(policy, 8, 0.0, None, lambda: 1.0) == 2.0
