"""MemoryState: keys with TTLs, bounded size, and the rate-limit tables."""

from __future__ import annotations

import random

import pytest
from ratelimit_tables import (
    CASES,
    T0,
    Case,
    Clock,
    expected,
    outcome,
    random_steps,
    random_windows,
)

from campusgate.state.memory import MemoryState
from campusgate.state.ratelimit import ALGORITHMS, SLIDING_WINDOW, Window


def test_kind() -> None:
    state = MemoryState()
    assert (state.kind, state.waits) == ("memory", False)


async def test_set_get_expire_delete() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    assert await state.get("k") is None
    await state.set("k", b"v", 10)
    assert await state.get("k") == b"v" and state.get_now("k") == b"v"
    state.set_now("k", b"w", 10)
    assert await state.get("k") == b"w"
    clock.now += 10
    assert await state.get("k") is None
    await state.set("k", b"v", 1)
    await state.delete("k")
    await state.delete("k")
    assert await state.get("k") is None


async def test_add_is_set_if_absent() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    assert await state.add("nonce", b"1", 5)
    assert not await state.add("nonce", b"2", 5)
    assert await state.get("nonce") == b"1"
    clock.now += 5
    assert await state.add("nonce", b"3", 5)  # expired: free again
    assert await state.get("nonce") == b"3"


@pytest.mark.parametrize("ttl", [0, -1, float("nan")])
async def test_ttl_must_be_positive(ttl: float) -> None:
    state = MemoryState()
    with pytest.raises(ValueError):
        await state.set("k", b"v", ttl)
    with pytest.raises(ValueError):
        await state.add("k", b"v", ttl)


def test_expired_keys_are_swept_while_writing() -> None:
    clock = Clock()
    state = MemoryState(clock=clock, sweep_step=2)
    for i in range(100):
        state.set_now(f"old{i}", b"x", 1)
    clock.now += 2
    for _ in range(60):  # never reads the old keys
        state.set_now("live", b"x", 100)
    assert len(state) == 1


def test_sweep_drops_every_expired_key() -> None:
    clock = Clock()
    state = MemoryState(clock=clock, sweep_step=0)
    for i in range(50):
        state.set_now(f"short{i}", b"x", 1)
        state.set_now(f"long{i}", b"x", 100)
    clock.now += 1
    assert state.sweep() == 50
    assert len(state) == 50


def test_key_cap_evicts_the_oldest() -> None:
    state = MemoryState(max_keys=100, sweep_step=0)
    for i in range(250):
        state.set_now(f"k{i}", b"x", 100)
        assert len(state) <= 100
    assert state.get_now("k249") == b"x"
    assert state.get_now("k0") is None


def test_key_cap_prefers_expired_keys() -> None:
    clock = Clock()
    state = MemoryState(clock=clock, max_keys=3, sweep_step=0)
    state.set_now("a", b"x", 100)
    state.set_now("b", b"x", 1)
    state.set_now("c", b"x", 100)
    clock.now += 1
    state.set_now("a", b"y", 100)  # an update takes no room
    state.set_now("d", b"x", 100)  # the oldest key "a" is alive: evicted
    assert [state.get_now(k) for k in "abcd"] == [None, None, b"x", b"x"]


def test_rate_limit_keys_count_towards_the_cap() -> None:
    state = MemoryState(max_keys=10, sweep_step=0)
    windows = (Window("1m", 5, 60),)
    for i in range(30):
        assert state.ratelimit_now(f"user{i}", windows, SLIDING_WINDOW).allowed
    assert len(state) <= 10


# ---------------------------------------------------------------- rate limits


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_rate_limit_table(case: Case) -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    for event in case.events:
        clock.now = T0 + event[0]
        decision = await state.ratelimit("k", case.windows, case.algorithm, event[1])
        assert outcome(decision) == expected(event), f"at +{event[0]} s"


def test_rate_limit_keys_are_independent() -> None:
    state = MemoryState(clock=Clock())
    w = (Window("1m", 1, 60),)
    assert state.ratelimit_now("a", w, "token-bucket").allowed
    assert not state.ratelimit_now("a", w, "token-bucket").allowed
    assert state.ratelimit_now("b", w, "token-bucket").allowed


def test_rate_limit_state_expires() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    w = (Window("1m", 1, 60),)
    state.ratelimit_now("a", w, SLIDING_WINDOW)
    clock.now += 120
    assert state.sweep() == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("seed", range(12))
def test_remaining_and_retry_after_tell_the_truth(algorithm: str, seed: int) -> None:
    """After an admitted request exactly ``remaining`` more fit at the same instant;
    a denied one fits after ``retry_after`` seconds and not a second earlier."""
    rng = random.Random(seed)
    windows = random_windows(rng)
    clock = Clock()
    state = MemoryState(clock=clock)
    checked = 0
    for dt, cost in random_steps(rng, 150):
        clock.now += dt
        d = state.ratelimit_now("k", windows, algorithm, cost)
        if d.allowed:
            for _ in range(d.current.remaining):
                assert state.ratelimit_now("k", windows, algorithm, 1).allowed
            assert not state.ratelimit_now("k", windows, algorithm, 1).allowed
            checked += 1
        elif cost <= min(w.limit for w in windows):
            start = clock.now
            assert d.retry_after >= d.current.reset >= 1
            if d.retry_after > 1:
                clock.now = start + d.retry_after - 1
                assert not state.ratelimit_now("k", windows, algorithm, cost).allowed
            clock.now = start + d.retry_after
            assert state.ratelimit_now("k", windows, algorithm, cost).allowed
            checked += 1
    assert checked > 10


def test_bad_arguments_raise() -> None:
    state = MemoryState()
    w = (Window("1m", 1, 60),)
    with pytest.raises(ValueError):
        state.ratelimit_now("k", w, "fixed-window")
    with pytest.raises(ValueError):
        state.ratelimit_now("k", w, SLIDING_WINDOW, 0)
    with pytest.raises(ValueError):
        state.ratelimit_now("k", (), SLIDING_WINDOW)
