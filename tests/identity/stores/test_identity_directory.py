"""The identity directory on SQLite and PostgreSQL: users, consents, grants, refresh
tokens and the storage of signing keys."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select

from campusgate.identity.directory import IdentityDirectory, UserExists, token_hash
from campusgate.identity.models import SigningKey, User
from campusgate.store.tables import (
    identity_refresh_tokens,
    identity_signing_keys,
    identity_users,
)

NOW = 1_800_000_000


async def raw_rows(directory: IdentityDirectory, table: Any) -> list[str]:
    """The table's rows as a database dump would show them."""
    async with directory._engine.connect() as conn:
        return [repr(tuple(row)) for row in (await conn.execute(select(table))).all()]


async def make_user(directory: IdentityDirectory, username: str = "Ada.Lovelace",
                    **fields: Any) -> User:
    fields.setdefault("email", "Ada@Example.edu")
    return await directory.create_user(username, "correct horse battery", **fields)


# ---------------------------------------------------------------- users


async def test_usernames_are_case_insensitive_and_unique(directory: IdentityDirectory) -> None:
    user = await make_user(directory, name="Ada Lovelace", claims={"locale": "en-GB"})
    assert user.username == "ada.lovelace"
    assert await directory.get_user(user.id) == user
    assert await directory.find_user("ADA.lovelace") == user
    assert await directory.find_user("ada@example.EDU") == user  # by email
    assert await directory.find_user("nobody") is None
    with pytest.raises(UserExists):
        await directory.create_user("ada.LOVELACE")
    got = await directory.get_user(user.id)
    assert got is not None and got.claims == {"locale": "en-GB"} and got.name == "Ada Lovelace"
    assert got.created_at.tzinfo is not None


async def test_an_email_shared_by_two_users_finds_neither(directory: IdentityDirectory) -> None:
    await make_user(directory, "one", email="lab@example.edu")
    await make_user(directory, "two", email="lab@example.edu")
    assert await directory.find_user("lab@example.edu") is None


async def test_passwords_are_argon2id_and_verified(directory: IdentityDirectory) -> None:
    user = await make_user(directory)
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in repr(user)
    assert all("correct horse" not in row for row in await raw_rows(directory, identity_users))
    assert await directory.verify_password(user, "correct horse battery")
    assert not await directory.verify_password(user, "Correct horse battery")
    assert await directory.set_password(user.id, "new passphrase 2025")
    changed = await directory.get_user(user.id)
    assert changed is not None
    assert await directory.verify_password(changed, "new passphrase 2025")
    assert not await directory.verify_password(changed, "correct horse battery")
    assert not await directory.set_password("no-such-id", "x")


async def test_a_user_without_password_takes_as_long_to_refuse(
        directory: IdentityDirectory) -> None:
    with_password = await make_user(directory)
    without = await directory.create_user("sso-only")
    assert not await directory.verify_password(without, "")
    assert not await directory.verify_password(without, "guess")

    async def timed(user: User) -> float:
        start = time.perf_counter()
        await directory.verify_password(user, "a wrong guess")
        return time.perf_counter() - start

    real = min([await timed(with_password) for _ in range(3)])
    dummy = min([await timed(without) for _ in range(3)])
    assert dummy > real / 3  # an argon2 check ran, not an early return


async def test_list_and_search_users(directory: IdentityDirectory) -> None:
    for name in ["carol", "alice", "bob", "al_x"]:
        await directory.create_user(name, email=f"{name}@school.example.edu")
    assert [u.username for u in await directory.list_users()] == [
        "al_x", "alice", "bob", "carol"]
    assert [u.username for u in await directory.list_users(offset=1, limit=2)] == [
        "alice", "bob"]
    assert [u.username for u in await directory.list_users(search="AL")] == ["al_x", "alice"]
    assert [u.username for u in await directory.list_users(search="l_")] == ["al_x"]
    assert [u.username for u in await directory.list_users(search="@school")] == [
        "al_x", "alice", "bob", "carol"]


