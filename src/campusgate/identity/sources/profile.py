"""Who signed in, in campusgate's words: a source's answers made into a profile.

No I/O.  :func:`classlink_profile` reads ClassLink's ``/v2/my/info`` (every field
optional) and, when the source has the ``oneroster`` scope, its
``/v2/oneroster/my/classes`` (class and school ids) and ``/v2/oneroster/my/info``
(the OneRoster user's ``grades``); :func:`oidc_profile` reads an OpenID provider's ID
token and userinfo claims.  The result carries the subject the account is linked
under (``identity_user_links``), the profile fields the account is refreshed with on
every sign-in, and the roster claims (``identity/claims.py: ROSTER_CLAIMS``).

ClassLink's ``SourcedId`` is unique only within a district, so the ClassLink subject
is ``<TenantId>:<SourcedId>`` -- or ``<TenantId>:u<UserId>`` for a person without a
SourcedId (not rostered through OneRoster).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from campusgate.config.identity_sources import OidcSource
from campusgate.identity.claims import ROSTER_CLAIMS

__all__ = ["CLASSLINK_ROLES", "Profile", "ProfileError", "class_ids", "classlink_profile",
           "grades_of", "oidc_profile"]

#: ClassLink's ``Role`` as a OneRoster role (lowercase).
CLASSLINK_ROLES = {"student": "student", "teacher": "teacher",
                   "tenant administrator": "administrator", "administrator": "administrator",
                   "parent": "guardian", "guardian": "guardian", "aide": "aide"}


class ProfileError(ValueError):
    """The source's answer does not say who signed in."""


@dataclass(frozen=True)
class Profile:
    #: What the source calls the person (the link's subject).
    subject: str
    #: A username to create the account with (made unique if taken).
    username: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    #: Roster claims to write into the account (only those the source knows).
    roster: dict[str, Any] = field(default_factory=dict)
    #: Roster claims this answer gives in full: one it leaves out is one the person no
    #: longer has (a class they left), and is removed from the account.  Others are
    #: kept when left out (a read that failed this time says nothing).
    replaces: frozenset[str] = frozenset()
    #: Added to the username when it is taken (the district, for ClassLink).
    suffix: str = ""


def _text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


def class_ids(classes: Any) -> tuple[list[str], list[str]]:
    """Class and school sourcedIds of a ``/v2/oneroster/my/classes`` answer
    (``{"classes": [...]}`` or a bare list of OneRoster classes)."""
    items = classes.get("classes") if isinstance(classes, dict) else classes
    found: list[str] = []
    schools: list[str] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        sourced = _text(item, "sourcedId")
        if sourced and sourced not in found:
            found.append(sourced)
        school = item.get("school")
        school_id = _text(school, "sourcedId") if isinstance(school, dict) else None
        if school_id and school_id not in schools:
            schools.append(school_id)
    return found, schools


def grades_of(roster_info: Any) -> list[str]:
    """The grades of a ``/v2/oneroster/my/info`` answer (``{"user": {...}}`` or a bare
    OneRoster user): its ``grades``, a list (OneRoster's REST binding) or a
    comma-separated string (as in ``users.csv``); [] when there are none."""
    user = roster_info.get("user", roster_info) if isinstance(roster_info, dict) else None
    grades = user.get("grades") if isinstance(user, dict) else None
    if isinstance(grades, str):
        grades = grades.split(",")
    if not isinstance(grades, list):
        return []
    found: list[str] = []
    for grade in grades:
        text = str(grade).strip() if isinstance(grade, str | int) else ""
        if text and text not in found:
            found.append(text)
    return found


def classlink_profile(info: Any, classes: Any = None, roster_info: Any = None) -> Profile:
    """The profile in a ClassLink ``/v2/my/info`` answer (and ``/v2/oneroster/my/classes``
    and ``/v2/oneroster/my/info``, when they were read)."""
    if not isinstance(info, dict):
        raise ProfileError("/v2/my/info did not answer a JSON object")
    tenant = _text(info, "TenantId")
    sourced = _text(info, "SourcedId")
    user_id = _text(info, "UserId")
    if tenant is None or (sourced is None and user_id is None):
        raise ProfileError("/v2/my/info has no TenantId with a SourcedId or UserId")
    subject = f"{tenant}:{sourced}" if sourced else f"{tenant}:u{user_id}"
    email = _text(info, "Email")
    roster: dict[str, Any] = {"tenant_id": tenant}
    role = CLASSLINK_ROLES.get((_text(info, "Role") or "").lower())
    if role:
        roster["role"] = role
    if _text(info, "Tenant"):
        roster["district"] = _text(info, "Tenant")
    school = _text(info, "OrgId") or _text(info, "BuildingId")
    schools = [school] if school else []
    if classes is not None:
        found, class_schools = class_ids(classes)
        roster["class_ids"] = found
        schools += [s for s in class_schools if s not in schools]
    if schools:
        roster["school_ids"] = schools
    grades = grades_of(roster_info)
    if grades:
        roster["grades"] = grades
    replaces = {"tenant_id", "role", "district"}
    if classes is not None:
        replaces |= {"class_ids", "school_ids"}
    if roster_info is not None:
        replaces.add("grades")
    first, last = _text(info, "FirstName"), _text(info, "LastName")
    name = _text(info, "DisplayName") or (" ".join(p for p in (first, last) if p) or None)
    return Profile(subject=subject,
                   username=_text(info, "LoginId") or email or f"classlink-{subject}",
                   # ClassLink's addresses are the district's own directory: verified.
                   email=email, email_verified=email is not None, name=name,
                   given_name=first, family_name=last, roster=roster,
                   replaces=frozenset(replaces), suffix=f"@{tenant}")


def oidc_profile(source: OidcSource, claims: Mapping[str, Any]) -> Profile:
    """The profile in an OpenID provider's ID token and userinfo claims."""
    sub = _text(claims, "sub")
    if sub is None:
        raise ProfileError("the ID token has no sub")
    email = _text(claims, "email")
    verified = claims.get("email_verified") is True or claims.get("email_verified") == "true"
    roster: dict[str, Any] = {}
    for ours, theirs in source.roster_claims.items():
        if ours in ROSTER_CLAIMS and claims.get(theirs) is not None:
            value = claims[theirs]
            roster[ours] = ([str(v) for v in value] if isinstance(value, list)
                            else str(value))
    return Profile(subject=sub,
                   username=_text(claims, source.username_claim) or email or
                   f"{source.name}-{sub}",
                   email=email, email_verified=verified and email is not None,
                   name=_text(claims, "name"), given_name=_text(claims, "given_name"),
                   family_name=_text(claims, "family_name"), roster=roster,
                   suffix=f"@{source.name}")
