"""``incr`` (the budgets' counters) on both state backends: new totals, a TTL set when
the key is made and kept when it is added to, exact under concurrency, and an
unreachable Redis as StateUnavailable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ratelimit_tables import Clock
from redis_servers import SHARED_REDIS, free_port

from campusgate.state.base import StateUnavailable
from campusgate.state.memory import MemoryState
from campusgate.state.redis import RedisState
from campusgate.state.resp import RespClient


async def test_memory_counts_and_expires_with_the_first_ttl() -> None:
    clock = Clock(1000.0)
    state = MemoryState(clock=clock)
    assert await state.incr("c", 0, 10) == 0.0
    assert await state.incr("c", 2.5, 10) == 2.5
    clock.now += 9
    assert await state.incr("c", 1, 100) == 3.5  # adding keeps the first expiry
    clock.now += 1
    assert await state.incr("c", 1, 10) == 1.0  # expired: a new counter
    assert state.get_now("c") is None  # a counter is not a value
    with pytest.raises(ValueError):
        await state.incr("d", 1, 0)


async def test_memory_counters_and_values_are_separate_keys() -> None:
    state = MemoryState()
    state.set_now("v", b"x", 10)
    assert await state.incr("c", 1, 10) == 1.0
    assert state.get_now("v") == b"x"
    assert await state.incr("c", -0.25, 10) == 0.75


@pytest.fixture
async def redis(shared: RespClient, prefix: str) -> AsyncIterator[RedisState]:
    backend = RedisState(SHARED_REDIS, prefix)
    yield backend
    await backend.close()


async def test_redis_counts_and_sets_the_ttl_only_when_new(
        redis: RedisState, shared: RespClient, prefix: str) -> None:
    assert await redis.incr("c", 0, 10) == 0.0
    assert await redis.incr("c", 2.5, 10) == 2.5
    ttl = await shared.execute(b"PTTL", prefix + "c")
    assert isinstance(ttl, int) and 9000 < ttl <= 10000
    assert await redis.incr("c", 0.000125, 1000) == 2.500125
    ttl = await shared.execute(b"PTTL", prefix + "c")
    assert isinstance(ttl, int) and ttl <= 10000  # not renewed
    assert await redis.incr("c", 1, 0.05) == 3.500125
    await redis.incr("short", 1, 0.05)
    await asyncio.sleep(0.1)
    assert await redis.incr("short", 1, 10) == 1.0


async def test_redis_is_exact_under_concurrency(redis: RedisState) -> None:
    await asyncio.gather(*(redis.incr("n", 3, 60) for _ in range(200)))
    assert await redis.incr("n", 0, 60) == 600.0


async def test_redis_agrees_with_memory(redis: RedisState) -> None:
    memory = MemoryState()
    for amount in (0, 1, 0.5, 1234, 0.001, 7):
        assert await redis.incr("a", amount, 60) == await memory.incr("a", amount, 60)


async def test_a_wrong_type_or_unreachable_redis_is_state_unavailable(
        redis: RedisState, shared: RespClient, prefix: str) -> None:
    await shared.execute(b"SET", prefix + "s", b"not a number")
    with pytest.raises(StateUnavailable):
        await redis.incr("s", 1, 60)
    down = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StateUnavailable, match="cannot connect"):
        await down.incr("c", 1, 60)
    await down.close()
