"""``/identity``: turning the provider on, changing and reading its settings, turning
it off; clients are never touched by a settings write."""

from __future__ import annotations

from typing import Any

import httpx
from identity_admin_harness import ISSUER

from campusgate.admin.endpoints.identity_clients import ClientView
from campusgate.admin.endpoints.identity_settings import IdentitySettingsView
from campusgate.admin.runtime import StaticRuntime
from campusgate.config.identity import IdentityClient, IdentityConfig


async def test_unconfigured_provider_is_404_until_put(client: httpx.AsyncClient) -> None:
    missing = await client.get("/identity")
    assert missing.status_code == 404
    assert "PUT /identity" in missing.json()["error"]["message"]
    assert (await client.patch("/identity", json={"code_lifetime": 30})).status_code == 404


async def test_put_turns_it_on_with_defaults_then_replaces(
        client: httpx.AsyncClient, runtime: StaticRuntime) -> None:
    created = await client.put("/identity", json={"issuer": ISSUER + "/"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["issuer"] == ISSUER  # trailing slash dropped
    assert body["discovery_url"] == f"{ISSUER}/.well-known/openid-configuration"
    assert body["code_lifetime"] == 60 and body["clients"] == 0
    assert body["login_throttle"]["per_account"] == 5
    assert created.headers["X-Campusgate-Revision"] == "1"
    assert runtime.reloads == 1

    replaced = await client.put("/identity", json={"issuer": ISSUER, "code_lifetime": 30})
    assert replaced.status_code == 200
    assert replaced.json()["code_lifetime"] == 30
    got = await client.get("/identity")
    assert got.json() == replaced.json()
    assert got.headers["X-Campusgate-Revision"] == "2"


async def test_patch_changes_only_the_given_fields(
        client: httpx.AsyncClient, identity: dict[str, Any]) -> None:
    patched = await client.patch("/identity", json={"session_lifetime": 3600})
    assert patched.status_code == 200, patched.text
    assert patched.json()["session_lifetime"] == 3600
    assert patched.json()["scopes"] == identity["scopes"]


async def test_invalid_settings_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    plain_http = await client.put("/identity", json={"issuer": "http://id.example.edu"})
    assert plain_http.status_code == 422
    assert plain_http.json()["error"]["details"][0]["path"] == "issuer"
    too_long = await client.put("/identity", json={"issuer": ISSUER, "code_lifetime": 3600})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"][0]["path"] == "code_lifetime"
    assert (await client.get("/identity")).status_code == 404  # nothing was saved


async def test_settings_writes_keep_clients_and_cannot_carry_them(
        client: httpx.AsyncClient, identity: dict[str, Any]) -> None:
    made = await client.post("/identity/clients", json={
        "client_id": "lms", "redirect_uris": ["https://lms.example.edu/cb"],
        "scopes": ["openid", "roster.read"]})
    assert made.status_code == 201
    with_clients = await client.put("/identity", json={"issuer": ISSUER, "clients": []})
    assert with_clients.status_code == 422
    assert with_clients.json()["error"]["details"][0]["path"] == "clients"

    # dropping a scope a client still uses is refused by the whole-config validation
    dropped = await client.put("/identity", json={"issuer": ISSUER})
    assert dropped.status_code == 422
    assert "roster.read" in dropped.json()["error"]["message"]

    kept = await client.patch("/identity", json={"code_lifetime": 20})
    assert kept.json()["clients"] == 1
    assert (await client.get("/identity/clients/lms")).status_code == 200


async def test_delete_is_refused_while_clients_exist(
        client: httpx.AsyncClient, identity: dict[str, Any]) -> None:
    await client.post("/identity/clients", json={
        "client_id": "lms", "redirect_uris": ["https://lms.example.edu/cb"]})
    refused = await client.delete("/identity")
    assert refused.status_code == 409
    assert "lms" in refused.json()["error"]["message"]
    assert (await client.delete("/identity/clients/lms")).status_code == 204
    assert (await client.delete("/identity")).status_code == 204
    assert (await client.get("/identity")).status_code == 404
    assert (await client.get("/config")).json()["config"]["identity"] is None


async def test_every_identity_endpoint_needs_the_admin_token(
        anonymous: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/identity"), ("PUT", "/identity"),
                         ("GET", "/identity/clients"), ("POST", "/identity/clients"),
                         ("POST", "/identity/clients/x/secret"), ("GET", "/identity/users"),
                         ("DELETE", "/identity/users/x/consents/y"),
                         ("GET", "/identity/keys"), ("POST", "/identity/keys/rotate")]:
        response = await anonymous.request(method, path, json={})
        assert response.status_code == 401, (method, path)


def test_views_show_every_setting_and_no_secret() -> None:
    """A field added to the config models must be added to the views (or left out on
    purpose here)."""
    settings = set(IdentityConfig.model_fields) - {"clients"}
    assert set(IdentitySettingsView.model_fields) == settings | {"discovery_url", "clients"}
    secret = {"client_secret", "client_secret_hash"}
    assert set(ClientView.model_fields) == (set(IdentityClient.model_fields) - secret) | {
        "public"}
