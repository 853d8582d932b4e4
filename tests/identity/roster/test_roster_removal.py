"""Removing a tenant: its rows go in one transaction, its people's accounts are
disabled and lose their roster claims but stay (with their consents), another
tenant is untouched -- on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from roster_bundles import BUNDLE_11, edited, zip_bundle

from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.roster.bundle import Bundle, ImportRefused
from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.identity.roster.models import Tenant
from campusgate.identity.roster.store import RosterStore

RENAMES = (("ms.rivera", "ms.rivera.r"), ("sam.lee", "sam.lee.r"),
           ("kim.park", "kim.park.r"), ("dr.adams", "dr.adams.r"))


def riverside() -> dict[str, str]:
    """BUNDLE_11 with usernames of its own (usernames are unique installation-wide)."""
    files = dict(BUNDLE_11)
    for old, new in RENAMES:
        files = edited(files, "users.csv", old, new)
    return files


def bundle_of(files: dict[str, str]) -> Bundle:
    return read_bundle(zip_bundle(files))


async def account_id(roster: RosterStore, tenant: Tenant, sourced_id: str) -> str:
    person = await roster.person(tenant.id, sourced_id)
    assert person is not None and person.account_id is not None
    return person.account_id


async def removal_cycle(roster: RosterStore, directory: IdentityDirectory) -> None:
    lakeside = await roster.create_tenant("lakeside")
    await roster.apply(lakeside.id, bundle_of(dict(BUNDLE_11)))
    river = await roster.create_tenant("riverside")
    await roster.apply(river.id, bundle_of(riverside()))
    sam = await account_id(roster, lakeside, "u2")
    kim = await account_id(roster, lakeside, "u3")
    await directory.update_user(sam, claims={
        **(await directory.get_user(sam)).claims, "nickname": "sammy"})  # type: ignore[union-attr]
    await directory.save_consent(sam, "some-app", ["openid", "roster"])
    # Kim leaves the district before it leaves: her account is already disabled.
    without_kim = edited(dict(BUNDLE_11), "users.csv",
                         "u3,,,true,s2,student,kim.park,,Kim,Park,,S3,,,,,07,\n", "")
    without_kim = edited(without_kim, "enrollments.csv", "e3,,,k2,s2,u3,student,false,"
                         "2026-08-17,\n", "")
    await roster.apply(lakeside.id, bundle_of(without_kim))

    removal = await roster.delete_tenant("lakeside")
    assert removal is not None
    assert removal.as_json() == {
        "tenant": "lakeside",
        "deleted": {"enrollments": 2, "users": 3, "classes": 2, "courses": 2,
                    "academicSessions": 2, "orgs": 3},
        "accounts": {"disabled": 3, "claims_removed": 4, "deleted": 0}}
    assert await roster.tenant_named("lakeside") is None
    assert [t.name for t in await roster.tenants()] == ["riverside"]
    assert await roster.person(lakeside.id, "u2") is None

    user = await directory.get_user(sam)
    assert user is not None and user.disabled
    assert user.username == "sam.lee" and user.email == "sam.lee@lakeside.example"
    assert user.claims == {"nickname": "sammy"}  # roster claims gone, others kept
    assert [c.client_id for c in await directory.list_consents(user_id=sam)] == ["some-app"]
    former = await directory.get_user(kim)
    assert former is not None and former.disabled and former.claims == {}

    # The other district is untouched.
    assert (await roster.counts(river.id))["users"] == 4
    other = await directory.get_user(await account_id(roster, river, "u2"))
    assert other is not None and not other.disabled
    assert other.claims["tenant_id"] == str(river.id)

    assert await roster.delete_tenant("lakeside") is None
    # An import still holding the removed tenant's id finds it gone and writes nothing.
    with pytest.raises(ImportRefused, match="the tenant was removed"):
        await roster.apply(lakeside.id, bundle_of(dict(BUNDLE_11)))
    assert await roster.page("users", lakeside.id) == []


async def test_removing_a_tenant_on_sqlite(identity_ctx: IdentityContext) -> None:
    await removal_cycle(identity_ctx.roster, identity_ctx.directory)


async def test_removing_a_tenant_on_postgresql(pg_directory: IdentityDirectory) -> None:
    await removal_cycle(RosterStore(pg_directory.engine, pg_directory.keyring),
                        pg_directory)


async def test_a_new_tenant_with_a_reused_id_does_not_take_old_accounts(
        identity_ctx: IdentityContext) -> None:
    """SQLite may give a new tenant the id of a removed one: the removed tenant's
    accounts carry no claim of that id any more, so the new one's import cannot claim
    them -- their usernames stay taken, and the import says so."""
    roster, directory = identity_ctx.roster, identity_ctx.directory
    first = await roster.create_tenant("first")
    await roster.apply(first.id, bundle_of(dict(BUNDLE_11)))
    sam = await account_id(roster, first, "u2")
    assert await roster.delete_tenant("first") is not None
    second = await roster.create_tenant("second")
    with pytest.raises(ImportRefused) as refused:
        await roster.apply(second.id, bundle_of(dict(BUNDLE_11)))
    assert "users.csv:3: username 'sam.lee' belongs to another account" in [
        str(p) for p in refused.value.problems]
    user = await directory.get_user(sam)
    assert user is not None and user.disabled and "tenant_id" not in user.claims


async def test_removing_a_tenant_can_delete_its_accounts(
        identity_ctx: IdentityContext) -> None:
    """``delete_accounts``: the accounts go with their consents, which frees their
    usernames: the district imported under another name works."""
    roster, directory = identity_ctx.roster, identity_ctx.directory
    wrong = await roster.create_tenant("lakesid")
    await roster.apply(wrong.id, bundle_of(dict(BUNDLE_11)))
    river = await roster.create_tenant("riverside")
    await roster.apply(river.id, bundle_of(riverside()))
    sam = await account_id(roster, wrong, "u2")
    await directory.save_consent(sam, "some-app", ["openid"])

    removal = await roster.delete_tenant("lakesid", delete_accounts=True)
    assert removal is not None
    assert removal.accounts == {"disabled": 0, "claims_removed": 0, "deleted": 4}
    assert await directory.get_user(sam) is None
    assert await directory.list_consents(user_id=sam) == []
    assert (await roster.counts(river.id))["users"] == 4  # the other district stays

    right = await roster.create_tenant("lakeside")
    result = await roster.apply(right.id, bundle_of(dict(BUNDLE_11)))
    assert result.accounts["created"] == 4
    again = await directory.get_user(await account_id(roster, right, "u2"))
    assert again is not None and again.username == "sam.lee" and not again.disabled
