"""ClassLink's and OneRoster's JSON, made from campusgate's values (no I/O).

- :func:`my_info` -- ``/v2/my/info``: ClassLink's fields, every one always present
  (an app written for ClassLink may index any of them), numbers as numbers.  From the
  person's roster record when there is one, else from the local account alone.
- :func:`district_info` -- ``/v2/my/district``.
- :func:`oneroster_user`, :func:`oneroster_class` -- OneRoster 1.1's REST JSON
  (``sourcedId``, ``status``, ``dateLastModified``, ``metadata``, references as
  ``{"sourcedId", "type"}``; ``enabledUser`` the string ``"true"`` / ``"false"`` as
  1.1's JSON binding has it).

ClassLink knows three roles (Student, Teacher, Tenant Administrator); OneRoster has
more, mapped by :data:`CLASSLINK_ROLES` (staff who teach or help teach are
Teachers, any administrator a Tenant Administrator, guardians and relatives
Parents -- ClassLink's parent accounts).  ``Role_Level`` orders them as ClassLink's
samples do (a Student is 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.identity.models import User
from campusgate.identity.roster.models import Enrollment, Org, Person, SchoolClass

__all__ = ["CLASSLINK_ROLES", "ROLE_LEVELS", "Placement", "classlink_role",
           "district_info", "iso_time", "my_info", "oneroster_class", "oneroster_user",
           "user_number"]

#: OneRoster role (lowercase) -> ClassLink ``Role``.
CLASSLINK_ROLES: Mapping[str, str] = {
    "student": "Student",
    "teacher": "Teacher", "aide": "Teacher", "proctor": "Teacher",
    "administrator": "Tenant Administrator",
    "districtadministrator": "Tenant Administrator",
    "siteadministrator": "Tenant Administrator",
    "systemadministrator": "Tenant Administrator",
    "guardian": "Parent", "parent": "Parent", "relative": "Parent",
}
#: ClassLink ``Role`` -> ``Role_Level``.
ROLE_LEVELS: Mapping[str, int] = {"Tenant Administrator": 1, "Teacher": 3, "Student": 4,
                                  "Parent": 5}
#: ``AuthenticationType`` of every sandbox sign-in (the value ClassLink's samples show).
AUTHENTICATION_TYPE = 2


@dataclass(frozen=True)
class Placement:
    """Where a person is: their roster record, tenant, district and school (each may
    be unknown)."""

    person: Person | None = None
    tenant_name: str | None = None
    district: Org | None = None
    school: Org | None = None


def classlink_role(role: str | None) -> str:
    """ClassLink's ``Role`` for a OneRoster role; no role at all is a Student (the
    least a sandbox account can be)."""
    return CLASSLINK_ROLES.get((role or "student").lower(), "Student")


def user_number(user_id: str) -> int:
    """A stable ``UserId`` for a local account without a roster record: 48 bits of
    its uuid (exact in a JavaScript number, far above any roster row id)."""
    return int(user_id.replace("-", "")[:12], 16)


def iso_time(moment: datetime | None) -> str:
    """ClassLink's and OneRoster's timestamps: UTC, milliseconds, ``Z``."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # stored naive by SQLite: it is UTC
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _tenant_id(user: User, where: Placement, sandbox: ClassLinkSandbox) -> int:
    if where.person is not None:
        return where.person.tenant_id
    claimed = user.claims.get("tenant_id")
    if isinstance(claimed, str) and claimed.isascii() and claimed.isdigit():
        return int(claimed)
    return sandbox.default_tenant_id


def _tenant_name(user: User, where: Placement, sandbox: ClassLinkSandbox) -> str:
    if where.district is not None:
        return where.district.name
    if where.tenant_name:
        return where.tenant_name
    claimed = user.claims.get("district")
    return claimed if isinstance(claimed, str) and claimed else sandbox.default_tenant_name


