"""Which local account a person from a login source signs in as: links, accounts made
just in time, verified-email matches, and refusals -- on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from identity_harness import Clock

from campusgate.config.identity_sources import ClassLinkSource
from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.ephemeral import Ephemeral
from campusgate.identity.keys import KeyManager
from campusgate.identity.sources.errors import SourceError
from campusgate.identity.sources.links import UserLinks, account_for
from campusgate.identity.sources.profile import Profile
from campusgate.keyring import Keyring
from campusgate.state.memory import MemoryState
from campusgate.store import ConfigStore

AUTO = ClassLinkSource(type="classlink", client_id="c", client_secret="s")
LINK_ONLY = AUTO.model_copy(update={"provision": "link-only"})
ADA = Profile(subject="2001:t-1001", username="alovelace", email="ada@school.edu",
              email_verified=True, name="Ada Lovelace",
              roster={"role": "teacher", "tenant_id": "2001"}, suffix="@2001")


@pytest.fixture(params=["sqlite", "postgresql"])
def links_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each supported kind (pg_dsn is resolved outside a loop)."""
    on_postgres = request.param == "postgresql"
    return str(request.getfixturevalue("pg_dsn")) if on_postgres else \
        f"sqlite:///{tmp_path}/links.db"


@pytest.fixture
async def ctx(links_dsn: str, identity_ctx: IdentityContext, keyring: Keyring,
              clock: Clock) -> AsyncIterator[IdentityContext]:
    store = await ConfigStore.open(links_dsn, keyring=keyring)
    await store.close()
    directory = await IdentityDirectory.open(links_dsn, keyring)
    made = IdentityContext(config=identity_ctx.config, keyring=keyring, directory=directory,
                           ephemeral=Ephemeral(MemoryState()),
                           keys=KeyManager(directory, clock),
                           loop=asyncio.get_running_loop(), clock=clock)
    yield made
    await made.close()


async def test_a_first_sign_in_makes_the_account_and_a_second_finds_it(
        ctx: IdentityContext) -> None:
    user = await account_for(ctx, AUTO, ADA)
    assert user.username == "alovelace" and user.password_hash is None
    assert user.claims == {"role": "teacher", "tenant_id": "2001"}
    assert await UserLinks.of(ctx.directory).find("classlink", ADA.subject) == user.id
    promoted = Profile(**{**ADA.__dict__, "roster": {"role": "administrator"},
                          "name": "Ada King"})
    again = await account_for(ctx, AUTO, promoted)
    assert again.id == user.id
    assert again.claims["role"] == "administrator" and again.claims["tenant_id"] == "2001"
    assert again.name == "Ada King"


async def test_claims_the_source_gives_in_full_replace_the_old_ones(
        ctx: IdentityContext) -> None:
    first = Profile(**{**ADA.__dict__, "roster": {
        "role": "teacher", "tenant_id": "2001", "class_ids": ["math-7", "sci-7"],
        "grades": ["07"]}})
    await account_for(ctx, AUTO, first)
    # math-7 is gone from ClassLink's classes; the grades could not be read this time
    later = Profile(**{**ADA.__dict__, "roster": {
        "role": "teacher", "tenant_id": "2001", "class_ids": ["sci-7"]},
        "replaces": frozenset({"role", "tenant_id", "class_ids", "school_ids"})})
    user = await account_for(ctx, AUTO, later)
    assert user.claims["class_ids"] == ["sci-7"]
    assert user.claims["grades"] == ["07"]
    assert "school_ids" not in user.claims


async def test_an_existing_local_name_is_never_taken_over(ctx: IdentityContext) -> None:
    local = await ctx.directory.create_user("alovelace", "a-local-password-123")
    user = await account_for(ctx, AUTO, ADA)
    assert user.id != local.id and user.username == "alovelace@2001"


async def test_a_verified_email_on_both_sides_links_the_existing_account(
        ctx: IdentityContext) -> None:
    local = await ctx.directory.create_user("ada", "pw-0123456789", email="ada@school.edu",
                                            email_verified=True)
    assert (await account_for(ctx, LINK_ONLY, ADA)).id == local.id


@pytest.mark.parametrize(("local_verified", "source_verified"), [(False, True), (True, False)])
async def test_an_unverified_email_links_nothing(ctx: IdentityContext, local_verified: bool,
                                                 source_verified: bool) -> None:
    await ctx.directory.create_user("ada", "pw-0123456789", email="ada@school.edu",
                                    email_verified=local_verified)
    profile = Profile(**{**ADA.__dict__, "email_verified": source_verified})
    with pytest.raises(SourceError) as refused:
        await account_for(ctx, LINK_ONLY, profile)
    assert refused.value.status == 403 and refused.value.step == "account"
    made = await account_for(ctx, AUTO, profile)  # auto makes a new account instead
    assert made.username == "alovelace"


async def test_an_account_linked_to_one_person_is_not_linked_to_another(
        ctx: IdentityContext) -> None:
    await ctx.directory.create_user("ada", "pw-0123456789", email="ada@school.edu",
                                    email_verified=True)
    first = await account_for(ctx, AUTO, ADA)
    other: dict[str, Any] = {**ADA.__dict__, "subject": "2001:t-9999"}
    second = await account_for(ctx, AUTO, Profile(**other))
    assert second.id != first.id


async def test_a_disabled_account_cannot_sign_in(ctx: IdentityContext) -> None:
    user = await account_for(ctx, AUTO, ADA)
    await ctx.directory.update_user(user.id, disabled=True)
    with pytest.raises(SourceError, match="disabled"):
        await account_for(ctx, AUTO, ADA)


async def test_a_deleted_account_is_made_again(ctx: IdentityContext) -> None:
    user = await account_for(ctx, AUTO, ADA)
    await ctx.directory.delete_user(user.id)
    again = await account_for(ctx, AUTO, ADA)
    assert again.id != user.id
