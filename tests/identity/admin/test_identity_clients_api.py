"""``/identity/clients``: registration with generated ids and secrets shown once,
redaction everywhere, updates that keep the secret, rotation, deletion."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from starlette.routing import BaseRoute

from campusgate.admin.runtime import StaticRuntime
from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore

AppClient = Callable[[Sequence[BaseRoute]], httpx.AsyncClient]

pytestmark = pytest.mark.usefixtures("identity")

LMS = {"client_id": "lms", "name": "District LMS",
       "redirect_uris": ["https://lms.example.edu/callback"]}


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/identity/clients", json={**LMS, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.json())


async def stored_client(client: httpx.AsyncClient, client_id: str) -> dict[str, Any]:
    """The client as the store keeps it (sealed), from GET /config."""
    config = (await client.get("/config")).json()["config"]
    return next(c for c in config["identity"]["clients"] if c["client_id"] == client_id)


async def test_confidential_client_gets_a_secret_shown_once_and_stored_sealed(
        client: httpx.AsyncClient, keyring: Keyring, runtime: StaticRuntime) -> None:
    reloads = runtime.reloads
    created = await create(client)
    secret = created["client_secret"]
    assert re.fullmatch(r"cgs_[A-Za-z0-9_-]{43}", secret)
    view = created["client"]
    assert view["client_id"] == "lms" and view["public"] is False
    assert view["token_endpoint_auth_method"] == "client_secret_basic"
    assert view["client_secret_prefix"] == secret[:10]
    assert "client_secret_hash" not in view and "client_secret" not in view
    assert runtime.reloads == reloads + 1

    stored = await stored_client(client, "lms")
    assert stored["client_secret"] is None
    assert stored["client_secret_hash"] == keyring.hash_key(secret)

    for read in (await client.get("/identity/clients/lms"),
                 await client.get("/identity/clients")):
        assert read.status_code == 200
        assert secret not in read.text and "hk1$" not in read.text
    assert (await client.get("/identity/clients/lms")).json() == view


async def test_client_id_is_generated_when_left_out(client: httpx.AsyncClient) -> None:
    response = await client.post("/identity/clients", json={
        "redirect_uris": ["https://app.example.edu/cb"]})
    assert response.status_code == 201
    client_id = response.json()["client"]["client_id"]
    assert re.fullmatch(r"cgc_[A-Za-z0-9_-]{16}", client_id)
    assert (await client.get(f"/identity/clients/{client_id}")).status_code == 200


async def test_a_secret_the_operator_chose_is_sealed_not_echoed(
        client: httpx.AsyncClient, keyring: Keyring) -> None:
    chosen = "operator-chosen-secret-0123456789"
    created = await create(client, client_secret=chosen)
    assert created["client_secret"] is None
    assert chosen not in str(created)
    assert (await stored_client(client, "lms"))["client_secret_hash"] == keyring.hash_key(chosen)


async def test_public_client_has_no_secret(client: httpx.AsyncClient) -> None:
    created = await create(client, client_id="mobile", token_endpoint_auth_method="none",
                           redirect_uris=["http://127.0.0.1/callback", "edu.example.app:/cb"])
    assert created["client_secret"] is None
    assert created["client"]["public"] is True
    assert created["client"]["client_secret_prefix"] is None


async def test_creation_needs_the_provider_configured(client: httpx.AsyncClient) -> None:
    assert (await client.delete("/identity")).status_code == 204
    response = await client.post("/identity/clients", json=LMS)
    assert response.status_code == 409
    assert "identity.issuer" in response.json()["error"]["message"]


async def test_conflicts_and_invalid_clients(client: httpx.AsyncClient) -> None:
    await create(client)
    again = await client.post("/identity/clients", json=LMS)
    assert again.status_code == 409 and "lms" in again.json()["error"]["message"]

    insecure = await client.post("/identity/clients", json={
        **LMS, "client_id": "other", "redirect_uris": ["http://lms.example.edu/cb"]})
    assert insecure.status_code == 422
    assert insecure.json()["error"]["details"][0]["path"] == "redirect_uris"

    unknown_scope = await client.post("/identity/clients", json={
        **LMS, "client_id": "other", "scopes": ["openid", "grades.write"]})
    assert unknown_scope.status_code == 422
    assert "grades.write" in unknown_scope.json()["error"]["message"]

    public_cc = await client.post("/identity/clients", json={
        "client_id": "svc", "token_endpoint_auth_method": "none",
        "grant_types": ["client_credentials"]})
    assert public_cc.status_code == 422
    assert [c["client_id"] for c in (await client.get("/identity/clients")).json()["data"]] == [
        "lms"]


async def test_patch_and_put_keep_the_secret(client: httpx.AsyncClient) -> None:
    await create(client)
    sealed = (await stored_client(client, "lms"))["client_secret_hash"]

    patched = await client.patch("/identity/clients/lms", json={
        "require_consent": False, "scopes": ["openid", "roster.read"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["require_consent"] is False
    assert patched.json()["name"] == "District LMS"  # untouched
    assert "Cache-Control" not in patched.headers

    put = await client.put("/identity/clients/lms", json={
        "redirect_uris": ["https://lms.example.edu/new"]})
    assert put.status_code == 200, put.text
    assert put.json()["name"] is None  # PUT replaces: left-out fields take defaults
    assert put.json()["require_consent"] is True
    assert put.json()["redirect_uris"] == ["https://lms.example.edu/new"]
    assert (await stored_client(client, "lms"))["client_secret_hash"] == sealed


async def test_updates_refuse_secrets_renames_and_invalid_values(
        client: httpx.AsyncClient) -> None:
    await create(client)
    for fields in ({"client_secret": "x" * 20}, {"client_secret_hash": None}):
        response = await client.patch("/identity/clients/lms", json=fields)
        assert response.status_code == 422
        assert "/identity/clients/lms/secret" in response.json()["error"]["message"]
    renamed = await client.put("/identity/clients/lms", json={**LMS, "client_id": "lms2"})
    assert renamed.status_code == 422
    assert renamed.json()["error"]["details"][0]["path"] == "client_id"
    bad = await client.patch("/identity/clients/lms", json={"access_token_lifetime": 5})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["path"] == "access_token_lifetime"
    missing = await client.patch("/identity/clients/nobody", json={"name": "x"})
    assert missing.status_code == 404


async def test_turning_public_drops_the_secret_and_back_generates_one(
        client: httpx.AsyncClient, keyring: Keyring) -> None:
    await create(client)
    public = await client.patch("/identity/clients/lms",
                                json={"token_endpoint_auth_method": "none"})
    assert public.status_code == 200, public.text
    assert public.json()["public"] is True
    assert (await stored_client(client, "lms"))["client_secret_hash"] is None

    confidential = await client.patch("/identity/clients/lms",
                                      json={"token_endpoint_auth_method": "client_secret_post"})
    assert confidential.status_code == 200, confidential.text
    assert confidential.headers["Cache-Control"] == "no-store"
    secret = confidential.json()["client_secret"]
    assert confidential.json()["client"]["public"] is False
    assert (await stored_client(client, "lms"))["client_secret_hash"] == keyring.hash_key(secret)


async def test_rotation_replaces_the_secret_at_once(
        client: httpx.AsyncClient, keyring: Keyring) -> None:
    old = (await create(client))["client_secret"]
    rotated = await client.post("/identity/clients/lms/secret")
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["Cache-Control"] == "no-store"
    body = rotated.json()
    new = body["client_secret"]
    assert new != old and new.startswith("cgs_")
    assert body["previous_secret"] == "revoked"
    assert "no longer works" in body["message"]
    assert body["client"]["client_secret_prefix"] == new[:10]
    stored = (await stored_client(client, "lms"))["client_secret_hash"]
    assert stored == keyring.hash_key(new) != keyring.hash_key(old)

    public = await create(client, client_id="spa", token_endpoint_auth_method="none")
    assert public["client_secret"] is None
    refused = await client.post("/identity/clients/spa/secret")
    assert refused.status_code == 409
    assert "none" in refused.json()["error"]["message"]
    assert (await client.post("/identity/clients/nobody/secret")).status_code == 404


async def test_delete_forgets_the_client_and_its_consents(
        client: httpx.AsyncClient, directory: IdentityDirectory) -> None:
    await create(client)
    await create(client, client_id="other")
    user = await directory.create_user("ada")
    await directory.save_consent(user.id, "lms", ["openid"])
    await directory.save_consent(user.id, "other", ["openid"])
    grant = await directory.create_grant("lms", user.id, "openid", None)
    await directory.save_refresh_token("cgrt_lms-token", grant, 0, 2_000_000_000)

    response = await client.delete("/identity/clients/lms")
    assert response.status_code == 204
    assert (await client.get("/identity/clients/lms")).status_code == 404
    assert (await client.delete("/identity/clients/lms")).status_code == 404
    assert [c.client_id for c in await directory.list_consents(user_id=user.id)] == ["other"]
    token = await directory.find_refresh_token("cgrt_lms-token")
    assert token is not None and token.revoked


async def test_token_endpoint_accepts_only_the_current_secret(
        client: httpx.AsyncClient, store: ConfigStore, identity_ctx: IdentityContext,
        identity_client: AppClient) -> None:
    """A client made and rotated here, as the provider's token endpoint sees it."""
    from campusgate.identity.oauth import token_endpoint

    old = (await create(client, client_id="svc", grant_types=["client_credentials"],
                        scopes=["roster.read"], redirect_uris=[]))["client_secret"]
    new = (await client.post("/identity/clients/svc/secret")).json()["client_secret"]
    _, entities = await store.latest()
    assert entities.identity is not None
    identity_ctx.update(entities.identity)
    http = identity_client(token_endpoint.routes(""))

    async def token(secret: str) -> httpx.Response:
        return await http.post("/oauth2/token", auth=("svc", secret),
                               data={"grant_type": "client_credentials"})

    refused = await token(old)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    accepted = await token(new)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["scope"] == "roster.read"
