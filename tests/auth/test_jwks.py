"""Key sets: which keys a document yields, and when the cache fetches it again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import OctKey
from token_helpers import JwksServer, public_jwk, signing_key

from campusgate.auth.jwks import FETCH, JwksCache, JwksError, StaticKeys, parse_jwks

RSA0 = signing_key("RS256", 0)
RSA1 = signing_key("RS256", 1)
EC = signing_key("ES256")


def doc(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


def test_signing_keys_are_indexed_by_kid() -> None:
    keys = parse_jwks(doc(public_jwk(RSA0), public_jwk(EC)))
    assert sorted(keys) == ["ec-ES256-0", "rsa-0"]
    assert keys["rsa-0"][0].key_type == "RSA"


def test_a_key_without_kid_gets_its_thumbprint() -> None:
    data = public_jwk(RSA0)
    del data["kid"]
    (kid,) = parse_jwks(doc(data))
    assert len(kid) == 43


@pytest.mark.parametrize("skipped", [
    {"use": "enc"},
    {"key_ops": ["encrypt"]},
    {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "kid": "hmac"},
    {"kty": "PQC", "kid": "future"},
    {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
    {"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo",
     "kid": "x"},
])
def test_keys_that_cannot_verify_are_skipped(skipped: dict[str, Any]) -> None:
    base = public_jwk(RSA0)
    candidate = {**base, **skipped} if "kty" not in skipped else skipped
    keys = parse_jwks(doc(candidate, public_jwk(EC)))
    assert list(keys) == ["ec-ES256-0"]


def test_private_members_are_dropped() -> None:
    private = dict(RSA0.as_dict(private=True), kid="rsa-0")
    (key,) = parse_jwks(doc(private))["rsa-0"]
    assert not key.is_private


@pytest.mark.parametrize("document, fault", [
    (b"<html>", "not JSON"),
    (b"[]", "keys"),
    (b'{"keys": {}}', "keys"),
    (b'{"keys": []}', "no usable"),
])
def test_unusable_documents(document: bytes, fault: str) -> None:
    with pytest.raises(JwksError, match=fault):
        parse_jwks(document)


def test_static_keys_pick_by_kid_and_algorithm() -> None:
    keys = StaticKeys.of(RSA0, EC)
    assert keys.lookup("rsa-0", "RS256") is RSA0
    assert keys.lookup("rsa-0", "PS256") is RSA0
    assert keys.lookup("rsa-0", "ES256") == "the key 'rsa-0' is not a ES256 key"
    assert keys.lookup("gone", "RS256") == "no key 'gone' in the key set"
    assert keys.lookup(None, "ES256") is EC  # the only EC key
    assert StaticKeys.of(RSA0, RSA1).lookup(None, "RS256") == (
        "the token has no kid and the key set does not have exactly one key for it")
    assert StaticKeys.of(OctKey.generate_key(256)).generation == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server() -> Any:
    srv = await JwksServer(RSA0).start()
    yield srv
    await srv.close()


async def test_first_use_fetches_then_keys_come_from_memory(server: JwksServer) -> None:
    cache = JwksCache(server.url, clock=Clock())
    assert cache.lookup("rsa-0", "RS256") is FETCH
    await cache.refresh()
    assert cache.lookup("rsa-0", "RS256") is cache.keys["rsa-0"][0]  # type: ignore[index]
    cache.lookup("rsa-0", "RS256")
    assert server.fetches == 1


async def test_new_kid_refetches_removed_kid_fails(server: JwksServer) -> None:
    clock = Clock()
    cache = JwksCache(server.url, clock=clock, refetch_interval=30)
    await cache.refresh()
    first = cache.generation
    server.set_keys(RSA1)  # the issuer rotates: rsa-0 withdrawn, rsa-1 published
    clock.now += 31
    assert cache.lookup("rsa-1", "RS256") is FETCH  # unknown kid: fetch again
    await cache.refresh()
    assert server.fetches == 2
    assert cache.generation == first + 1
    assert not isinstance(cache.lookup("rsa-1", "RS256"), str)
    assert cache.lookup("rsa-0", "RS256") == "no key 'rsa-0' in the issuer's key set"


async def test_unknown_kids_do_not_refetch_within_the_interval(server: JwksServer) -> None:
    clock = Clock()
    cache = JwksCache(server.url, clock=clock, refetch_interval=30)
    await cache.refresh()
    clock.now += 10
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert cache.lookup(kid, "RS256") == f"no key {kid!r} in the issuer's key set"
        await cache.refresh()  # a caller that refreshes anyway gets nothing new
    assert server.fetches == 1
    clock.now += 30
    assert cache.lookup("made-up-4", "RS256") is FETCH


async def test_an_unchanged_set_keeps_its_generation(server: JwksServer) -> None:
    clock = Clock()
    cache = JwksCache(server.url, clock=clock, max_age=300)
    await cache.refresh()
    generation = cache.generation
    clock.now += 301
    assert cache.lookup("rsa-0", "RS256") is FETCH  # old: fetched again
    await cache.refresh()
    assert (server.fetches, cache.generation) == (2, generation)


async def test_a_failed_fetch_keeps_the_last_good_set(server: JwksServer) -> None:
    clock = Clock()
    cache = JwksCache(server.url, clock=clock)
    await cache.refresh()
    server.status = 503
    clock.now += 301
    await cache.refresh()
    assert server.fetches == 2
    assert not isinstance(cache.lookup("rsa-0", "RS256"), str)  # still served
    assert cache.problem is not None and "503" in cache.problem


async def test_without_any_set_the_answer_says_why(server: JwksServer) -> None:
    server.status = 500
    clock = Clock()
    cache = JwksCache(server.url, clock=clock)
    await cache.refresh()
    answer = cache.lookup("rsa-0", "RS256")
    assert isinstance(answer, str) and "could not be fetched" in answer


async def test_an_unreachable_url_is_a_problem_not_an_exception() -> None:
    cache = JwksCache("http://127.0.0.1:9/jwks.json", clock=Clock(), timeout=2)
    await cache.refresh()
    assert cache.keys is None
    assert cache.problem is not None and "could not be fetched" in cache.problem
