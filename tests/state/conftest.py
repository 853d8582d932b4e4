from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis_servers import SHARED_REDIS, RedisServer

from campusgate.state.base import StateUnavailable
from campusgate.state.resp import RespClient


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, killed afterwards."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"cgtest:{secrets.token_hex(6)}:"


@pytest.fixture
async def shared(prefix: str) -> AsyncIterator[RespClient]:
    """A client of the shared Redis on 127.0.0.1:6379; deletes ``prefix*`` after."""
    client = RespClient.from_url(SHARED_REDIS)
    try:
        await client.execute(b"PING")
    except StateUnavailable as exc:
        pytest.fail(f"Redis is unreachable at {SHARED_REDIS}: {exc}")
    yield client
    keys = await client.execute(b"KEYS", prefix + "*")
    if isinstance(keys, list) and keys:
        await client.execute(b"DEL", *[k for k in keys if isinstance(k, bytes)])
    await client.close()
