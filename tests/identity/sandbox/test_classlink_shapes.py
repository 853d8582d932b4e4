"""The JSON of the ClassLink-shaped endpoints, from plain values
(identity/classlink/shapes.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.identity.classlink.shapes import (
    Placement,
    classlink_role,
    district_info,
    iso_time,
    my_info,
    oneroster_class,
    oneroster_user,
    user_number,
)
from campusgate.identity.models import User
from campusgate.identity.roster.models import Enrollment, Org, Person, SchoolClass

NOW = datetime(2026, 11, 2, 9, 5, 7, 123456, tzinfo=UTC)
USER_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _user(**fields: Any) -> User:
    data: dict[str, Any] = {
        "id": USER_ID, "username": "jo", "email": None, "email_verified": False,
        "name": None, "given_name": None, "family_name": None, "claims": {},
        "disabled": False, "created_at": NOW, "updated_at": NOW, **fields}
    return User(**data)


PERSON = Person(id=17, tenant_id=3, sourced_id="p-17", status="active",
                enabled_user=False, username="jrivera", given_name="Jo",
                family_name="Rivera", role="teacher", email="jo@d.example.edu",
                org_sourced_ids=("s1", "s2"), agent_sourced_ids=("g1",),
                user_ids=("{SIS:991}", "{LDAP:jr}"),
                extra={"metadata.house": "red", "password": "never shown"},
                updated_at=NOW.replace(tzinfo=None))
SCHOOL = Org(id=5, tenant_id=3, sourced_id="s1", status="active", name="North Middle",
             type="school")
DISTRICT = Org(id=1, tenant_id=3, sourced_id="d", status="active", name="North ISD",
               type="district", identifier="NISD")


@pytest.mark.parametrize(("role", "expected"), [
    ("student", "Student"), ("teacher", "Teacher"), ("aide", "Teacher"),
    ("administrator", "Tenant Administrator"),
    ("districtAdministrator", "Tenant Administrator"), ("guardian", "Parent"),
    (None, "Student"), ("janitor", "Student"),
])
def test_classlink_role(role: str | None, expected: str) -> None:
    assert classlink_role(role) == expected


@pytest.mark.parametrize(("moment", "expected"), [
    (NOW, "2026-11-02T09:05:07.123Z"),
    (NOW.replace(tzinfo=None), "2026-11-02T09:05:07.123Z"),  # naive: UTC (SQLite)
    (NOW.astimezone(timezone(timedelta(hours=-5))), "2026-11-02T09:05:07.123Z"),
    (None, ""),
])
def test_iso_time(moment: datetime | None, expected: str) -> None:
    assert iso_time(moment) == expected


def test_user_number_is_stable_and_fits_a_javascript_number() -> None:
    assert user_number(USER_ID) == 0x0A1B2C3D4E5F
    assert user_number(USER_ID) < 2 ** 53


def test_my_info_of_a_rostered_person() -> None:
    where = Placement(person=PERSON, tenant_name="north", district=DISTRICT, school=SCHOOL)
    sandbox = ClassLinkSandbox(state_id=31, state_name="Nebraska")
    info = my_info(_user(name="Ms. Rivera"), where, sandbox, NOW)
    assert info == {
        "UserId": 17, "TenantId": 3, "StateId": 31, "StateName": "Nebraska",
        "BuildingId": 5, "AuthenticationType": 2, "DisplayName": "Ms. Rivera",
        "FirstName": "Jo", "LastName": "Rivera", "Email": "jo@d.example.edu",
        "LoginId": "jrivera", "ImagePath": "", "LanguageId": 1, "Language": "en",
        "DefaultTimeFormat": 0, "Profile": "Teacher Profile", "ProfileId": 3,
        "Tenant": "North ISD", "Building": "North Middle", "Role": "Teacher",
        "Role_Level": 3, "LastAccessTime": "2026-11-02T09:05:07.123Z", "OrgId": "s1",
        "SourcedId": "p-17"}


@pytest.mark.parametrize(("user", "where", "expected"), [
    # no roster record, no claims: the sandbox's defaults
    (_user(), Placement(),
     {"TenantId": 0, "Tenant": "campusgate", "DisplayName": "jo", "Role": "Student"}),
    # the roster claims a ClassLink sign-in or an import wrote
    (_user(given_name="Jo", family_name="R", claims={
        "tenant_id": "8", "district": "West", "role": "administrator",
        "picture": "https://img.example/jo.png"}), Placement(),
     {"TenantId": 8, "Tenant": "West", "DisplayName": "Jo R",
      "Role": "Tenant Administrator", "ImagePath": "https://img.example/jo.png"}),
    # a tenant id that is not a number is not used
    (_user(claims={"tenant_id": "x9"}), Placement(), {"TenantId": 0}),
    # a rostered person in a tenant without a district org: the tenant's name
    (_user(), Placement(person=PERSON, tenant_name="north"),
     {"Tenant": "north", "BuildingId": 0, "Building": "", "OrgId": "",
      "DisplayName": "Jo Rivera"}),
])
def test_my_info_fills_in_from_what_is_known(user: User, where: Placement,
                                             expected: dict[str, Any]) -> None:
    info = my_info(user, where, ClassLinkSandbox(), NOW)
    assert {name: info[name] for name in expected} == expected


def test_district_info() -> None:
    where = Placement(person=PERSON, district=DISTRICT)
    assert district_info(_user(), where, ClassLinkSandbox()) == {
        "TenantId": 3, "Name": "North ISD", "SourcedId": "d", "Identifier": "NISD",
        "StateId": 0, "StateName": ""}


def test_oneroster_user() -> None:
    assert oneroster_user(PERSON) == {
        "sourcedId": "p-17", "status": "active",
        "dateLastModified": "2026-11-02T09:05:07.123Z", "metadata": {"house": "red"},
        "username": "jrivera",
        "userIds": [{"type": "SIS", "identifier": "991"},
                    {"type": "LDAP", "identifier": "jr"}],
        "enabledUser": "false", "givenName": "Jo", "familyName": "Rivera",
        "middleName": "", "role": "teacher", "identifier": "", "email": "jo@d.example.edu",
        "sms": "", "phone": "", "agents": [{"sourcedId": "g1", "type": "user"}],
        "orgs": [{"sourcedId": "s1", "type": "org"}, {"sourcedId": "s2", "type": "org"}],
        "grades": []}


def test_oneroster_class() -> None:
    school_class = SchoolClass(
        id=9, tenant_id=3, sourced_id="c-9", status="active", title="Algebra",
        class_type="scheduled", school_sourced_id="s1", term_sourced_ids=("t1", "t2"),
        grades=("07",), periods=("2",), updated_at=NOW)
    enrollment = Enrollment(id=1, tenant_id=3, sourced_id="e", status="active",
                            class_sourced_id="c-9", school_sourced_id="s1",
                            user_sourced_id="p-17", role="teacher")
    assert oneroster_class(school_class, enrollment) == {
        "sourcedId": "c-9", "status": "active",
        "dateLastModified": "2026-11-02T09:05:07.123Z", "metadata": {"role": "teacher"},
        "title": "Algebra", "classCode": "", "classType": "scheduled", "location": "",
        "grades": ["07"], "subjects": [], "course": None,
        "school": {"sourcedId": "s1", "type": "org"},
        "terms": [{"sourcedId": "t1", "type": "academicSession"},
                  {"sourcedId": "t2", "type": "academicSession"}],
        "periods": ["2"]}
    assert oneroster_class(school_class)["metadata"] == {}
