"""The demo district: a valid OneRoster 1.1 bundle, the same every time."""

from __future__ import annotations

from collections import Counter

from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.identity.roster.demo import demo_bundle


def test_the_demo_district_is_a_valid_bundle_of_the_promised_size() -> None:
    bundle = read_bundle(demo_bundle("a-password"))
    assert bundle.version == "1.1"
    orgs = Counter(o["type"] for o in bundle.records["orgs"])
    assert orgs == {"district": 1, "school": 3}
    roles = Counter(u["role"] for u in bundle.records["users"])
    assert roles == {"student": 40, "teacher": 6, "administrator": 1}
    assert len(bundle.records["classes"]) == 8 and len(bundle.records["courses"]) == 8
    assert Counter(s["type"] for s in bundle.records["academicSessions"]) == {
        "schoolYear": 1, "term": 2}
    # Every class has a teacher and students; everyone has the one password.
    for school_class in bundle.records["classes"]:
        enrolled = Counter(e["role"] for e in bundle.records["enrollments"]
                           if e["class_sourced_id"] == school_class["sourced_id"])
        assert enrolled["teacher"] == 1 and enrolled["student"] >= 12
    assert set(bundle.passwords.values()) == {"a-password"}
    assert len(bundle.passwords) == 47


def test_the_demo_is_deterministic_and_usernames_name_the_tenant() -> None:
    assert demo_bundle("pw") == demo_bundle("pw")
    default = read_bundle(demo_bundle("pw")).records["users"]
    other = read_bundle(demo_bundle("pw", "maple")).records["users"]
    assert default[1]["username"] == "grace.hopper"
    assert other[1]["username"] == "grace.hopper.maple"
    assert {u["username"] for u in default}.isdisjoint(u["username"] for u in other)
