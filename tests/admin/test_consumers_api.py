"""``/consumers`` and their credentials: CRUD, generated secrets shown once, redaction
everywhere, sealing through ``PUT /config``, and a key made here working on the proxy."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_harness import HttpUpstream, http, service, start_gateway

from campusgate.config.consumers import consumer_id
from campusgate.config.loader import load_config_text
from campusgate.keyring import Keyring
from campusgate.plugins.registry import default_resources
from campusgate.store import ConfigStore

SEALED_FIELDS = ("key_hash", "password_hash", "secret_encrypted")


async def make_consumer(client: httpx.AsyncClient, name: str = "district-app",
                        **fields: Any) -> dict[str, Any]:
    response = await client.post("/consumers", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def add_credential(client: httpx.AsyncClient, body: dict[str, Any],
                         consumer: str = "district-app") -> dict[str, Any]:
    response = await client.post(f"/consumers/{consumer}/credentials", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


# ---------------------------------------------------------------- consumers


async def test_create_get_and_list(client: httpx.AsyncClient) -> None:
    created = await make_consumer(client, custom_id="sis-42", groups=["partners"],
                                  tags=["k12"])
    assert created == {"id": consumer_id("district-app"), "name": "district-app",
                       "custom_id": "sis-42", "groups": ["partners"], "tags": ["k12"],
                       "plugins": [], "credentials": []}
    got = await client.get("/consumers/district-app")
    assert got.json() == created
    assert got.headers["X-Campusgate-Revision"] == "1"
    listed = (await client.get("/consumers")).json()["data"]
    assert [c["name"] for c in listed] == ["district-app"]
    assert (await client.get("/consumers/nobody")).status_code == 404


async def test_duplicates_are_conflicts(client: httpx.AsyncClient) -> None:
    await make_consumer(client, custom_id="sis-42")
    again = await client.post("/consumers", json={"name": "district-app"})
    assert again.status_code == 409
    other = await client.post("/consumers", json={"name": "other", "custom_id": "sis-42"})
    assert other.status_code == 409
    assert "district-app" in other.json()["error"]["message"]


async def test_invalid_consumer_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/consumers", json={"name": "has space"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "name"


async def test_inline_credentials_are_sealed_and_not_echoed(
        client: httpx.AsyncClient) -> None:
    created = await make_consumer(client, credentials=[
        {"type": "key-auth", "key": "inline-key-0123456789"}])
    assert "inline-key-0123456789" not in str(created)
    (cred,) = created["credentials"]
    assert cred["key_prefix"] == "inline"[:5]  # a quarter of a 21-character key
    stored = (await client.get("/config")).json()["config"]["consumers"][0]
    assert stored["credentials"][0]["key"] is None
    assert stored["credentials"][0]["key_hash"].startswith("hk1$")


async def test_put_creates_replaces_and_keeps_credentials(
        client: httpx.AsyncClient) -> None:
    created = await client.put("/consumers/app", json={"name": "app", "tags": ["a"]})
    assert created.status_code == 201
    await add_credential(client, {}, consumer="app")
    replaced = await client.put("/consumers/app", json={"name": "app", "tags": ["b"]})
    assert replaced.status_code == 200
    assert replaced.json()["tags"] == ["b"]
    assert len(replaced.json()["credentials"]) == 1  # no `credentials` field: kept
    cleared = await client.put("/consumers/app", json={"name": "app", "credentials": []})
    assert cleared.json()["credentials"] == []
    mismatch = await client.put("/consumers/app", json={"name": "other"})
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["details"][0]["path"] == "name"


async def test_patch_merges_top_level_fields(client: httpx.AsyncClient) -> None:
    await make_consumer(client, tags=["k12"])
    await add_credential(client, {"type": "basic-auth", "username": "sync"})
    patched = await client.patch("/consumers/district-app", json={"groups": ["partners"]})
    assert patched.status_code == 200
    body = patched.json()
    assert (body["groups"], body["tags"]) == (["partners"], ["k12"])
    assert body["credentials"][0]["username"] == "sync"  # untouched, still sealed
    replaced = await client.patch("/consumers/district-app", json={"credentials": [
        {"type": "key-auth", "key": "patched-key-0123456789"}]})
    assert [c["type"] for c in replaced.json()["credentials"]] == ["key-auth"]
    bad = await client.patch("/consumers/district-app",
                             json={"credentials": [{"type": "key-auth", "key": "short"}]})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["path"] == "credentials[0].key"
    assert (await client.patch("/consumers/nobody", json={})).status_code == 404


async def test_delete_removes_the_consumer(client: httpx.AsyncClient) -> None:
    await make_consumer(client)
    response = await client.delete("/consumers/district-app")
    assert response.status_code == 204
    assert response.headers["X-Campusgate-Revision"] == "2"
    assert (await client.get("/consumers/district-app")).status_code == 404
    assert (await client.delete("/consumers/district-app")).status_code == 404


async def test_anonymous_consumer_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    await make_consumer(client, name="guest")
    await client.post("/plugins", json={"name": "key-auth", "config": {"anonymous": "guest"}})
    refused = await client.delete("/consumers/guest")
    assert refused.status_code == 409
    assert "global plugin 'key-auth'" in refused.json()["error"]["message"]


# ---------------------------------------------------------------- credentials


async def test_generated_key_is_returned_once(client: httpx.AsyncClient) -> None:
    await make_consumer(client)
    response = await client.post("/consumers/district-app/credentials", json={})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Campusgate-Revision"] == "2"
    body = response.json()
    key = body["key"]
    assert key.startswith("cg_") and len(key) == 46
    cred = body["credential"]
    assert cred["type"] == "key-auth"
    assert cred["key_prefix"] == key[:10]
    assert set(cred) == {"type", "id", "key_prefix", "tags"}
    listed = (await client.get("/consumers/district-app/credentials")).json()["data"]
    assert listed == [cred]
    got = await client.get(f"/consumers/district-app/credentials/{cred['id']}")
    assert got.json() == cred


async def test_a_chosen_secret_is_never_echoed(client: httpx.AsyncClient) -> None:
    await make_consumer(client)
    chosen = await add_credential(client, {"type": "key-auth", "key": "my-own-key-12345",
                                           "id": "ci-key", "tags": ["ci"]})
    assert chosen == {"credential": {"type": "key-auth", "id": "ci-key",
                                     "key_prefix": "my-o", "tags": ["ci"]}}
    basic = await add_credential(client, {"type": "basic-auth", "username": "sync",
                                          "password": "correct horse battery"})
    assert basic == {"credential": {"type": "basic-auth", "id": "basic-sync",
                                    "username": "sync", "tags": []}}


@pytest.mark.parametrize("body, field, view", [
    ({"type": "basic-auth", "username": "sync"}, "password",
     {"type": "basic-auth", "id": "basic-sync", "username": "sync", "tags": []}),
    ({"type": "jwt", "key": "https://issuer.example.edu"}, "secret",
     {"type": "jwt", "id": "jwt-https://issuer.example.edu",
      "key": "https://issuer.example.edu", "algorithm": "HS256", "public_key": None,
      "tags": []}),
    ({"type": "hmac-auth", "key_id": "sis-sync"}, "secret",
     {"type": "hmac-auth", "id": "hmac-sis-sync", "key_id": "sis-sync", "tags": []}),
])
async def test_other_generated_secrets(client: httpx.AsyncClient, body: dict[str, Any],
                                       field: str, view: dict[str, Any]) -> None:
    await make_consumer(client)
    created = await add_credential(client, body)
    assert created["credential"] == view
    assert len(created[field]) >= 32
    assert set(created) == {"credential", field}


async def test_asymmetric_jwt_key_needs_its_public_key(client: httpx.AsyncClient) -> None:
    await make_consumer(client)
    response = await client.post("/consumers/district-app/credentials",
                                 json={"type": "jwt", "key": "iss", "algorithm": "RS256"})
    assert response.status_code == 422
    assert "public_key" in response.json()["error"]["message"]


async def test_credential_errors(client: httpx.AsyncClient) -> None:
    await make_consumer(client)
    await make_consumer(client, name="other")
    short = await client.post("/consumers/district-app/credentials",
                              json={"type": "key-auth", "key": "short"})
    assert short.status_code == 422
    assert short.json()["error"]["details"][0]["path"] == "key"
    unknown = await client.post("/consumers/district-app/credentials", json={"type": "saml"})
    assert unknown.status_code == 422
    missing = await client.post("/consumers/nobody/credentials", json={})
    assert missing.status_code == 404
    await add_credential(client, {"type": "key-auth", "key": "shared-key-0123456789"})
    same_key = await client.post("/consumers/other/credentials",
                                 json={"type": "key-auth", "key": "shared-key-0123456789"})
    assert same_key.status_code == 409
    assert "'district-app'" in same_key.json()["error"]["message"]
    await add_credential(client, {"type": "basic-auth", "username": "sync"})
    same_user = await client.post("/consumers/other/credentials",
                                  json={"type": "basic-auth", "username": "sync"})
    assert same_user.status_code == 409
    await add_credential(client, {"id": "main"})
    same_id = await client.post("/consumers/district-app/credentials", json={"id": "main"})
    assert same_id.status_code == 409


async def test_delete_credential_by_id(client: httpx.AsyncClient) -> None:
    await make_consumer(client)
    first = (await add_credential(client, {}))["credential"]["id"]
    second = (await add_credential(client, {}))["credential"]["id"]
    assert first != second
    deleted = await client.delete(f"/consumers/district-app/credentials/{first}")
    assert deleted.status_code == 204
    listed = (await client.get("/consumers/district-app/credentials")).json()["data"]
    assert [c["id"] for c in listed] == [second]
    again = await client.delete(f"/consumers/district-app/credentials/{first}")
    assert again.status_code == 404
    assert (await client.get(f"/consumers/district-app/credentials/{first}")).status_code == 404


# ---------------------------------------------------------------- no plaintext anywhere


def database_contents(path: Path) -> tuple[list[str], bytes]:
    """Every stored revision document, and the raw bytes of the database files."""
    with sqlite3.connect(path) as conn:
        rows = [row[0] for row in conn.execute("SELECT entities FROM config_revisions")]
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return rows, raw


async def test_plaintext_appears_nowhere(client: httpx.AsyncClient, tmp_path: Path) -> None:
    await make_consumer(client)
    key = (await add_credential(client, {}))["key"]
    password = "a chosen password, 2024"
    await add_credential(client, {"type": "basic-auth", "username": "sync",
                                  "password": password})
    secret = (await add_credential(client, {"type": "hmac-auth", "key_id": "sis"}))["secret"]
    await client.put("/config", json=(await client.get("/config")).json()["config"])
    plaintexts = (key, password, secret)

    reads = ["/config", "/consumers", "/consumers/district-app",
             "/consumers/district-app/credentials", "/config/revisions"]
    history = (await client.get("/config/revisions")).json()["data"]
    reads += [f"/config/revisions/{h['revision']}" for h in history]
    for path in reads:
        text = (await client.get(path)).text
        for plain in plaintexts:
            assert plain not in text, path
    config_text = (await client.get("/config")).text
    assert "hk1$" in config_text and "$argon2id$" in config_text and "enc1$" in config_text
    consumers_text = (await client.get("/consumers")).text
    for sealed in SEALED_FIELDS:
        assert sealed not in consumers_text

    rows, raw = database_contents(tmp_path / "admin.db")
    assert len(rows) == len(history)
    for plain in plaintexts:
        assert all(plain not in row for row in rows)
        assert plain.encode() not in raw


# ---------------------------------------------------------------- PUT /config


async def test_put_config_seals_plaintext_and_keeps_consumers(
        client: httpx.AsyncClient) -> None:
    config = {"consumers": [{"name": "app", "credentials": [
        {"type": "key-auth", "id": "k", "key": "file-key-0123456789"},
        {"type": "basic-auth", "username": "sync", "password": "file password 1"}]}],
        "consumer_groups": [{"name": "partners"}]}
    first = await client.put("/config", json=config)
    assert first.status_code == 200 and first.json()["changed"] is True
    stored = (await client.get("/config")).json()["config"]
    assert stored["consumer_groups"] == [{"name": "partners", "tags": [], "plugins": []}]
    creds = stored["consumers"][0]["credentials"]
    assert creds[0]["key"] is None and creds[1]["password"] is None
    assert "file-key-0123456789" not in str(stored)


async def test_unchanged_plaintext_is_no_change(client: httpx.AsyncClient) -> None:
    config: dict[str, Any] = {"consumers": [{"name": "app", "credentials": [
        {"type": "key-auth", "id": "k", "key": "file-key-0123456789"},
        {"type": "basic-auth", "username": "sync", "password": "file password 1"},
        {"type": "hmac-auth", "key_id": "sis", "secret": "hmac secret 0123456789"}]}]}
    await client.put("/config", json=config)
    dry = await client.put("/config", params={"dry_run": "true"}, json=config)
    assert dry.json() == {"revision": 1, "changed": False, "changes": []}
    again = await client.put("/config", json=config)
    assert again.json()["changed"] is False
    exported = (await client.get("/config")).json()["config"]
    assert (await client.put("/config", json=exported)).json()["changed"] is False

    config["consumers"][0]["credentials"][1]["password"] = "another password"
    moved = await client.put("/config", params={"dry_run": "true"}, json=config)
    assert moved.json()["changed"] is True


async def test_store_without_keyring_refuses_secrets_clearly(tmp_path: Path) -> None:
    from campusgate.admin import StaticRuntime, create_admin_app

    store = await ConfigStore.open(f"sqlite:///{tmp_path}/nokey.db")
    try:
        token = await store.ensure_admin_token()
        app = create_admin_app(store, StaticRuntime())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            await make_consumer(client)
            response = await client.post("/consumers/district-app/credentials", json={})
        assert response.status_code == 500
        assert "secret key" in response.json()["error"]["message"]
    finally:
        await store.close()


# ---------------------------------------------------------------- on the proxy


async def test_a_key_created_here_works_on_the_proxy(
        client: httpx.AsyncClient, store: ConfigStore, keyring: Keyring) -> None:
    upstream = await HttpUpstream().start()
    await client.post("/services", json=service(
        "roster", f"http://{upstream.address}", plugins=[{"name": "key-auth"}]))
    await make_consumer(client)
    created = await add_credential(client, {})
    _, entities = await store.latest()
    resources = default_resources()
    resources.keyring = keyring
    gateway = await start_gateway(entities, resources=resources)
    try:
        key = created["key"].encode()
        ok = await http(gateway.port, path="/roster", headers=[(b"apikey", key)])
        assert ok.status == 200
        assert upstream.requests[-1].header("x-consumer-name") == "district-app"
        assert upstream.requests[-1].header("x-credential-identifier") == (
            created["credential"]["id"])
        wrong = await http(gateway.port, path="/roster", headers=[(b"apikey", b"cg_nope")])
        assert wrong.status == 401

        cred_id = created["credential"]["id"]
        await client.delete(f"/consumers/district-app/credentials/{cred_id}")
        await gateway.reload((await store.latest())[1])
        revoked = await http(gateway.port, path="/roster", headers=[(b"apikey", key)])
        assert revoked.status == 401
    finally:
        await gateway.close()
        await upstream.close()


async def test_openapi_documents_consumers(anonymous: httpx.AsyncClient) -> None:
    spec = (await anonymous.get("/openapi.json")).json()
    create = spec["paths"]["/consumers/{name}/credentials"]["post"]
    assert create["summary"] == "Add a credential; a missing secret is generated"
    assert create["tags"] == ["consumers"]
    assert {t["name"] for t in spec["tags"]} >= {"consumers", "consumer-groups"}
    shown = spec["components"]["schemas"]["KeyAuthView"]["properties"]
    assert "key_hash" not in shown and "key" not in shown


# ---------------------------------------------------------------- docs/consumers.md

DOC = Path(__file__).resolve().parents[2] / "docs" / "consumers.md"
DOC_ENV = {"DISTRICT_APP_KEY": "district-key-0123456789",
           "DISTRICT_SYNC_PASSWORD": "district sync password",
           "REPORTS_JWT_SECRET": "reports-jwt-secret-0123456789abcdef",
           "REPORTS_HMAC_SECRET": "reports-hmac-secret-0123"}


async def test_doc_examples_load_and_apply_sealed(client: httpx.AsyncClient) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(examples) >= 2
    for text in examples:
        entities = load_config_text(text, source="consumers.md", env=DOC_ENV).entities()
        applied = await client.put("/config", json=entities.model_dump(mode="json"))
        assert applied.status_code == 200, applied.text
        stored = (await client.get("/config")).text
        for plain in DOC_ENV.values():
            assert plain not in stored
    first = load_config_text(examples[0], env=DOC_ENV).entities()
    await client.put("/config", json=first.model_dump(mode="json"))
    listed = (await client.get("/consumers/district-app/credentials")).json()["data"]
    assert [c["id"] for c in listed][1] == "basic-district-sync"
