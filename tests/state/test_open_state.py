"""open_state: the configured ``state:`` URL picks the backend."""

from __future__ import annotations

import ssl

import pytest

from campusgate.state import MemoryState, RedisState, open_state


def test_memory() -> None:
    assert isinstance(open_state("memory"), MemoryState)


async def test_redis() -> None:
    state = open_state("redis://:pw@127.0.0.1:6379/2", prefix="x:")
    assert isinstance(state, RedisState)
    assert (state.client.host, state.client.port, state.client.db) == ("127.0.0.1", 6379, 2)
    assert state.client._ssl is None
    await state.close()


async def test_rediss_is_tls() -> None:
    state = open_state("rediss://cache.internal:6380/0")
    assert isinstance(state, RedisState)
    assert isinstance(state.client._ssl, ssl.SSLContext)
    await state.close()


@pytest.mark.parametrize("url", ["", "Memory", "postgresql://db/x", "redis:/nohost"])
def test_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        open_state(url)