async def test_update_user(directory: IdentityDirectory) -> None:
    user = await make_user(directory)
    other = await make_user(directory, "grace")
    updated = await directory.update_user(user.id, email="ada@new.example.edu",
                                          email_verified=True, disabled=True,
                                          claims={"picture": "https://x/p.png"})
    assert updated is not None
    assert (updated.email, updated.email_verified, updated.disabled) == (
        "ada@new.example.edu", True, True)
    assert updated.claims == {"picture": "https://x/p.png"}
    assert updated.password_hash == user.password_hash
    assert updated.updated_at >= user.updated_at
    with pytest.raises(UserExists):
        await directory.update_user(other.id, username="ADA.LOVELACE")
    with pytest.raises(TypeError):
        await directory.update_user(user.id, password_hash="$argon2id$forged")
    assert await directory.update_user("no-such-id", name="x") is None


# ---------------------------------------------------------------- consents and grants


async def test_consents_accumulate_and_cover_subsets(directory: IdentityDirectory) -> None:
    assert not await directory.consent_covers("u1", "lms", ["openid"])
    await directory.save_consent("u1", "lms", ["openid", "profile"])
    await directory.save_consent("u1", "lms", ["email"])
    assert await directory.consent_covers("u1", "lms", ["openid", "email", "profile"])
    assert not await directory.consent_covers("u1", "lms", ["openid", "offline_access"])
    assert not await directory.consent_covers("u1", "reports", ["openid"])
    await directory.save_consent("u2", "lms", ["openid"])
    [consent] = await directory.list_consents(user_id="u1")
    assert consent.scopes == frozenset({"openid", "profile", "email"})
    assert [(c.user_id, c.client_id) for c in await directory.list_consents(client_id="lms")
            ] == [("u1", "lms"), ("u2", "lms")]


async def test_concurrent_first_consents_merge(directory: IdentityDirectory) -> None:
    await asyncio.gather(*[directory.save_consent("u1", "lms", [f"s{i}"]) for i in range(5)])
    assert await directory.consent_covers("u1", "lms", [f"s{i}" for i in range(5)])


async def test_revoking_consent_revokes_that_clients_tokens(
        directory: IdentityDirectory) -> None:
    await directory.save_consent("u1", "lms", ["openid"])
    lms = await directory.create_grant("lms", "u1", "openid offline_access", NOW)
    mobile = await directory.create_grant("mobile", "u1", "openid offline_access", NOW)
    await directory.save_refresh_token("rt-lms", lms, NOW, NOW + 3600)
    await directory.save_refresh_token("rt-mobile", mobile, NOW, NOW + 3600)
    assert await directory.revoke_consent("u1", "lms")
    assert not await directory.revoke_consent("u1", "lms")
    assert not await directory.consent_covers("u1", "lms", ["openid"])
    lms_token = await directory.find_refresh_token("rt-lms")
    mobile_token = await directory.find_refresh_token("rt-mobile")
    assert lms_token is not None and lms_token.revoked
    assert mobile_token is not None and not mobile_token.revoked
    revoked_grant = await directory.get_grant(lms.id)
    assert revoked_grant is not None and revoked_grant.revoked_at is not None


async def test_deleting_a_user_revokes_everything_of_theirs(
        directory: IdentityDirectory) -> None:
    user = await make_user(directory)
    await directory.save_consent(user.id, "lms", ["openid"])
    grant = await directory.create_grant("lms", user.id, "openid", NOW)
    await directory.save_refresh_token("rt", grant, NOW, NOW + 3600)
    assert await directory.delete_user(user.id)
    assert not await directory.delete_user(user.id)
    assert await directory.get_user(user.id) is None
    assert await directory.list_consents(user_id=user.id) == []
    token = await directory.find_refresh_token("rt")
    assert token is not None and token.revoked


# ---------------------------------------------------------------- refresh tokens


async def test_refresh_tokens_are_stored_by_hash_and_used_once(
        directory: IdentityDirectory) -> None:
    grant = await directory.create_grant("lms", "u1", "openid offline_access", NOW - 5)
    token = "cgrt_secret-refresh-token-value"
    await directory.save_refresh_token(token, grant, NOW, NOW + 3600)
    rows = await raw_rows(directory, identity_refresh_tokens)
    assert len(rows) == 1 and token not in rows[0] and token_hash(token) in rows[0]
    found = await directory.find_refresh_token(token)
    assert found is not None
    assert (found.grant_id, found.client_id, found.user_id, found.scope) == (
        grant.id, "lms", "u1", "openid offline_access")
    assert (found.issued_at, found.expires_at, found.used_at, found.revoked) == (
        NOW, NOW + 3600, None, False)
    first = await directory.use_refresh_token(token, NOW + 10)
    assert first is not None and first[1] and first[0].used_at == NOW + 10
    again = await directory.use_refresh_token(token, NOW + 20)
    assert again is not None and not again[1] and again[0].used_at == NOW + 10
    assert await directory.use_refresh_token("cgrt_unknown", NOW) is None
    assert await directory.find_refresh_token("cgrt_unknown") is None


