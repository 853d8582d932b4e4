"""The response cache's pure parts and its state I/O: what changes the key and what
does not, the ``cache-control`` directives, ``max_bytes`` and TTL expiry (a state
backend that is down: ``test_ai_cache_socket.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from campusgate.ai.cache import ResponseCache, cache_key, directives
from campusgate.config.ai import AiCache, AiConfig
from campusgate.state.memory import MemoryState

BASE: dict[str, Any] = {"model": "gpt-fast", "temperature": 0.7,
                        "messages": [{"role": "user", "content": "hi"}]}


def key(alias: str = "gpt-fast", consumer: str | None = "ada", scope: str = "consumer",
        **change: Any) -> str:
    return cache_key(alias, {**BASE, **change}, consumer, scope)


@pytest.mark.parametrize("change", [
    {"stream": False}, {"stream_options": {"include_usage": True}}, {"user": "u-1"},
    {"metadata": {"trace": "x"}}, {"model": "other-name-in-body"},
])
def test_what_does_not_change_the_key(change: dict[str, Any]) -> None:
    assert key(**change) == key()


@pytest.mark.parametrize("change", [
    {"temperature": 0.8}, {"max_tokens": 5}, {"stop": ["x"]}, {"tools": []},
    {"messages": [{"role": "user", "content": "hi!"}]},
    {"response_format": {"type": "json_object"}},
])
def test_what_changes_the_key(change: dict[str, Any]) -> None:
    assert key(**change) != key()


def test_the_model_name_and_the_scope_change_the_key() -> None:
    assert key(alias="gpt-big") != key()
    assert key(consumer="bob") != key()
    assert key(consumer="bob", scope="global") == key(consumer="ada", scope="global")
    assert key(consumer=None) != key(consumer=None, scope="global")
    assert key().startswith("aic:") and len(key()) == 4 + 64


def test_key_order_of_fields_does_not_matter() -> None:
    swapped = dict(reversed(list(BASE.items())))
    assert cache_key("gpt-fast", swapped, "ada", "consumer") == key()


@pytest.mark.parametrize("header, expected", [
    (None, (True, True)), (b"", (True, True)), (b"no-cache", (False, True)),
    (b"No-Store", (False, False)), (b"max-age=0, no-cache", (False, True)),
    (b"no-cache, no-store", (False, False)), (b"max-age=60", (True, True)),
])
def test_cache_control_directives(header: bytes | None, expected: tuple[bool, bool]) -> None:
    assert directives(header) == expected


def test_config_defaults_off_and_validates() -> None:
    cache = AiConfig().cache
    assert (cache.enabled, cache.ttl, cache.scope, cache.max_bytes) == \
        (False, 300.0, "consumer", 1048576)
    with pytest.raises(ValueError):
        AiCache.model_validate({"scope": "everyone"})


async def test_store_read_expire_and_max_bytes() -> None:
    state = MemoryState()
    cache = ResponseCache(lambda: state)
    answer = {"object": "chat.completion", "choices": [], "usage": {"total_tokens": 3}}
    config = AiCache(enabled=True, ttl=0.2)
    assert await cache.put(config, "aic:1", answer)
    assert await cache.get("aic:1") == answer
    assert not await cache.put(AiCache(enabled=True, max_bytes=10), "aic:2", answer)
    assert await cache.get("aic:2") is None
    await asyncio.sleep(0.3)
    assert await cache.get("aic:1") is None

