"""RedisState against the Redis on 127.0.0.1:6379: keys, the rate-limit tables shared
with MemoryState, agreement with MemoryState, exactness under concurrency."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path

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
from redis_servers import SHARED_REDIS, RedisServer, free_port

from campusgate.state.base import StateUnavailable
from campusgate.state.memory import MemoryState
from campusgate.state.ratelimit import ALGORITHMS, SLIDING_WINDOW, TOKEN_BUCKET, Window
from campusgate.state.redis import RedisState
from campusgate.state.resp import RespClient


@pytest.fixture
async def state(shared: RespClient, prefix: str) -> AsyncIterator[RedisState]:
    backend = RedisState(SHARED_REDIS, prefix)
    yield backend
    await backend.close()


async def test_kind_and_no_synchronous_calls(state: RedisState) -> None:
    assert (state.kind, state.waits) == ("redis", True)
    w = (Window("1m", 1, 60),)
    with pytest.raises(NotImplementedError):
        state.ratelimit_now("k", w, SLIDING_WINDOW)
    with pytest.raises(NotImplementedError):
        state.get_now("k")
    with pytest.raises(NotImplementedError):
        state.set_now("k", b"v", 1)


async def test_keys(state: RedisState, shared: RespClient, prefix: str) -> None:
    assert await state.get("k") is None
    await state.set("k", b"v\x00\xff", 30)
    assert await state.get("k") == b"v\x00\xff"
    assert await shared.execute(b"GET", prefix + "k") == b"v\x00\xff"  # under the prefix
    ttl = await shared.execute(b"PTTL", prefix + "k")
    assert isinstance(ttl, int) and 0 < ttl <= 30_000
    await state.delete("k")
    await state.delete("k")
    assert await state.get("k") is None


async def test_add_is_set_if_absent(state: RedisState, shared: RespClient, prefix: str) -> None:
    assert await state.add("nonce", b"1", 0.5)
    assert not await state.add("nonce", b"2", 5)
    assert await state.get("nonce") == b"1"
    ttl = await shared.execute(b"PTTL", prefix + "nonce")
    assert isinstance(ttl, int) and 0 < ttl <= 500
    await state.delete("nonce")
    assert await state.add("nonce", b"3", 5)


async def test_ttl_must_be_positive(state: RedisState) -> None:
    with pytest.raises(ValueError):
        await state.set("k", b"v", 0)


# ---------------------------------------------------------------- rate limits


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_rate_limit_table(case: Case, shared: RespClient, prefix: str) -> None:
    """The same table as MemoryState's, on an injected clock."""
    clock = Clock()
    state = RedisState(SHARED_REDIS, prefix, clock=clock)
    for event in case.events:
        clock.now = T0 + event[0]
        decision = await state.ratelimit("k", case.windows, case.algorithm, event[1])
        assert outcome(decision) == expected(event), f"at +{event[0]} s"
    await state.close()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("seed", range(6))
async def test_redis_and_memory_agree(
    algorithm: str, seed: int, shared: RespClient, prefix: str
) -> None:
    rng = random.Random(seed)
    windows = random_windows(rng)
    clock = Clock(T0 + rng.randint(0, 10**6) / 1000)
    memory = MemoryState(clock=clock)
    redis = RedisState(SHARED_REDIS, prefix, clock=clock)
    for dt, cost in random_steps(rng, 200):
        clock.now += dt
        got = await redis.ratelimit("k", windows, algorithm, cost)
        assert got == memory.ratelimit_now("k", windows, algorithm, cost), clock.now - T0
    await redis.close()


@pytest.mark.parametrize("algorithm, ttl_max", [(SLIDING_WINDOW, 120_000),
                                                (TOKEN_BUCKET, 60_000)])
async def test_redis_clock_and_expiry(
    algorithm: str, ttl_max: int, state: RedisState, shared: RespClient, prefix: str
) -> None:
    windows = (Window("1m", 3, 60),)
    decisions = [await state.ratelimit("k", windows, algorithm) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[3].retry_after >= 1
    ttl = await shared.execute(b"PTTL", prefix + "rl:k")
    assert isinstance(ttl, int) and 0 < ttl <= ttl_max


async def test_a_denied_first_request_writes_nothing(
    state: RedisState, shared: RespClient, prefix: str
) -> None:
    d = await state.ratelimit("k", (Window("1m", 3, 60),), TOKEN_BUCKET, cost=4)
    assert not d.allowed
    assert await shared.execute(b"EXISTS", prefix + "rl:k") == 0


async def test_windows_given_as_a_list(state: RedisState) -> None:
    windows = [Window("1m", 2, 60), Window("1h", 3, 3600)]
    results = [(await state.ratelimit("k", windows, SLIDING_WINDOW)).allowed
               for _ in range(3)]
    assert results == [True, True, False]


async def test_a_redis_error_is_state_unavailable(
    state: RedisState, shared: RespClient, prefix: str
) -> None:
    await shared.execute(b"SET", prefix + "rl:k", b"a string, not a hash")
    with pytest.raises(StateUnavailable, match="WRONGTYPE"):
        await state.ratelimit("k", (Window("1m", 3, 60),), SLIDING_WINDOW)


async def test_unreachable_redis_is_state_unavailable() -> None:
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    w = (Window("1m", 3, 60),)
    with pytest.raises(StateUnavailable, match="cannot connect"):
        await state.ratelimit("k", w, TOKEN_BUCKET)
    with pytest.raises(StateUnavailable, match="next attempt"):
        await state.get("k")
    await state.close()


async def test_scripts_survive_a_script_flush(private_redis: RedisServer) -> None:
    state = RedisState(private_redis.url)
    w = (Window("1m", 3, 60),)
    assert (await state.ratelimit("k", w, SLIDING_WINDOW)).allowed
    await state.client.execute(b"SCRIPT", b"FLUSH")
    assert (await state.ratelimit("k", w, SLIDING_WINDOW)).windows[0].remaining == 1
    await state.close()


# ---------------------------------------------------------------- exactness

HAMMER = """
import asyncio, sys
from campusgate.state import RedisState, Window

async def main(url, prefix, algorithm, requests, limit):
    state = RedisState(url, prefix)
    windows = (Window("1d", limit, 86400),)
    await state.client.execute(b"INCR", prefix + "ready")
    while int(await state.client.execute(b"GET", prefix + "ready")) < 2:
        await asyncio.sleep(0.001)
    admitted = 0
    for _ in range(requests // 10):
        burst = [state.ratelimit("k", windows, algorithm) for _ in range(10)]
        admitted += sum(d.allowed for d in await asyncio.gather(*burst))
    print(admitted)
    await state.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_two_processes_admit_exactly_the_limit(
    algorithm: str, shared: RespClient, prefix: str, tmp_path: Path
) -> None:
    script = tmp_path / "hammer.py"
    script.write_text(HAMMER)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(script), SHARED_REDIS, prefix, algorithm, "300", "250",
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    async with asyncio.timeout(50):
        outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    counts = [int(out) for out, _ in outputs]
    assert sum(counts) == 250, counts
    assert min(counts) > 0  # both took part


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_many_connections_admit_exactly_the_limit(
    algorithm: str, shared: RespClient, prefix: str
) -> None:
    backends = [RedisState(SHARED_REDIS, prefix) for _ in range(4)]
    windows = (Window("1d", 97, 86400),)
    calls = [b.ratelimit("k", windows, algorithm) for _ in range(50) for b in backends]
    decisions = await asyncio.gather(*calls)
    assert sum(d.allowed for d in decisions) == 97
    for b in backends:
        await b.close()
