"""A login source's answers made into a profile: ClassLink's /v2/my/info and classes,
an OpenID provider's claims."""

from __future__ import annotations

from typing import Any

import pytest
from classlink_standin import CLASSES, PERSON, ROSTER_USER

from campusgate.config.identity_sources import OidcSource
from campusgate.identity.sources.profile import (
    ProfileError,
    classlink_profile,
    grades_of,
    oidc_profile,
)


def test_a_classlink_teacher_with_classes() -> None:
    profile = classlink_profile(PERSON, CLASSES)
    assert profile.subject == "2001:t-1001"
    assert profile.username == "alovelace"
    assert (profile.email, profile.email_verified) == ("ada@springfield.k12.us", True)
    assert (profile.name, profile.given_name, profile.family_name) == (
        "Ada Lovelace", "Ada", "Lovelace")
    assert profile.roster == {"tenant_id": "2001", "role": "teacher",
                              "district": "Springfield Public Schools",
                              "school_ids": ["school-shs"],
                              "class_ids": ["class-math-7", "class-sci-7"]}


def test_the_oneroster_record_adds_grades() -> None:
    profile = classlink_profile(PERSON, CLASSES, {"user": ROSTER_USER})
    assert profile.roster["grades"] == ["07", "08"]


@pytest.mark.parametrize(("answer", "grades"), [
    ({"user": {"grades": ["07", " 08 ", "07", ""]}}, ["07", "08"]),
    ({"user": {"grades": "09,10"}}, ["09", "10"]),          # as users.csv writes it
    ({"grades": ["KG"]}, ["KG"]),                            # a bare OneRoster user
    ({"user": {"grades": [7, None, {"x": 1}]}}, ["7"]),
    ({"user": {}}, []), ({"error": "not_found"}, []), (None, []), ([], []),
])
def test_grades_from_a_oneroster_answer(answer: Any, grades: list[str]) -> None:
    assert grades_of(answer) == grades


def test_no_oneroster_record_means_no_grades() -> None:
    assert "grades" not in classlink_profile(PERSON, CLASSES, None).roster
    assert "grades" not in classlink_profile(PERSON, CLASSES, {"user": {"grades": []}}).roster


def test_what_was_read_is_given_in_full_and_what_failed_is_not() -> None:
    everything = classlink_profile(PERSON, CLASSES, {"user": {"grades": []}})
    assert {"role", "tenant_id", "district", "class_ids", "school_ids",
            "grades"} <= everything.replaces
    info_only = classlink_profile(PERSON)  # the oneroster reads failed (or were not asked)
    assert info_only.replaces == {"role", "tenant_id", "district"}


@pytest.mark.parametrize(("role", "expected"), [
    ("Student", "student"), ("Teacher", "teacher"),
    ("Tenant Administrator", "administrator"), ("Wizard", None), (None, None)])
def test_classlink_roles_become_oneroster_roles(role: str | None, expected: str | None) -> None:
    profile = classlink_profile({**PERSON, "Role": role})
    assert profile.roster.get("role") == expected
    assert "class_ids" not in profile.roster  # not asked: not claimed empty


def test_a_person_without_a_sourced_id_is_keyed_on_the_classlink_user_id() -> None:
    info = {k: v for k, v in PERSON.items() if k not in ("SourcedId", "LoginId", "Email")}
    profile = classlink_profile(info)
    assert profile.subject == "2001:u4711"
    assert profile.username == "classlink-2001:u4711"
    assert profile.email is None and not profile.email_verified


def test_a_building_id_stands_in_for_a_missing_org_id() -> None:
    info: dict[str, Any] = {**PERSON, "OrgId": None}
    assert classlink_profile(info).roster["school_ids"] == ["31"]


@pytest.mark.parametrize("info", [[], {"UserId": 1}, {"TenantId": 5}])
def test_an_answer_that_does_not_say_who_is_refused(info: Any) -> None:
    with pytest.raises(ProfileError):
        classlink_profile(info)


def test_an_openid_profile_maps_the_configured_roster_claims() -> None:
    source = OidcSource(type="oidc", name="entra", issuer="https://login.example.com",
                        client_id="x", client_secret="y", username_claim="upn",
                        roster_claims={"role": "jobTitle", "school_ids": "schools",
                                       "nonsense": "x"})
    profile = oidc_profile(source, {"sub": "abc", "upn": "ada@district.edu",
                                    "email": "ada@district.edu", "email_verified": False,
                                    "jobTitle": "teacher", "schools": ["s1", 2],
                                    "x": "dropped"})
    assert profile.subject == "abc" and profile.username == "ada@district.edu"
    assert profile.email_verified is False
    assert profile.roster == {"role": "teacher", "school_ids": ["s1", "2"]}
    with pytest.raises(ProfileError):
        oidc_profile(source, {"email": "ada@district.edu"})
