"""Ephemeral records over the in-process and the Redis state backends."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis_servers import SHARED_REDIS

from campusgate.identity.ephemeral import Ephemeral
from campusgate.state.base import StateBackend, StateUnavailable
from campusgate.state.memory import MemoryState
from campusgate.state.redis import RedisState
from campusgate.state.resp import RespClient


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
def ephemeral(backend: StateBackend) -> Ephemeral:
    return Ephemeral(backend)


async def test_put_get_delete_round_trip_json(ephemeral: Ephemeral) -> None:
    record = {"client_id": "lms", "scope": "openid email", "auth_time": 1800000000,
              "nonce": None, "amr": ["pwd"], "name": "Zoë"}
    await ephemeral.put("code", "h1", record, ttl=60)
    assert await ephemeral.get("code", "h1") == record
    assert await ephemeral.get("session", "h1") is None  # kinds do not mix
    await ephemeral.delete("code", "h1")
    assert await ephemeral.get("code", "h1") is None
    await ephemeral.delete("code", "h1")  # deleting again is no error


async def test_records_expire(ephemeral: Ephemeral) -> None:
    await ephemeral.put("code", "short", {"v": 1}, ttl=0.2)
    assert await ephemeral.claim("code-used", "short", ttl=0.2)
    await asyncio.sleep(0.35)
    assert await ephemeral.get("code", "short") is None
    assert await ephemeral.claim("code-used", "short", ttl=5)  # free again


async def test_only_one_claim_wins(ephemeral: Ephemeral) -> None:
    results = await asyncio.gather(*[
        ephemeral.claim("code-used", "c1", ttl=60, value={"grant_id": f"g{i}"})
        for i in range(20)])
    assert results.count(True) == 1
    winner = results.index(True)
    assert await ephemeral.get("code-used", "c1") == {"grant_id": f"g{winner}"}


async def test_take_is_single_use(ephemeral: Ephemeral) -> None:
    await ephemeral.put("login", "t1", {"next": "/oauth2/authorize?x=1"}, ttl=60)
    assert await ephemeral.take("login", "t1") == {"next": "/oauth2/authorize?x=1"}
    assert await ephemeral.take("login", "t1") is None


async def test_prefixes_keep_installations_apart(backend: StateBackend) -> None:
    first, second = Ephemeral(backend), Ephemeral(backend, prefix="other:")
    await first.put("code", "k", {"who": "first"}, ttl=60)
    assert await second.get("code", "k") is None
    assert await backend.get("idp:code:k") is not None


async def test_an_unreachable_backend_raises_state_unavailable() -> None:
    from redis_servers import free_port

    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", "cgtest:")
    try:
        with pytest.raises(StateUnavailable):
            await Ephemeral(state).get("code", "k")
    finally:
        await state.close()
