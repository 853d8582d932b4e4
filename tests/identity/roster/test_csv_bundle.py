"""Reading OneRoster CSV bundles: what a valid 1.1 or 1.2 bundle becomes, and every
kind of broken bundle refused with the file, line and reason a person can act on."""

from __future__ import annotations

import io
import zipfile

import pytest
from roster_bundles import BUNDLE_11, BUNDLE_12, edited, zip_bundle

from campusgate.identity.roster import csv_bundle
from campusgate.identity.roster.bundle import ImportRefused, Problem
from campusgate.identity.roster.csv_bundle import read_bundle


def problems_of(data: bytes) -> list[Problem]:
    with pytest.raises(ImportRefused) as refused:
        read_bundle(data)
    return refused.value.problems


def test_a_1_1_bundle_reads_into_typed_rows() -> None:
    bundle = read_bundle(zip_bundle(BUNDLE_11))
    assert bundle.version == "1.1"
    assert {k: len(v) for k, v in bundle.records.items()} == {
        "orgs": 3, "academicSessions": 2, "courses": 2, "classes": 2, "users": 4,
        "enrollments": 3}
    assert set(bundle.modes.values()) == {"bulk"}
    admin = next(u for u in bundle.records["users"] if u["sourced_id"] == "u4")
    assert admin["role"] == "administrator"
    assert admin["org_sourced_ids"] == ("d1", "s1", "s2")
    assert admin["status"] == "active"  # blank in a 1.1 bulk file
    algebra = bundle.records["classes"][0]
    assert algebra["grades"] == ("09", "10") and algebra["term_sourced_ids"] == ("t1",)
    assert bundle.records["enrollments"][0]["is_primary"] is True
    # The password is kept apart, never in a stored record.
    assert bundle.passwords == {"u1": "teach-pass"}
    assert all("password" not in u for u in bundle.records["users"])
    assert bundle.line("users", "u3") == 4


def test_a_1_2_bundle_takes_roles_and_orgs_from_roles_csv() -> None:
    bundle = read_bundle(zip_bundle(BUNDLE_12, folder="export/"))
    assert bundle.version == "1.2"
    assert "roles" not in bundle.records
    users = {u["sourced_id"]: u for u in bundle.records["users"]}
    assert users["u1"]["role"] == "teacher"
    # The primary role wins; districtAdministrator is an administrator.
    assert users["u4"]["role"] == "administrator"
    assert users["u4"]["org_sourced_ids"] == ("s2", "d1")
    assert users["u4"]["extra"]["roles"][1]["role"] == "districtAdministrator"
    # 1.2 columns the tables have no place for are kept in extra.
    assert users["u1"]["extra"]["preferredGivenName"] == "Annie"
    assert users["u1"]["extra"]["dateLastModified"] == "2026-08-01T00:00:00Z"