async def test_racing_redemptions_have_one_winner(identity_dsn: str,
                                                  directory: IdentityDirectory) -> None:
    grant = await directory.create_grant("lms", "u1", "openid", NOW)
    await directory.save_refresh_token("rt", grant, NOW, NOW + 3600)
    # separate engines, as separate worker processes would have
    workers = [await IdentityDirectory.open(identity_dsn, directory.keyring) for _ in range(4)]
    try:
        results = await asyncio.gather(*[
            worker.use_refresh_token("rt", NOW + i) for i, worker in enumerate(workers * 3)])
    finally:
        for worker in workers:
            await worker.close()
    assert [r is not None and r[1] for r in results].count(True) == 1


async def test_revoking_a_grant_revokes_its_family_only(directory: IdentityDirectory) -> None:
    grant = await directory.create_grant("lms", "u1", "openid", NOW)
    other = await directory.create_grant("lms", "u1", "openid", NOW)
    await directory.save_refresh_token("rt-1", grant, NOW, NOW + 3600)
    await directory.save_refresh_token("rt-2", grant, NOW + 60, NOW + 3660)
    await directory.save_refresh_token("rt-other", other, NOW, NOW + 3600)
    await directory.revoke_grant(grant.id)
    states = {t: (await directory.find_refresh_token(t)) for t in ("rt-1", "rt-2", "rt-other")}
    assert {t: r is not None and r.revoked for t, r in states.items()} == {
        "rt-1": True, "rt-2": True, "rt-other": False}
    used = await directory.use_refresh_token("rt-2", NOW + 100)
    assert used is not None and used[0].revoked


async def test_revoking_one_refresh_token(directory: IdentityDirectory) -> None:
    grant = await directory.create_grant("lms", "u1", "openid", NOW)
    await directory.save_refresh_token("rt-1", grant, NOW, NOW + 3600)
    await directory.save_refresh_token("rt-2", grant, NOW, NOW + 3600)
    await directory.revoke_refresh_token("rt-1")
    one, two = (await directory.find_refresh_token("rt-1"),
                await directory.find_refresh_token("rt-2"))
    assert one is not None and one.revoked and two is not None and not two.revoked
    live = await directory.get_grant(grant.id)
    assert live is not None and live.revoked_at is None


async def test_client_credentials_grants_have_no_user(directory: IdentityDirectory) -> None:
    grant = await directory.create_grant("reports", None, "roster.read", None)
    assert await directory.get_grant(grant.id) == grant
    assert await directory.get_grant("no-such-grant") is None


async def test_expired_refresh_tokens_are_purged(directory: IdentityDirectory) -> None:
    grant = await directory.create_grant("lms", "u1", "openid", NOW)
    await directory.save_refresh_token("old", grant, NOW, NOW + 60)
    await directory.save_refresh_token("new", grant, NOW, NOW + 3600)
    assert await directory.delete_expired_refresh_tokens(NOW + 61) == 1
    assert await directory.find_refresh_token("old") is None
    assert await directory.find_refresh_token("new") is not None


# ---------------------------------------------------------------- signing keys


async def test_signing_keys_are_stored_encrypted(directory: IdentityDirectory) -> None:
    private = {"kty": "oct-like-test", "d": "very-private-member-value", "kid": "k1"}
    await directory.add_signing_key(SigningKey(
        kid="k1", alg="RS256", private_jwk=private, created_at=NOW, retired_at=None,
        expires_at=None))
    [row] = await raw_rows(directory, identity_signing_keys)
    assert "very-private-member-value" not in row and "enc1$" in row
    [key] = await directory.signing_keys()
    assert key.private_jwk == private and key.retired_at is None
    await directory.retire_signing_key("k1", NOW + 10, NOW + 100)
    await directory.retire_signing_key("k1", NOW + 50, NOW + 999)  # already retired
    [key] = await directory.signing_keys()
    assert (key.retired_at, key.expires_at) == (NOW + 10, NOW + 100)
    assert await directory.delete_expired_keys(NOW + 99) == 0
    assert await directory.delete_expired_keys(NOW + 100) == 1
    assert await directory.signing_keys() == []