def my_info(user: User, where: Placement, sandbox: ClassLinkSandbox,
            last_access: datetime | None) -> dict[str, Any]:
    """``/v2/my/info`` of ``user`` (see the module docstring)."""
    person = where.person
    role = classlink_role(person.role if person else user.claims.get("role"))
    first = (person.given_name if person else None) or user.given_name or ""
    last = (person.family_name if person else None) or user.family_name or ""
    display = user.name or (person.name if person else "") or f"{first} {last}".strip() \
        or user.username
    locale = user.claims.get("locale")
    return {
        "UserId": person.id if person else user_number(user.id),
        "TenantId": _tenant_id(user, where, sandbox),
        "StateId": sandbox.state_id or 0,
        "StateName": sandbox.state_name or "",
        "BuildingId": where.school.id if where.school else 0,
        "AuthenticationType": AUTHENTICATION_TYPE,
        "DisplayName": display,
        "FirstName": first,
        "LastName": last,
        "Email": user.email or (person.email if person else None) or "",
        "LoginId": person.username if person else user.username,
        "ImagePath": str(user.claims.get("picture") or ""),
        "LanguageId": 1,
        "Language": locale if isinstance(locale, str) and locale else "en",
        "DefaultTimeFormat": 0,
        "Profile": f"{role} Profile",
        "ProfileId": ROLE_LEVELS[role],
        "Tenant": _tenant_name(user, where, sandbox),
        "Building": where.school.name if where.school else "",
        "Role": role,
        "Role_Level": ROLE_LEVELS[role],
        "LastAccessTime": iso_time(last_access),
        "OrgId": where.school.sourced_id if where.school else "",
        "SourcedId": person.sourced_id if person else str(user.claims.get("sourced_id", "")),
    }


def district_info(user: User, where: Placement, sandbox: ClassLinkSandbox
                  ) -> dict[str, Any]:
    """``/v2/my/district``: the person's district (tenant)."""
    district = where.district
    return {
        "TenantId": _tenant_id(user, where, sandbox),
        "Name": _tenant_name(user, where, sandbox),
        "SourcedId": district.sourced_id if district else
        str(user.claims.get("district_id", "")),
        "Identifier": (district.identifier or "") if district else "",
        "StateId": sandbox.state_id or 0,
        "StateName": sandbox.state_name or "",
    }


def _ref(sourced_id: str, kind: str) -> dict[str, str]:
    return {"sourcedId": sourced_id, "type": kind}


def _metadata(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {name.removeprefix("metadata."): value for name, value in extra.items()
            if name.startswith("metadata.")}


def _user_id(value: str) -> dict[str, str]:
    """OneRoster's ``{type:identifier}`` user id as ``{"type", "identifier"}``."""
    kind, _, identifier = value.strip().removeprefix("{").removesuffix("}").partition(":")
    return {"type": kind, "identifier": identifier}


def oneroster_user(person: Person) -> dict[str, Any]:
    """A OneRoster 1.1 ``user``."""
    return {
        "sourcedId": person.sourced_id,
        "status": person.status,
        "dateLastModified": iso_time(person.updated_at),
        "metadata": _metadata(person.extra),
        "username": person.username,
        "userIds": [_user_id(value) for value in person.user_ids],
        "enabledUser": "true" if person.enabled_user else "false",
        "givenName": person.given_name,
        "familyName": person.family_name,
        "middleName": person.middle_name or "",
        "role": person.role,
        "identifier": person.identifier or "",
        "email": person.email or "",
        "sms": person.sms or "",
        "phone": person.phone or "",
        "agents": [_ref(sid, "user") for sid in person.agent_sourced_ids],
        "orgs": [_ref(sid, "org") for sid in person.org_sourced_ids],
        "grades": list(person.grades),
    }


def oneroster_class(school_class: SchoolClass, enrollment: Enrollment | None = None
                    ) -> dict[str, Any]:
    """A OneRoster 1.1 ``class``."""
    metadata = _metadata(school_class.extra)
    if enrollment is not None:  # how the caller is in it (a ClassLink addition)
        metadata["role"] = enrollment.role
    return {
        "sourcedId": school_class.sourced_id,
        "status": school_class.status,
        "dateLastModified": iso_time(school_class.updated_at),
        "metadata": metadata,
        "title": school_class.title,
        "classCode": school_class.class_code or "",
        "classType": school_class.class_type,
        "location": school_class.location or "",
        "grades": list(school_class.grades),
        "subjects": list(school_class.subjects),
        "course": _ref(school_class.course_sourced_id, "course")
        if school_class.course_sourced_id else None,
        "school": _ref(school_class.school_sourced_id, "org"),
        "terms": [_ref(sid, "academicSession") for sid in school_class.term_sourced_ids],
        "periods": list(school_class.periods),
    }
