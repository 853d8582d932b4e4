"""``/identity/keys``: listing without key material, rotation with an overlap that
keeps the old keys published until what they signed has expired."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.keys import KeyManager


@pytest.fixture
async def keys(directory: IdentityDirectory) -> KeyManager:
    """The provider's first start: one RS256 and one ES256 key."""
    manager = KeyManager(directory)
    await manager.ensure()
    return manager


async def test_list_shows_dates_and_no_key_material(
        client: httpx.AsyncClient, keys: KeyManager) -> None:
    response = await client.get("/identity/keys")
    assert response.status_code == 200
    listed = response.json()["data"]
    assert sorted(k["alg"] for k in listed) == ["ES256", "RS256"]
    assert {k["state"] for k in listed} == {"active"}
    assert all(k["retired_at"] is None and k["expires_at"] is None for k in listed)
    assert {k["kid"] for k in listed} == {k["kid"] for k in keys.jwks()["keys"]}
    for key in listed:
        assert set(key) == {"kid", "alg", "state", "created_at", "retired_at", "expires_at"}


async def test_rotation_needs_the_provider_configured(
        client: httpx.AsyncClient, keys: KeyManager) -> None:
    response = await client.post("/identity/keys/rotate")
    assert response.status_code == 409
    assert "identity.issuer" in response.json()["error"]["message"]


async def test_rotation_keeps_old_keys_published_for_the_longest_token_lifetime(
        client: httpx.AsyncClient, identity: dict[str, Any], keys: KeyManager) -> None:
    made = await client.post("/identity/clients", json={
        "client_id": "lms", "redirect_uris": ["https://lms.example.edu/cb"],
        "id_token_lifetime": 7200})
    assert made.status_code == 201
    old = {k["kid"] for k in keys.jwks()["keys"]}

    before = time.time()
    response = await client.post("/identity/keys/rotate")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["overlap"] == 7200
    assert sorted(body["retired"]) == sorted(old)
    assert len(body["kids"]) == 2 and not set(body["kids"]) & old

    listed = {k["kid"]: k for k in (await client.get("/identity/keys")).json()["data"]}
    for kid in old:
        assert listed[kid]["state"] == "retired"
        assert listed[kid]["expires_at"] == listed[kid]["retired_at"] + 7200
        assert listed[kid]["retired_at"] >= int(before)
    assert {listed[kid]["state"] for kid in body["kids"]} == {"active"}

    await keys.refresh(max_age=0)  # a worker picks the rotation up
    assert {k["kid"] for k in keys.jwks()["keys"]} == old | set(body["kids"])
    assert keys.signing_key("RS256").kid in body["kids"]


async def test_overlap_zero_unpublishes_the_old_keys_at_once(
        client: httpx.AsyncClient, identity: dict[str, Any], keys: KeyManager) -> None:
    old = {k["kid"] for k in keys.jwks()["keys"]}
    response = await client.post("/identity/keys/rotate", params={"overlap": 0})
    assert response.status_code == 200
    assert response.json()["overlap"] == 0
    await keys.refresh(max_age=0)
    assert {k["kid"] for k in keys.jwks()["keys"]} == set(response.json()["kids"])
    assert not old & {k["kid"] for k in keys.jwks()["keys"]}

    for bad in ("-1", "999999999", "soon"):
        refused = await client.post("/identity/keys/rotate", params={"overlap": bad})
        assert refused.status_code == 422, bad
