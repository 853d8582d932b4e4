"""What the sandbox tests share (import by name: ``from sandbox_kit import ...``):
the clients' config, and a small district written straight into the roster tables.

One tenant "Lincoln Unified": the district ``d1``, the school ``s1`` (Lincoln High),
the course ``c-bio`` and two classes: ``cls-bio`` (Biology 9: teacher Ada, students
Ben and Cy; Dee was enrolled but is leaving, her rows ``tobedeleted``) and
``cls-art`` (Art: Cy only).  Ada and Ben sign in with the local accounts given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from identity_harness import identity_config
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.config.identity import IdentityConfig
from campusgate.store.tables import (
    roster_classes,
    roster_courses,
    roster_enrollments,
    roster_orgs,
    roster_tenants,
    roster_users,
)

__all__ = ["CALLBACK", "CLASSIC_CALLBACK", "SECRETS", "District", "add_district",
           "sandbox_config"]

CALLBACK = "https://lms.example.edu/callback"
CLASSIC_CALLBACK = "https://classic.example.edu/code"
SECRETS = {"lms": "lms-secret-0123456789abcdef", "classic": "classic-secret-0123456789ab"}


def sandbox_config(**sandbox: Any) -> IdentityConfig:
    """Two clients (``lms``: client_secret_basic; ``classic``: client_secret_post, as
    ClassLink's libraries authenticate) and the sandbox with ``sandbox`` settings."""
    return identity_config(
        clients=[
            {"client_id": "lms", "client_secret": SECRETS["lms"],
             "redirect_uris": [CALLBACK], "require_consent": False,
             "scopes": ["openid", "profile", "email", "roster", "offline_access"]},
            {"client_id": "classic", "client_secret": SECRETS["classic"],
             "token_endpoint_auth_method": "client_secret_post",
             "redirect_uris": [CLASSIC_CALLBACK], "require_consent": False,
             "scopes": ["openid", "profile", "email", "roster"]},
        ],
        classlink_sandbox=sandbox)


MODIFIED = datetime(2026, 9, 1, 8, 30, 15, 250000, tzinfo=UTC)


@dataclass(frozen=True)
class District:
    tenant_id: int
    school_row_id: int
    ada_row_id: int
    ben_row_id: int


def _common(tenant_id: int, sourced_id: str, status: str = "active") -> dict[str, Any]:
    return {"tenant_id": tenant_id, "sourced_id": sourced_id, "status": status,
            "extra": "{}", "updated_at": MODIFIED}


def _person(tenant_id: int, sourced_id: str, username: str, given: str, family: str,
            role: str, account_id: str | None, status: str = "active",
            grades: tuple[str, ...] = ()) -> dict[str, Any]:
    return {**_common(tenant_id, sourced_id, status), "enabled_user": True,
            "username": username, "given_name": given, "family_name": family,
            "middle_name": None, "role": role, "identifier": f"id-{sourced_id}",
            "email": f"{username}@lincoln.example.edu", "sms": None, "phone": None,
            "grades": json.dumps(list(grades)), "org_sourced_ids": json.dumps(["s1"]),
            "agent_sourced_ids": "[]", "user_ids": json.dumps([f"{{SIS:{sourced_id}}}"]),
            "account_id": account_id}


def _enrollment(tenant_id: int, sourced_id: str, class_id: str, user_id: str, role: str,
                status: str = "active") -> dict[str, Any]:
    return {**_common(tenant_id, sourced_id, status), "class_sourced_id": class_id,
            "school_sourced_id": "s1", "user_sourced_id": user_id, "role": role,
            "is_primary": role == "teacher", "begin_date": None, "end_date": None}


def _class(tenant_id: int, sourced_id: str, title: str) -> dict[str, Any]:
    return {**_common(tenant_id, sourced_id), "title": title, "class_code": title[:3],
            "class_type": "scheduled", "location": "Room 101",
            "course_sourced_id": "c-bio", "school_sourced_id": "s1",
            "term_sourced_ids": json.dumps(["term1"]), "grades": json.dumps(["09"]),
            "subjects": json.dumps(["science"]), "periods": json.dumps(["1"])}


async def add_district(engine: AsyncEngine, *, ada_account: str | None,
                       ben_account: str | None) -> District:
    """Write the district (see the module docstring) in one transaction."""
    async with engine.begin() as conn:
        tenant = (await conn.execute(insert(roster_tenants).values(
            name="Lincoln Unified", created_at=MODIFIED, updated_at=MODIFIED))
        ).inserted_primary_key[0]
        await conn.execute(insert(roster_orgs).values(
            **_common(tenant, "d1"), name="Lincoln Unified School District",
            type="district", identifier="LUSD", parent_sourced_id=None))
        school = (await conn.execute(insert(roster_orgs).values(
            **_common(tenant, "s1"), name="Lincoln High", type="school",
            identifier="LHS", parent_sourced_id="d1"))).inserted_primary_key[0]
        await conn.execute(insert(roster_courses).values(
            **_common(tenant, "c-bio"), title="Biology", course_code="BIO",
            school_year_sourced_id=None, org_sourced_id="s1", grades='["09"]',
            subjects='["science"]'))
        await conn.execute(insert(roster_classes), [
            _class(tenant, "cls-bio", "Biology 9"), _class(tenant, "cls-art", "Art")])
        ada = (await conn.execute(insert(roster_users).values(_person(
            tenant, "t-ada", "ada", "Ada", "Lovelace", "teacher", ada_account)))
        ).inserted_primary_key[0]
        ben = (await conn.execute(insert(roster_users).values(_person(
            tenant, "st-ben", "ben", "Ben", "Ng", "student", ben_account,
            grades=("09",))))).inserted_primary_key[0]
        await conn.execute(insert(roster_users), [
            _person(tenant, "st-cy", "cy", "Cy", "Twombly", "student", None,
                    grades=("09",)),
            _person(tenant, "st-dee", "dee", "Dee", "Adams", "student", None,
                    status="tobedeleted")])
        await conn.execute(insert(roster_enrollments), [
            _enrollment(tenant, "e1", "cls-bio", "t-ada", "teacher"),
            _enrollment(tenant, "e2", "cls-bio", "st-ben", "student"),
            _enrollment(tenant, "e3", "cls-bio", "st-cy", "student"),
            _enrollment(tenant, "e4", "cls-bio", "st-dee", "student", "tobedeleted"),
            _enrollment(tenant, "e5", "cls-art", "st-cy", "student")])
    return District(tenant, school, ada, ben)
