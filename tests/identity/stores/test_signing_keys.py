"""Signing keys: created on first start, shared by workers, rotated with overlap."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from identity_harness import Clock
from joserfc import jwt
from joserfc.errors import JoseError

from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.keys import KeyManager, NoSigningKey
from campusgate.identity.models import SigningKey
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
async def sqlite_directory(tmp_path: Path, keyring: Keyring
                           ) -> AsyncIterator[IdentityDirectory]:
    dsn = f"sqlite:///{tmp_path}/identity.db"
    await (await ConfigStore.open(dsn, keyring=keyring)).close()
    opened = await IdentityDirectory.open(dsn, keyring)
    yield opened
    await opened.close()


@pytest.fixture
async def keys(sqlite_directory: IdentityDirectory, clock: Clock) -> KeyManager:
    manager = KeyManager(sqlite_directory, clock)
    await manager.ensure()
    return manager


def sign(keys: KeyManager, alg: str, clock: Clock) -> str:
    key = keys.signing_key(alg)
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"},
                      {"sub": "u1", "iat": int(clock())}, key)


def verifies(token: str, keys: KeyManager) -> bool:
    try:
        jwt.decode(token, keys.key_set())
    except (JoseError, ValueError):
        return False
    return True


def database_bytes(tmp_path: Path) -> bytes:
    """The raw bytes of the SQLite files (with the WAL), as a copy would hold them."""
    return b"".join(p.read_bytes() for p in tmp_path.glob("identity.db*"))


def rfc7638_thumbprint(jwk: dict[str, str]) -> str:
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"),
                           sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_first_start_creates_one_rs256_and_one_es256_key(
        keys: KeyManager, sqlite_directory: IdentityDirectory, clock: Clock) -> None:
    published = keys.jwks()["keys"]
    assert sorted((k["kty"], k["alg"], k["use"]) for k in published) == [
        ("EC", "ES256", "sig"), ("RSA", "RS256", "sig")]
    for jwk in published:
        assert jwk["kid"] == rfc7638_thumbprint(jwk)
        assert not PRIVATE_MEMBERS & set(jwk)
    rsa = next(k for k in published if k["kty"] == "RSA")
    assert len(base64.urlsafe_b64decode(rsa["n"] + "==")) * 8 == 2048
    assert next(k for k in published if k["kty"] == "EC")["crv"] == "P-256"
    # a second start (another worker) reuses them
    again = KeyManager(sqlite_directory, clock)
    await again.ensure()
    assert again.jwks() == keys.jwks()
    assert len(await sqlite_directory.signing_keys()) == 2
    for alg in ("RS256", "ES256"):
        assert verifies(sign(keys, alg, clock), again)


async def test_no_plaintext_private_key_in_the_database(keys: KeyManager,
                                                        tmp_path: Path) -> None:
    private = keys.signing_key("RS256").as_dict(private=True)
    raw = database_bytes(tmp_path)
    for member in ("d", "p", "q"):
        value = private[member]
        assert isinstance(value, str) and value.encode() not in raw


async def test_signing_before_ensure_is_refused(sqlite_directory: IdentityDirectory) -> None:
    with pytest.raises(NoSigningKey):
        KeyManager(sqlite_directory).signing_key("RS256")


async def test_old_tokens_verify_until_the_overlap_ends(keys: KeyManager,
                                                        clock: Clock) -> None:
    before = {alg: sign(keys, alg, clock) for alg in ("RS256", "ES256")}
    old_kids = {k["kid"] for k in keys.jwks()["keys"]}
    new_kids = await keys.rotate(overlap=3600)
    assert len(new_kids) == 2 and not set(new_kids) & old_kids
    assert {keys.signing_key(alg).kid for alg in ("RS256", "ES256")} == set(new_kids)
    assert {k["kid"] for k in keys.jwks()["keys"]} == old_kids | set(new_kids)
    after = sign(keys, "RS256", clock)
    clock.advance(3599)
    await keys.refresh()
    assert all(verifies(token, keys) for token in before.values())
    clock.advance(1)
    await keys.refresh()
    assert not any(verifies(token, keys) for token in before.values())
    assert verifies(after, keys)
    assert {k["kid"] for k in keys.jwks()["keys"]} == set(new_kids)
    # ...and the expired keys are gone from the store too
    assert {k.kid for k in await keys.directory.signing_keys()} == set(new_kids)


async def test_a_key_leaves_when_its_publication_ends_however_fresh_the_load(
        keys: KeyManager, clock: Clock) -> None:
    """The next end of publication is worked out when the keys load; a request after
    it drops the expired keys even when the load is still fresh."""
    old_kids = {k["kid"] for k in keys.jwks()["keys"]}
    await keys.rotate(overlap=60)
    clock.advance(59)
    await keys.refresh(max_age=3600)
    assert old_kids <= {k["kid"] for k in keys.jwks()["keys"]}
    clock.advance(1)
    await keys.refresh(max_age=3600)
    assert not old_kids & {k["kid"] for k in keys.jwks()["keys"]}
    assert not old_kids & {k.kid for k in await keys.directory.signing_keys()}


async def test_other_workers_pick_up_a_rotation_on_refresh(
        keys: KeyManager, sqlite_directory: IdentityDirectory, clock: Clock) -> None:
    worker = KeyManager(sqlite_directory, clock)
    await worker.ensure()
    new_kids = await keys.rotate(overlap=600)
    await worker.refresh(max_age=5)  # loaded just now: no reload yet
    assert worker.signing_key("ES256").kid not in new_kids
    clock.advance(5)
    await worker.refresh(max_age=5)
    assert worker.signing_key("ES256").kid in new_kids
    assert worker.jwks() == keys.jwks()


async def test_two_workers_racing_on_first_start(sqlite_directory: IdentityDirectory,
                                                 clock: Clock) -> None:
    first, second = KeyManager(sqlite_directory, clock), KeyManager(sqlite_directory, clock)
    await first.ensure()
    # second decided before first's keys were visible: it adds its own
    await second._add("RS256")
    await second.ensure()
    await first.refresh(max_age=0)
    assert first.signing_key("RS256").kid == second.signing_key("RS256").kid
    assert verifies(sign(first, "RS256", clock), second)


async def test_requests_that_find_the_keys_stale_together_reload_them_once(
        keys: KeyManager, sqlite_directory: IdentityDirectory, clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load every request checks the keys' age: when they go stale, one reads
    the store and the others wait for it (50 reads and RSA imports at once stalled
    the token endpoint for a second and more)."""
    reads = 0
    read = sqlite_directory.signing_keys

    async def counting() -> list[SigningKey]:
        nonlocal reads
        reads += 1
        return await read()

    monkeypatch.setattr(sqlite_directory, "signing_keys", counting)
    before = keys.signing_key("RS256")
    clock.advance(10)
    await asyncio.gather(*(keys.refresh() for _ in range(50)))
    assert reads == 1
    assert keys.signing_key("RS256") is before  # an unchanged key is not imported again
