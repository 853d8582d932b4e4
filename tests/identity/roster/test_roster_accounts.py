"""Every active rostered person gets a local account with the ``roster`` claims; the
accounts follow the roster (disabled, enabled, renamed) without ever taking over an
account that is not theirs or resetting a password people changed."""

from __future__ import annotations

import pytest
from roster_bundles import BUNDLE_11, edited, zip_bundle

from campusgate.identity.claims import released_claims
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.roster.bundle import ImportRefused
from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.identity.roster.models import Tenant
from campusgate.identity.roster.store import RosterStore


async def account(ctx: IdentityContext, tenant: Tenant, sourced_id: str) -> User:
    person = await ctx.roster.person(tenant.id, sourced_id)
    assert person is not None and person.account_id is not None
    user = await ctx.directory.get_user(person.account_id)
    assert user is not None
    return user


async def imported(roster: RosterStore, files: dict[str, str] | None = None,
                   tenant: Tenant | None = None) -> Tenant:
    tenant = tenant or await roster.create_tenant("lakeside")
    await roster.apply(tenant.id, read_bundle(zip_bundle(files or dict(BUNDLE_11))))
    return tenant


async def test_accounts_carry_the_roster_claims(identity_ctx: IdentityContext) -> None:
    tenant = await imported(identity_ctx.roster)
    sam = await account(identity_ctx, tenant, "u2")
    assert (sam.username, sam.email, sam.email_verified, sam.name, sam.disabled) == (
        "sam.lee", "sam.lee@lakeside.example", True, "Sam Lee", False)
    assert released_claims(sam, ["roster"]) == {
        "sub": sam.id, "role": "student", "tenant_id": str(tenant.id),
        "district_id": "d1", "district": "Lakeside District", "school_ids": ["s1"],
        "grades": ["09"], "class_ids": ["k1"]}
    admin = await account(identity_ctx, tenant, "u4")
    assert admin.claims["role"] == "administrator"
    assert admin.claims["school_ids"] == ["s1", "s2"]  # the district org is no school
    kim = await account(identity_ctx, tenant, "u3")
    assert kim.email is None and not kim.email_verified


async def test_only_a_bundle_password_lets_people_sign_in(
        identity_ctx: IdentityContext) -> None:
    tenant = await imported(identity_ctx.roster)
    teacher = await account(identity_ctx, tenant, "u1")
    assert await identity_ctx.directory.verify_password(teacher, "teach-pass")
    student = await account(identity_ctx, tenant, "u2")
    assert student.password_hash is None
    # A re-import never resets a password the person has changed since.
    await identity_ctx.directory.set_password(teacher.id, "my-own-password")
    await imported(identity_ctx.roster, tenant=tenant)
    again = await account(identity_ctx, tenant, "u1")
    assert await identity_ctx.directory.verify_password(again, "my-own-password")


async def test_accounts_follow_the_roster(identity_ctx: IdentityContext) -> None:
    roster = identity_ctx.roster
    tenant = await imported(roster)
    kim_id = (await account(identity_ctx, tenant, "u3")).id
    # Disabled in the SIS; renamed; their class changes.
    files = edited(dict(BUNDLE_11), "users.csv", "u3,,,true,s2,student,kim.park",
                   "u3,,,false,s2,student,kim.park")
    files = edited(files, "users.csv", "sam.lee", "samuel.lee")
    files = edited(files, "enrollments.csv", "e2,,,k1,s1,u2", "e2,,,k2,s2,u2")
    result = await roster.apply(tenant.id, read_bundle(zip_bundle(files)))
    assert result.accounts == {"created": 0, "updated": 2, "disabled": 1}
    assert (await account(identity_ctx, tenant, "u3")).disabled
    sam = await account(identity_ctx, tenant, "u2")
    assert sam.username == "samuel.lee" and sam.claims["class_ids"] == ["k2"]
    assert await identity_ctx.directory.find_user("sam.lee") is None

    # Gone from the roster, then back: the same account, enabled again.
    without = edited(dict(BUNDLE_11), "users.csv",
                     "u3,,,true,s2,student,kim.park,,Kim,Park,,S3,,,,,07,\n", "")
    without = edited(without, "enrollments.csv", "e3,,,k2,s2,u3,student,false,2026-08-17,\n",
                     "")
    await roster.apply(tenant.id, read_bundle(zip_bundle(without)))
    gone = await identity_ctx.directory.get_user(kim_id)
    assert gone is not None and gone.disabled
    await imported(roster, tenant=tenant)
    back = await account(identity_ctx, tenant, "u3")
    assert back.id == kim_id and not back.disabled


async def test_other_claims_of_an_account_are_kept(identity_ctx: IdentityContext) -> None:
    tenant = await imported(identity_ctx.roster)
    sam = await account(identity_ctx, tenant, "u2")
    await identity_ctx.directory.update_user(
        sam.id, claims={**sam.claims, "groups": ["robotics"], "locale": "es"})
    await imported(identity_ctx.roster, tenant=tenant)
    claims = (await account(identity_ctx, tenant, "u2")).claims
    assert claims["groups"] == ["robotics"] and claims["locale"] == "es"
    assert claims["role"] == "student"


async def test_an_account_that_is_not_theirs_is_never_taken_over(
        identity_ctx: IdentityContext) -> None:
    local = await identity_ctx.directory.create_user("kim.park", "local-password")
    roster = identity_ctx.roster
    tenant = await roster.create_tenant("lakeside")
    with pytest.raises(ImportRefused) as refused:
        await roster.apply(tenant.id, read_bundle(zip_bundle(dict(BUNDLE_11))))
    assert [str(p) for p in refused.value.problems] == [
        "users.csv:4: username 'kim.park' belongs to another account"]
    assert await roster.person(tenant.id, "u1") is None  # nothing was imported
    assert await identity_ctx.directory.find_user("ms.rivera") is None
    untouched = await identity_ctx.directory.get_user(local.id)
    assert untouched is not None and untouched.claims == {}


async def test_inactive_people_get_no_account(identity_ctx: IdentityContext) -> None:
    files = edited(dict(BUNDLE_11), "users.csv", "u3,,,true", "u3,,,false")
    tenant = await imported(identity_ctx.roster, files)
    kim = await identity_ctx.roster.person(tenant.id, "u3")
    assert kim is not None and kim.account_id is None
    assert await identity_ctx.directory.find_user("kim.park") is None