def test_a_utf8_byte_order_mark_is_fine() -> None:
    files = {**BUNDLE_11, "orgs.csv": "\ufeff" + BUNDLE_11["orgs.csv"]}
    assert len(read_bundle(zip_bundle(files)).records["orgs"]) == 3


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
    ("orgs.csv", "s2,,,Lakeside Middle,school", "s2,,,Lakeside Middle,campus",
     Problem("orgs.csv", 4, "type: 'campus' is not one of department, school, district, "
             "local, state, national")),
    ("orgs.csv", "s2,,,Lakeside Middle,", "s2,gone,,Lakeside Middle,",
     Problem("orgs.csv", 4, "status: 'gone' is not one of active, tobedeleted")),
    ("orgs.csv", "s2,,,Lakeside Middle,", "s2,,,,",
     Problem("orgs.csv", 4, "name is required")),
    ("orgs.csv", "s2,,,Lakeside Middle,", "s2,,," + "M" * 256 + ",",
     Problem("orgs.csv", 4, "name is longer than 255 characters")),
    ("users.csv", "true,s2,student,kim.park", "true,s2,pupil,kim.park",
     Problem("users.csv", 4, "role: 'pupil' is not one of administrator, aide, guardian, "
             "parent, proctor, relative, student, teacher")),
    ("users.csv", "u3,,,true", "u3,,,yes",
     Problem("users.csv", 4, "enabledUser: 'yes' is not true or false")),
    ("users.csv", "u3,,,true,s2,student,kim.park", "u2,,,true,s2,student,kim.park",
     Problem("users.csv", 4, "sourcedId 'u2' already on line 3")),
    ("users.csv", "u3,,,true,s2,student,kim.park", "u3,,,true,s2,student,SAM.LEE",
     Problem("users.csv", 4, "username 'SAM.LEE' already on line 3")),
    ("users.csv", "u3,,,true,s2,", "u3,,,true,s9,",
     Problem("users.csv", 4, "org 's9' is not in orgs.csv")),
    ("users.csv", ",,,07,\n", ",,,07\n",
     Problem("users.csv", 4, "17 fields; the header has 18")),
    ("academicSessions.csv", "2026-08-17,2027-01-15", "2026-08-17,15/01/2027",
     Problem("academicSessions.csv", 3, "endDate: '15/01/2027' is not a date (YYYY-MM-DD)")),
    ("academicSessions.csv", "2027-01-15,y1,2027", "2027-01-15,y1,27",
     Problem("academicSessions.csv", 3, "schoolYear: '27' is not a year (YYYY)")),
    ("classes.csv", "c2,SCI7-2,scheduled", "c2,SCI7-2,lecture",
     Problem("classes.csv", 3, "classType: 'lecture' is not one of homeroom, scheduled")),
    ("classes.csv", "c2,SCI7-2,scheduled,Lab 2,s2", "c3,SCI7-2,scheduled,Lab 2,s2",
     Problem("classes.csv", 3, "course 'c3' is not in courses.csv")),
    ("classes.csv", "Lab 2,s2,t1", "Lab 2,s2,t9",
     Problem("classes.csv", 3, "term 't9' is not in academicSessions.csv")),
    ("courses.csv", "Science 7,SCI7,07,s2", "Science 7,SCI7,07,s7",
     Problem("courses.csv", 3, "org 's7' is not in orgs.csv")),
    ("enrollments.csv", "e3,,,k2,s2,u3", "e3,,,k9,s2,u3",
     Problem("enrollments.csv", 4, "class 'k9' is not in classes.csv")),
    ("enrollments.csv", "e3,,,k2,s2,u3", "e3,,,k2,s2,u9",
     Problem("enrollments.csv", 4, "user 'u9' is not in users.csv")),
    ("enrollments.csv", "u3,student,false,2026-08-17", "u3,principal,false,2026-08-17",
     Problem("enrollments.csv", 4, "role: 'principal' is not one of administrator, aide, "
             "proctor, student, teacher")),
    ("enrollments.csv", "u3,student,false", "u3,student,maybe",
     Problem("enrollments.csv", 4, "primary: 'maybe' is not true or false")),
    ("enrollments.csv", "sourcedId,status,dateLastModified,classSourcedId",
     "sourcedId,status,dateLastModified,klass",
     Problem("enrollments.csv", 1, "missing column(s): classSourcedId")),
    ("manifest.csv", "file.users,bulk", "file.users,sometimes",
     Problem("manifest.csv", 8, "file.users is 'sometimes', not one of bulk, delta, "
             "absent")),
    ("orgs.csv", "s1,,,Lakeside High,school,LHS,d1", "s1,tobedeleted,,Lakeside High,"
     "school,LHS,d1",
     Problem("classes.csv", 2, "school 's1' is tobedeleted")),
])
def test_each_broken_row_is_reported_with_its_file_and_line(
        file: str, old: str, new: str, expected: Problem) -> None:
    assert expected in problems_of(zip_bundle(edited(BUNDLE_11, file, old, new)))


