"""``/identity/users``: accounts in the directory, passwords never shown (a generated
one once), paging and search, consents and their revocation."""

from __future__ import annotations

from typing import Any

import httpx
from identity_admin_harness import ISSUER, identity_admin_app

from campusgate.admin import StaticRuntime
from campusgate.admin.endpoints.identity_directory import close_identity_directory
from campusgate.identity.directory import IdentityDirectory
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore


async def create(client: httpx.AsyncClient, username: str = "ada", **fields: Any
                 ) -> dict[str, Any]:
    response = await client.post("/identity/users", json={"username": username, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.json())


async def test_create_with_a_password_never_shows_it(
        client: httpx.AsyncClient, directory: IdentityDirectory) -> None:
    created = await create(client, "Ada.Lovelace", password="correct horse battery",
                           email="Ada@Example.edu", name="Ada Lovelace",
                           claims={"locale": "en-GB", "school": "north"})
    assert created["password"] is None
    user = created["user"]
    assert user["username"] == "ada.lovelace" and user["email"] == "ada@example.edu"
    assert user["has_password"] is True and user["disabled"] is False
    assert user["claims"] == {"locale": "en-GB", "school": "north"}
    for text in (str(created), (await client.get(f"/identity/users/{user['id']}")).text):
        assert "correct horse" not in text and "argon2" not in text
        assert "password_hash" not in text

    stored = await directory.get_user(user["id"])
    assert stored is not None
    assert await directory.verify_password(stored, "correct horse battery")
    revision = (await client.get("/config")).json()["revision"]
    assert revision == 0  # users are data, not configuration


async def test_generated_password_is_returned_once_and_works(
        client: httpx.AsyncClient, directory: IdentityDirectory) -> None:
    created = await create(client, generate_password=True)
    password = created["password"]
    assert isinstance(password, str) and len(password) >= 16
    stored = await directory.find_user("ada")
    assert stored is not None and await directory.verify_password(stored, password)
    assert password not in (await client.get("/identity/users/ada")).text

    without = await create(client, "bob")
    assert without["password"] is None and without["user"]["has_password"] is False


async def test_invalid_users_are_422_and_duplicates_409(client: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"username": "a b"}, "username"),
        ({"username": "a/b"}, "username"),
        ({"username": "ada", "password": "short"}, "password"),
        ({"username": "ada", "email": "not-an-email"}, "email"),
        ({"username": "ada", "claims": {"sub": "someone-else"}}, "claims"),
        ({"username": "ada", "claims": {"email": "x@y.z"}}, "claims"),
        ({"username": "ada", "password_hash": "$argon2id$..."}, "password_hash"),
    ]
    for body, path in cases:
        response = await client.post("/identity/users", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["details"][0]["path"] == path, body
    both = await client.post("/identity/users", json={
        "username": "ada", "password": "long enough pw", "generate_password": True})
    assert both.status_code == 422
    assert "not both" in both.json()["error"]["message"]

    await create(client, "ada")
    again = await client.post("/identity/users", json={"username": "ADA"})
    assert again.status_code == 409
    assert "ada" in again.json()["error"]["message"]


async def test_get_by_id_username_or_email(client: httpx.AsyncClient) -> None:
    user = (await create(client, "ada", email="ada@example.edu"))["user"]
    for ref in (user["id"], "ada", "ADA", "ada@example.edu"):
        response = await client.get(f"/identity/users/{ref}")
        assert response.status_code == 200, ref
        assert response.json()["id"] == user["id"]
    missing = await client.get("/identity/users/nobody")
    assert missing.status_code == 404
    assert "nobody" in missing.json()["error"]["message"]


async def test_list_pages_and_search(client: httpx.AsyncClient) -> None:
    for name in ("carol", "alice", "bob", "dave", "erin"):
        await create(client, name, email=f"{name}@example.edu")
    first = (await client.get("/identity/users", params={"limit": 2})).json()
    assert [u["username"] for u in first["data"]] == ["alice", "bob"]
    assert first["next_offset"] == 2
    last = (await client.get("/identity/users", params={"offset": 4, "limit": 2})).json()
    assert [u["username"] for u in last["data"]] == ["erin"]
    assert last["next_offset"] is None
    found = (await client.get("/identity/users", params={"search": "AR"})).json()["data"]
    assert [u["username"] for u in found] == ["carol"]
    assert (await client.get("/identity/users", params={"limit": 0})).status_code == 422


async def test_patch_profile_and_disable(client: httpx.AsyncClient) -> None:
    await create(client, "ada", email="ada@example.edu")
    await create(client, "bob")
    patched = await client.patch("/identity/users/ada", json={
        "name": "Ada King", "email_verified": True, "claims": {"locale": "fr"}})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "Ada King" and body["email_verified"] is True
    assert body["email"] == "ada@example.edu"  # not given: unchanged
    assert body["claims"] == {"locale": "fr"}

    disabled = await client.patch("/identity/users/ada", json={"disabled": True})
    assert disabled.json()["disabled"] is True

    cleared = await client.patch("/identity/users/ada", json={"email": None})
    assert cleared.json()["email"] is None
    taken = await client.patch("/identity/users/ada", json={"username": "BOB"})
    assert taken.status_code == 409
    for bad in ({"username": None}, {"password": "new password 1"}, {"disabled": None}):
        response = await client.patch("/identity/users/ada", json=bad)
        assert response.status_code == 422, bad
    assert (await client.patch("/identity/users/zed", json={"name": "z"})).status_code == 404


async def test_set_password(client: httpx.AsyncClient, directory: IdentityDirectory) -> None:
    await create(client, "ada", password="first password")
    chosen = await client.put("/identity/users/ada/password",
                              json={"password": "second password"})
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["password"] is None
    assert chosen.headers["Cache-Control"] == "no-store"
    user = await directory.find_user("ada")
    assert user is not None
    assert await directory.verify_password(user, "second password")
    assert not await directory.verify_password(user, "first password")

    generated = await client.put("/identity/users/ada/password",
                                 json={"generate_password": True})
    password = generated.json()["password"]
    user = await directory.find_user("ada")
    assert user is not None and await directory.verify_password(user, password)

    for bad in ({}, {"password": "short"},
                {"password": "long enough one", "generate_password": True}):
        response = await client.put("/identity/users/ada/password", json=bad)
        assert response.status_code == 422, bad
    missing = await client.put("/identity/users/zed/password", json={"password": "x" * 10})
    assert missing.status_code == 404


async def test_consents_list_and_revoke_with_their_refresh_tokens(
        client: httpx.AsyncClient, directory: IdentityDirectory) -> None:
    user_id = (await create(client, "ada"))["user"]["id"]
    await directory.save_consent(user_id, "lms", ["openid", "profile"])
    await directory.save_consent(user_id, "mobile", ["openid"])
    grant = await directory.create_grant("lms", user_id, "openid profile", 1)
    await directory.save_refresh_token("cgrt_ada-lms", grant, 0, 2_000_000_000)

    listed = (await client.get("/identity/users/ada/consents")).json()["data"]
    assert [(c["client_id"], c["scopes"]) for c in listed] == [
        ("lms", ["openid", "profile"]), ("mobile", ["openid"])]

    revoked = await client.delete("/identity/users/ada/consents/lms")
    assert revoked.status_code == 204
    token = await directory.find_refresh_token("cgrt_ada-lms")
    assert token is not None and token.revoked
    assert not await directory.consent_covers(user_id, "lms", ["openid"])
    remaining = (await client.get(f"/identity/users/{user_id}/consents")).json()["data"]
    assert [c["client_id"] for c in remaining] == ["mobile"]

    again = await client.delete("/identity/users/ada/consents/lms")
    assert again.status_code == 404
    assert "no consent" in again.json()["error"]["message"]
    assert (await client.get("/identity/users/zed/consents")).status_code == 404


async def test_delete_user(client: httpx.AsyncClient, directory: IdentityDirectory) -> None:
    user_id = (await create(client, "ada"))["user"]["id"]
    await directory.save_consent(user_id, "lms", ["openid"])
    assert (await client.delete("/identity/users/ada")).status_code == 204
    assert (await client.get(f"/identity/users/{user_id}")).status_code == 404
    assert await directory.list_consents(user_id=user_id) == []
    assert (await client.delete("/identity/users/ada")).status_code == 404


async def test_users_and_clients_over_postgresql(pg_dsn: str, keyring: Keyring) -> None:
    store = await ConfigStore.open(pg_dsn, keyring=keyring)
    app = identity_admin_app(store, StaticRuntime())
    try:
        token = await store.ensure_admin_token()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            assert (await client.put("/identity", json={"issuer": ISSUER})).status_code == 201
            made = await client.post("/identity/clients", json={
                "client_id": "lms", "redirect_uris": ["https://lms.example.edu/cb"]})
            assert made.status_code == 201
            user_id = (await create(client, "ada", password="correct horse"))["user"]["id"]
            directory: IdentityDirectory = app.state.identity_directory
            await directory.save_consent(user_id, "lms", ["openid"])
            assert (await client.get("/identity/users/ADA")).json()["id"] == user_id
            assert (await client.delete("/identity/users/ada/consents/lms")).status_code == 204
            assert (await client.delete("/identity/clients/lms")).status_code == 204
            assert (await client.delete("/identity/users/ada")).status_code == 204
    finally:
        await close_identity_directory(app)
        await store.close()
