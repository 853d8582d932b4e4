"""Failed-login counting over the in-process and the Redis state backends: exact under
concurrency, a sliding window, lockouts that end, and a reset on success."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator

import pytest
from identity_harness import Clock, identity_config, sealed
from redis_servers import SHARED_REDIS

from campusgate.identity import throttle
from campusgate.identity.context import IdentityContext
from campusgate.identity.ephemeral import Ephemeral
from campusgate.state.base import StateBackend, StateUnavailable
from campusgate.state.memory import MemoryState
from campusgate.state.redis import RedisState
from campusgate.state.resp import RespClient

ADDRESS = "198.51.100.4"


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[StateBackend]:
    if request.param == "memory":
        yield MemoryState()
        return
    prefix = f"cgtest:{secrets.token_hex(6)}:"
    probe = RespClient.from_url(SHARED_REDIS)
    try:
        await probe.execute(b"PING")
    except StateUnavailable as exc:
        pytest.fail(f"Redis is unreachable at {SHARED_REDIS}: {exc}")
    state = RedisState(SHARED_REDIS, prefix)
    yield state
    await state.close()
    keys = await probe.execute(b"KEYS", prefix + "*")
    if isinstance(keys, list) and keys:
        await probe.execute(b"DEL", *[k for k in keys if isinstance(k, bytes)])
    await probe.close()


@pytest.fixture
def ctx(identity_ctx: IdentityContext, backend: StateBackend) -> IdentityContext:
    config = identity_config(login_throttle={"per_account": 10, "per_ip": 25,
                                             "window": 600, "lockout": 300})
    return dataclasses.replace(identity_ctx, ephemeral=Ephemeral(backend),
                               config=sealed(config, identity_ctx.keyring))


async def test_concurrent_failures_are_all_counted(ctx: IdentityContext) -> None:
    results = await asyncio.gather(*[throttle.record_failure(ctx, "alice", ADDRESS)
                                     for _ in range(9)])
    assert results == [None] * 9
    assert await throttle.check(ctx, "alice", ADDRESS) is None
    assert await throttle.record_failure(ctx, "Alice ", ADDRESS) == throttle.Lockout(300)
    assert await throttle.check(ctx, "ALICE", "203.0.113.9") == throttle.Lockout(300)
    assert await throttle.check(ctx, "bob", ADDRESS) is None  # the address is under 25


async def test_concurrent_failures_from_one_address(ctx: IdentityContext) -> None:
    await asyncio.gather(*[throttle.record_failure(ctx, f"user{i}", ADDRESS)
                           for i in range(25)])
    assert await throttle.check(ctx, "anyone", ADDRESS) == throttle.Lockout(300)
    assert await throttle.check(ctx, "anyone", "203.0.113.9") is None


async def test_a_lockout_ends(ctx: IdentityContext, clock: Clock) -> None:
    for _ in range(10):
        await throttle.record_failure(ctx, "alice", ADDRESS)
    clock.advance(200)
    assert await throttle.check(ctx, "alice", ADDRESS) == throttle.Lockout(100)
    clock.advance(100)
    assert await throttle.check(ctx, "alice", ADDRESS) is None


async def test_the_window_slides(ctx: IdentityContext, clock: Clock) -> None:
    for _ in range(9):
        await throttle.record_failure(ctx, "alice", None)
    clock.advance(600 * 2)  # both fixed windows behind
    assert await throttle.record_failure(ctx, "alice", None) is None
    for _ in range(8):
        await throttle.record_failure(ctx, "alice", None)
    assert await throttle.record_failure(ctx, "alice", None) == throttle.Lockout(300)


async def test_success_resets_the_account_only(ctx: IdentityContext) -> None:
    for _ in range(9):
        await throttle.record_failure(ctx, "alice", ADDRESS)
    await throttle.clear_account(ctx, "ALICE")
    for _ in range(9):
        assert await throttle.record_failure(ctx, "alice", ADDRESS) is None
    # the address has now seen 18 failures: 7 more lock it
    for _ in range(6):
        assert await throttle.record_failure(ctx, f"x{_}", ADDRESS) is None
    assert await throttle.record_failure(ctx, "y", ADDRESS) == throttle.Lockout(300)
