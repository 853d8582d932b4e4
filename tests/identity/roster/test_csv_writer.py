"""Bundles written with ``csv_writer`` read back as what was written: the headers are
OneRoster 1.1's, the manifest makes every file bulk, and the bytes are reproducible."""

from __future__ import annotations

from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.identity.roster.csv_writer import HEADERS_11, bundle_zip, csv_file, manifest_11

ROWS = {
    "orgs.csv": [["d1", "", "", "Hill District", "district", "HD", ""],
                 ["s1", "", "", "Hill School, North", "school", "HS", "d1"]],
    "academicSessions.csv": [["y1", "", "", "2026-2027", "schoolYear", "2026-08-17",
                              "2027-06-11", "", "2027"]],
    "courses.csv": [["c1", "", "", "y1", "Algebra", "ALG", "09", "s1", "Mathematics"]],
    "classes.csv": [["k1", "", "", "Algebra - P1", "09", "c1", "A1", "scheduled", "R1", "s1",
                     "y1", "Mathematics", "1"]],
    "users.csv": [["u1", "", "", "true", "s1", "student", "ann.lee", "", "Ann", "Lee", "",
                   "S1", "", "", "", "", "09", "secret-pass"]],
    "enrollments.csv": [["e1", "", "", "k1", "s1", "u1", "student", "false", "", ""]],
}


def written() -> bytes:
    files = {"manifest.csv": manifest_11("tests")}
    for name, rows in ROWS.items():
        extra = ("password",) if name == "users.csv" else ()
        files[name] = csv_file(HEADERS_11[name] + extra, rows)
    return bundle_zip(files)


def test_a_written_bundle_reads_back() -> None:
    bundle = read_bundle(written())
    assert bundle.version == "1.1"
    assert set(bundle.modes.values()) == {"bulk"} and len(bundle.modes) == 6
    [school] = [o for o in bundle.records["orgs"] if o["type"] == "school"]
    assert school["name"] == "Hill School, North"  # quoted, not split at the comma
    [ann] = bundle.records["users"]
    assert (ann["username"], ann["grades"]) == ("ann.lee", ("09",))
    assert bundle.passwords == {"u1": "secret-pass"}
    assert written() == written()  # same rows, same bytes


def test_csv_files_use_crlf_and_quote_as_rfc4180() -> None:
    assert csv_file(["a", "b"], [["x,y", 'say "hi"']]) == b'a,b\r\n"x,y","say ""hi"""\r\n'


def test_bundles_are_compressed() -> None:
    big = csv_file(HEADERS_11["orgs.csv"], [[f"s{n}", "", "", "A School", "school", "", ""]
                                            for n in range(2000)])
    assert len(bundle_zip({"orgs.csv": big})) < len(big) // 5
