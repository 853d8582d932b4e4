"""basic-auth: RFC 7617 parsing, argon2id off the loop, the verification cache, and
unknown users treated like wrong passwords."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, http, service, start_gateway
from pydantic import ValidationError

from campusgate.config.model import Consumer, PluginSpec
from campusgate.plugins.authentication import Identity
from campusgate.plugins.base import WAIT, PluginEnv, PluginResources
from campusgate.plugins.basic_auth import (
    INVALID,
    BasicAuthPlugin,
    VerificationCache,
    parse_basic,
)
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.consumers import ConsumerIndex
from campusgate.proxy.context import LocalResponse, RequestContext

PASSWORD = "correct horse battery"


def consumers(password: str = PASSWORD) -> list[dict[str, Any]]:
    return [{"name": "bob", "groups": ["teachers"], "credentials": [
        {"type": "basic-auth", "username": "bob", "password": password}]}]


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


class Spy:
    """Counts argon2 checks (and which hashes they used)."""

    def __init__(self, resources: PluginResources) -> None:
        self.real = resources.keyring.verify_password
        self.hashes: list[str] = []
        resources.keyring.verify_password = self  # type: ignore[method-assign]

    def __call__(self, stored: str, password: str) -> bool:
        self.hashes.append(stored)
        return self.real(stored, password)


def plugin(resources: PluginResources | None = None, password: str = PASSWORD,
           **config: Any) -> BasicAuthPlugin:
    resources = resources or default_resources()
    index = ConsumerIndex.build([Consumer.model_validate(c) for c in consumers(password)],
                                resources.keyring)
    made = build_plugin("basic-auth", config, PluginEnv(resources, "route:r", index))
    assert isinstance(made, BasicAuthPlugin)
    return made


def ctx(authorization: bytes | None) -> RequestContext:
    headers = [] if authorization is None else [(b"authorization", authorization)]
    return RequestContext("GET", "/x", "", headers, "127.0.0.1", "http", "h", "rid")


@pytest.mark.parametrize("token, expected", [
    (base64.b64encode(b"bob:pw"), ("bob", "pw")),
    (base64.b64encode(b"bob:a:b:c"), ("bob", "a:b:c")),  # the first colon splits
    (base64.b64encode(b"bob:"), ("bob", "")),
    (base64.b64encode("zoë:pässwörd".encode()), ("zoë", "pässwörd")),
    (base64.b64encode(b"no-colon"), None),
    (b"not base64!", None),
    (base64.b64encode(b"bob:\xff\xfe"), None),  # not UTF-8
])
def test_parse_basic(token: bytes, expected: tuple[str, str] | None) -> None:
    assert parse_basic(token) == expected


async def test_first_check_waits_then_the_cache_answers_without_waiting() -> None:
    resources = default_resources()
    spy = Spy(resources)
    p = plugin(resources)
    c = ctx(basic("bob", PASSWORD))
    assert p.authenticate_now(c) is WAIT
    assert not c.upstream_headers_remove  # WAIT changes nothing
    answer = await p.authenticate(c)
    assert isinstance(answer, Identity)
    assert answer.consumer is not None and answer.consumer.name == "bob"
    assert answer.credential == "basic-bob"
    assert b"authorization" in c.upstream_headers_remove
    again = ctx(basic("bob", PASSWORD))
    assert isinstance(p.authenticate_now(again), Identity)
    assert b"authorization" in again.upstream_headers_remove
    assert len(spy.hashes) == 1


async def test_scheme_is_case_insensitive() -> None:
    answer = await plugin().authenticate(ctx(b"bAsIc " + basic("bob", PASSWORD)[6:]))
    assert isinstance(answer, Identity)


async def test_wrong_password_is_a_401_and_is_remembered_as_a_failure() -> None:
    resources = default_resources()
    spy = Spy(resources)
    p = plugin(resources)
    answer = await p.authenticate(ctx(basic("bob", "wrong password")))
    assert isinstance(answer, LocalResponse)
    assert answer.status == 401
    assert json.loads(answer.body)["error"]["message"] == INVALID
    assert (b"www-authenticate", b'Basic realm="campusgate", charset="UTF-8"') in answer.headers
    # the same wrong pair again: answered at once, never as a success
    repeat = p.authenticate_now(ctx(basic("bob", "wrong password")))
    assert isinstance(repeat, LocalResponse) and repeat.status == 401
    assert len(spy.hashes) == 1
    # and the right password still works
    assert isinstance(await p.authenticate(ctx(basic("bob", PASSWORD))), Identity)


async def test_unknown_user_is_checked_against_a_dummy_hash_with_the_same_answer() -> None:
    resources = default_resources()
    spy = Spy(resources)
    p = plugin(resources)
    unknown = await p.authenticate(ctx(basic("mallory", PASSWORD)))
    wrong = await p.authenticate(ctx(basic("bob", "wrong password")))
    assert isinstance(unknown, LocalResponse) and isinstance(wrong, LocalResponse)
    assert (unknown.status, unknown.headers) == (wrong.status, wrong.headers)
    assert json.loads(unknown.body)["error"]["message"] == INVALID
    assert len(spy.hashes) == 2
    assert spy.hashes[0].startswith("$argon2id$")  # a real argon2 check for mallory too
    assert spy.hashes[0] != spy.hashes[1]
    # one unknown name's cached failure says nothing about another unknown name
    assert p.authenticate_now(ctx(basic("eve", PASSWORD))) is WAIT


async def test_cache_is_keyed_by_the_stored_hash_so_a_changed_password_is_rechecked() -> None:
    resources = default_resources()
    old = plugin(resources)
    assert isinstance(await old.authenticate(ctx(basic("bob", PASSWORD))), Identity)
    # a new config revision: same worker resources (same cache), new password
    new = plugin(resources, password="a brand new password")
    assert new.authenticate_now(ctx(basic("bob", PASSWORD))) is WAIT
    refused = await new.authenticate(ctx(basic("bob", PASSWORD)))
    assert isinstance(refused, LocalResponse) and refused.status == 401


async def test_concurrent_requests_with_new_credentials_share_one_check() -> None:
    resources = default_resources()
    spy = Spy(resources)
    p = plugin(resources)
    answers = await asyncio.gather(*(p.authenticate(ctx(basic("bob", PASSWORD)))
                                     for _ in range(5)))
    assert all(isinstance(a, Identity) for a in answers)
    assert len(spy.hashes) == 1


async def test_cache_ttl_zero_checks_every_request() -> None:
    resources = default_resources()
    spy = Spy(resources)
    p = plugin(resources, cache_ttl=0)
    for _ in range(2):
        assert p.authenticate_now(ctx(basic("bob", PASSWORD))) is WAIT
        assert isinstance(await p.authenticate(ctx(basic("bob", PASSWORD))), Identity)
    assert len(spy.hashes) == 2


@pytest.mark.parametrize("value", [b"Basic !!!", b"Basic " + base64.b64encode(b"bob")])
def test_malformed_credentials_are_a_401_at_once(value: bytes) -> None:
    answer = plugin().authenticate_now(ctx(value))
    assert isinstance(answer, LocalResponse) and answer.status == 401


@pytest.mark.parametrize("value", [None, b"Bearer abc.def", b"Basically"])
def test_other_schemes_are_no_credential(value: bytes | None) -> None:
    assert plugin().authenticate_now(ctx(value)) is None


def test_verification_cache_expires_and_is_bounded() -> None:
    now = [0.0]
    cache = VerificationCache(2, clock=lambda: now[0])
    a, b, c = (cache.key("$argon2id$h", pw) for pw in ("hunter2-a", "hunter2-b", "hunter2-c"))
    assert a != b and b"hunter2" not in a  # the password is not in the key
    cache.remember(a, True, 10)
    cache.remember(b, False, 5)
    assert (cache.lookup(a), cache.lookup(b), cache.lookup(c)) == (True, False, None)
    now[0] = 6
    assert (cache.lookup(a), cache.lookup(b)) == (True, None)
    cache.remember(b, True, 10)
    assert cache.lookup(a) is True  # a is now the most recently used
    cache.remember(c, True, 10)
    assert (cache.lookup(a), cache.lookup(b), cache.lookup(c)) == (True, None, True)


@pytest.mark.parametrize("config, fault", [
    ({"cache_ttl": -1}, "cache_ttl"),
    ({"cache_size": 0}, "cache_size"),
    ({"key_names": ["x"]}, "key_names"),
])
def test_bad_config_fails_when_the_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="basic-auth", config=config)


async def test_gateway_basic_auth_end_to_end() -> None:
    up = await HttpUpstream().start()
    entities = {"services": [service("s", f"http://{up.address}",
                                     plugins=[{"name": "basic-auth"}])],
                "consumers": consumers()}
    gw = await start_gateway(entities)
    try:
        for _ in range(2):  # the second one is answered from the cache
            ok = await http(gw.port, "GET", "/s/x", [(b"authorization", basic("bob", PASSWORD))])
            assert ok.status == 200
            assert up.requests[-1].header("authorization") is None
            assert up.requests[-1].header("x-consumer-name") == "bob"
            assert up.requests[-1].header("x-consumer-groups") == "teachers"
        bad = await http(gw.port, "GET", "/s/x", [(b"authorization", basic("bob", "nope"))])
        assert bad.status == 401
        assert bad.header("www-authenticate") == 'Basic realm="campusgate", charset="UTF-8"'
        assert len(up.requests) == 2
    finally:
        await gw.close()
        await up.close()
