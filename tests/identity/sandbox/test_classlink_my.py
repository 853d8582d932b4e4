"""ClassLink's ``/v2/my/...`` endpoints (identity/classlink/my.py, caller.py,
placement.py): who the bearer is, from the roster or from the account alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandbox_kit import add_district

from campusgate.identity.classlink.shapes import user_number
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User

CLASSLINK_FIELDS = {"UserId", "TenantId", "StateId", "StateName", "BuildingId",
                    "AuthenticationType", "DisplayName", "FirstName", "LastName", "Email",
                    "LoginId", "ImagePath", "LanguageId", "Language", "DefaultTimeFormat",
                    "Profile", "ProfileId", "Tenant", "Building", "Role", "Role_Level",
                    "LastAccessTime", "OrgId", "SourcedId"}


async def test_a_rostered_person_gets_classlinks_info(
        http: httpx.AsyncClient, bearer: Any, ben: User, sandbox_ctx: IdentityContext
) -> None:
    district = await add_district(sandbox_ctx.directory.engine, ada_account=None,
                                  ben_account=ben.id)
    answer = await http.get("/v2/my/info", headers=await bearer(ben))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    info = answer.json()
    assert set(info) == CLASSLINK_FIELDS
    assert info["UserId"] == district.ben_row_id
    assert info["TenantId"] == district.tenant_id
    assert info["BuildingId"] == district.school_row_id
    assert (info["Tenant"], info["Building"]) == ("Lincoln Unified School District",
                                                  "Lincoln High")
    assert (info["Role"], info["Role_Level"]) == ("Student", 4)
    assert (info["SourcedId"], info["LoginId"], info["OrgId"]) == ("st-ben", "ben", "s1")
    assert (info["FirstName"], info["LastName"], info["DisplayName"]) == \
        ("Ben", "Ng", "Ben Ng")
    assert info["Language"] == "es"
    assert info["LastAccessTime"].endswith(".000Z")


async def test_an_account_without_a_roster_record_gets_sensible_info(
        http: httpx.AsyncClient, bearer: Any, sandbox_ctx: IdentityContext) -> None:
    user = await sandbox_ctx.directory.create_user(
        "pat", email="pat@example.edu", claims={"role": "teacher", "tenant_id": "42",
                                                "district": "Elsewhere ISD"})
    info = (await http.get("/v2/my/info", headers=await bearer(user))).json()
    assert set(info) == CLASSLINK_FIELDS
    assert info["UserId"] == user_number(user.id)
    assert (info["TenantId"], info["Tenant"]) == (42, "Elsewhere ISD")
    assert (info["Role"], info["LoginId"], info["Email"]) == \
        ("Teacher", "pat", "pat@example.edu")
    assert (info["BuildingId"], info["Building"], info["SourcedId"]) == (0, "", "")


async def test_the_district(http: httpx.AsyncClient, bearer: Any, ben: User,
                            sandbox_ctx: IdentityContext) -> None:
    district = await add_district(sandbox_ctx.directory.engine, ada_account=None,
                                  ben_account=ben.id)
    answer = await http.get("/v2/my/district", headers=await bearer(ben))
    assert answer.json() == {"TenantId": district.tenant_id,
                             "Name": "Lincoln Unified School District", "SourcedId": "d1",
                             "Identifier": "LUSD", "StateId": 0, "StateName": ""}


async def test_profileinfo_is_the_oidc_claims_of_the_tokens_scopes(
        http: httpx.AsyncClient, bearer: Any, ben: User) -> None:
    claims = (await http.get("/v2/my/profileinfo", headers=await bearer(ben))).json()
    assert claims["sub"] == ben.id
    assert claims["name"] == "Ben Ng"
    assert "email" not in claims  # the token has profile, not email
    claims = (await http.get("/v2/my/profileinfo",
                             headers=await bearer(ben, "profile email"))).json()
    assert claims["email"] == "ben@lincoln.example.edu"


@pytest.mark.parametrize("path", ["/v2/my/info", "/v2/my/district", "/v2/my/profileinfo"])
async def test_without_a_valid_token_the_answer_is_401(http: httpx.AsyncClient,
                                                       path: str) -> None:
    missing = await http.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    forged = await http.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]


async def test_a_token_without_profile_is_403(http: httpx.AsyncClient, bearer: Any,
                                              ben: User) -> None:
    answer = await http.get("/v2/my/info", headers=await bearer(ben, "email"))
    assert answer.status_code == 403
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert 'scope="profile"' in answer.headers["www-authenticate"]


async def test_a_disabled_account_is_401(http: httpx.AsyncClient, bearer: Any, ben: User,
                                         sandbox_ctx: IdentityContext) -> None:
    headers = await bearer(ben)
    await sandbox_ctx.directory.update_user(ben.id, disabled=True)
    assert (await http.get("/v2/my/info", headers=headers)).status_code == 401