def test_a_quoted_field_with_a_line_break_counts_lines_from_its_start() -> None:
    files = edited(BUNDLE_11, "orgs.csv", "s2,,,Lakeside Middle,school",
                   's2,,,"Lakeside\nMiddle",school')
    files = edited(files, "orgs.csv", "\n", "\nx9,,,Other,campus,,d1\n")
    assert Problem("orgs.csv", 2, "type: 'campus' is not one of department, school, "
                   "district, local, state, national") in problems_of(zip_bundle(files))


def test_several_problems_are_all_reported_in_file_and_line_order() -> None:
    files = edited(BUNDLE_11, "users.csv", "student,kim.park", "pupil,kim.park")
    files = edited(files, "orgs.csv", "Lakeside Middle,school", "Lakeside Middle,campus")
    found = problems_of(zip_bundle(files))
    assert [(p.file, p.line) for p in found] == [("orgs.csv", 4), ("users.csv", 4)]
    assert str(found[0]).startswith("orgs.csv:4: type: 'campus'")


def test_1_2_users_need_an_active_role() -> None:
    files = edited(BUNDLE_12, "roles.csv", "r2,active", "r2,tobedeleted")
    assert Problem("users.csv", 3, "no active role in roles.csv") in problems_of(
        zip_bundle(files))
    without_roles = {k: v for k, v in BUNDLE_12.items() if k != "roles.csv"}
    assert any("needs roles.csv" in p.reason for p in problems_of(zip_bundle(without_roles)))


def test_manifest_decides_which_files_count() -> None:
    files = edited(BUNDLE_11, "manifest.csv", "file.courses,bulk", "file.courses,absent")
    # classes refer to courses, but courses are absent (left as they are in the store)
    bundle = read_bundle(zip_bundle(files))
    assert "courses" not in bundle.records
    missing = {k: v for k, v in BUNDLE_11.items() if k != "courses.csv"}
    assert Problem("manifest.csv", 6, "file.courses is bulk but the zip has no "
                   "courses.csv") in problems_of(zip_bundle(missing))


def test_a_delta_file_skips_references_into_it() -> None:
    files = edited(BUNDLE_11, "manifest.csv", "file.users,bulk", "file.users,delta")
    files = edited(files, "enrollments.csv", "e3,,,k2,s2,u3", "e3,,,k2,s2,u77")
    files = edited(files, "users.csv", "u3,,,true", "u3,tobedeleted,,true")
    bundle = read_bundle(zip_bundle(files))
    assert bundle.modes["users"] == "delta"


@pytest.mark.parametrize(("data", "reason"), [
    (b"PK\x03\x04 not really", "not a zip file"),
    (b"", "not a zip file"),
])
def test_what_is_not_a_zip_is_refused(data: bytes, reason: str) -> None:
    assert problems_of(data) == [Problem("bundle", 0, reason)]


def test_text_that_is_not_utf8_is_refused_with_its_line() -> None:
    latin1 = BUNDLE_11["orgs.csv"].replace("Lakeside Middle", "Lakeside Müddle")
    files = {**BUNDLE_11, "orgs.csv": latin1.encode("latin-1")}
    assert problems_of(zip_bundle(files)) == [Problem("orgs.csv", 4, "is not UTF-8 text")]


def test_a_zip_bomb_is_refused_before_it_is_unpacked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_bundle, "MAX_TOTAL_BYTES", 1_000_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("users.csv", b"a" * 5_000_000)  # compresses to a few KB
    assert len(buffer.getvalue()) < 50_000
    assert problems_of(buffer.getvalue()) == [
        Problem("bundle", 0, "more than 0 MB unpacked; refused")]


def test_too_many_entries_are_refused() -> None:
    files = {f"extra{n}.txt": "x" for n in range(csv_bundle.MAX_ENTRIES + 1)}
    assert "files in the zip" in problems_of(zip_bundle(files))[0].reason


def test_a_huge_field_is_refused() -> None:
    files = edited(BUNDLE_11, "orgs.csv", "Lakeside Middle", "L" * 200_000)
    found = problems_of(zip_bundle(files))
    assert found[0].file == "orgs.csv" and "field larger than field limit" in found[0].reason
