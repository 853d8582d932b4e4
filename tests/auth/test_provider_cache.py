"""What a relying party keeps of its provider (auth/provider_cache.py): kept for its
age, read again with backoff after a failure, the last good value served meanwhile,
one read for callers that arrive together."""

from __future__ import annotations

import asyncio

import pytest

from campusgate.auth.provider_cache import ProviderCache


class Down(Exception):
    """The provider did not answer (the failure the cache is told about)."""


class Provider:
    """What the cache reads: answers ``value`` (or raises Down while ``down``)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0
        self.down = False
        self.value = "v1"
        self.gate: asyncio.Event | None = None

    async def load(self) -> str:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Down(f"down at read {self.reads}")
        return self.value

    def cache(self) -> ProviderCache[str]:
        return ProviderCache(self.load, Down, max_age=60, retry_after=5,
                             clock=lambda: self.now)


async def test_a_value_is_kept_for_its_age_then_read_again() -> None:
    provider = Provider()
    cache = provider.cache()
    assert cache.current() is None
    assert await cache.get() == "v1"
    provider.value = "v2"
    provider.now += 59
    assert (await cache.get(), cache.current(), provider.reads) == ("v1", "v1", 1)
    provider.now += 1
    assert cache.current() is None
    assert (await cache.get(), provider.reads) == ("v2", 2)


async def test_a_failure_is_not_tried_again_within_retry_after() -> None:
    provider = Provider()
    provider.down = True
    cache = provider.cache()
    with pytest.raises(Down, match="read 1"):
        await cache.get()
    provider.now += 4.9
    with pytest.raises(Down, match="read 1"):  # the same failure, no new read
        await cache.get()
    assert provider.reads == 1
    provider.down = False
    provider.now += 0.1
    assert (await cache.get(), provider.reads) == ("v1", 2)


async def test_the_last_good_value_is_served_while_reads_fail() -> None:
    provider = Provider()
    cache = provider.cache()
    await cache.get()
    provider.down = True
    provider.now += 60
    assert await cache.get() == "v1"
    assert isinstance(cache.failure, Down) and provider.reads == 2
    provider.now += 1
    assert (await cache.get(), provider.reads) == ("v1", 2)  # backing off
    assert cache.current() is None  # stale: whoever can wait should call get()


async def test_other_errors_are_not_the_cache_s_to_keep() -> None:
    async def broken() -> str:
        raise KeyError("a bug")

    cache = ProviderCache(broken, Down, max_age=60, retry_after=5)
    for _ in range(2):  # not remembered: each call reads, and fails, anew
        with pytest.raises(KeyError):
            await cache.get()
    assert cache.failure is None


async def test_callers_that_arrive_together_share_one_read() -> None:
    provider = Provider()
    provider.gate = asyncio.Event()
    cache = provider.cache()
    waiting = [asyncio.create_task(cache.get()) for _ in range(20)]
    await asyncio.sleep(0)
    provider.gate.set()
    assert await asyncio.gather(*waiting) == ["v1"] * 20
    assert provider.reads == 1
