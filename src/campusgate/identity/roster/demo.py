"""A small demo district to try campusgate with: a OneRoster 1.1 CSV bundle built in
memory, imported through the same path as any district's (``csv_bundle`` -> store).

Deterministic: the same people, schools and classes every time -- Maple Valley School
District with an elementary, a middle and a high school, one school year of two terms,
eight courses with a class each, six teachers, forty students, one district
administrator, and their enrollments.  Everyone gets the one password given.
"""

from __future__ import annotations

from collections.abc import Sequence

from campusgate.identity.roster.csv_writer import HEADERS_11, bundle_zip, csv_file, manifest_11

__all__ = ["DEFAULT_TENANT", "DEMO_DISTRICT", "EMAIL_DOMAIN", "demo_bundle"]

DEFAULT_TENANT = "demo"
DEMO_DISTRICT = "Maple Valley School District"
EMAIL_DOMAIN = "maplevalley.example.edu"

#: (sourcedId, name, grades taught)
_SCHOOLS = (("mv-es", "Maple Valley Elementary School", ("03",)),
            ("mv-ms", "Maple Valley Middle School", ("07",)),
            ("mv-hs", "Maple Valley High School", ("09", "10")))
#: (sourcedId, school, title, code, grades, subject)
_COURSES = (
    ("c-read3", "mv-es", "Grade 3 Reading", "READ3", ("03",), "English Language Arts"),
    ("c-math3", "mv-es", "Grade 3 Math", "MATH3", ("03",), "Mathematics"),
    ("c-sci7", "mv-ms", "Life Science 7", "SCI7", ("07",), "Science"),
    ("c-eng7", "mv-ms", "English 7", "ENG7", ("07",), "English Language Arts"),
    ("c-alg1", "mv-hs", "Algebra I", "ALG1", ("09", "10"), "Mathematics"),
    ("c-bio", "mv-hs", "Biology", "BIO", ("09", "10"), "Science"),
    ("c-ush", "mv-hs", "U.S. History", "USH", ("10",), "Social Studies"),
    ("c-art", "mv-hs", "Studio Art", "ART", ("09", "10"), "Fine Arts"),
)
#: (given, family, school, classes taught)
_TEACHERS = (("Grace", "Hopper", "mv-es", ("c-read3", "c-math3")),
             ("Alan", "Turing", "mv-ms", ("c-sci7",)),
             ("Ada", "Lovelace", "mv-ms", ("c-eng7",)),
             ("Katherine", "Johnson", "mv-hs", ("c-alg1", "c-bio")),
             ("Carter", "Woodson", "mv-hs", ("c-ush",)),
             ("Frida", "Kahlo", "mv-hs", ("c-art",)))
_GIVEN = ("Ava", "Ben", "Chloe", "Diego", "Emma", "Finn", "Gia", "Hugo", "Iris", "Jack",
          "Kai", "Lena", "Milo", "Nora", "Owen", "Pia", "Quinn", "Rosa", "Sam", "Tara")
_FAMILY = ("Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad",
           "Ito", "Jensen", "Khan", "Lopez", "Moreau", "Nguyen", "Okafor", "Patel",
           "Quiroga", "Rossi", "Silva", "Tanaka")
#: Students per school (12 + 13 + 15 = 40).
_STUDENTS_PER_SCHOOL = (12, 13, 15)
_YEAR = ("sy-2026", "2026-2027", "2026-08-17", "2027-06-11")
_TERMS = (("t-fall-2026", "Fall 2026", "2026-08-17", "2027-01-15"),
          ("t-spring-2027", "Spring 2027", "2027-01-19", "2027-06-11"))


def _person(sourced_id: str, role: str, given: str, family: str, orgs: Sequence[str],
            grades: Sequence[str], password: str, suffix: str) -> list[str]:
    username = f"{given}.{family}{suffix}".lower().replace(" ", "")
    return [sourced_id, "", "", "true", ",".join(orgs), role, username,
            f"{{district:{sourced_id}}}", given, family, "", sourced_id.upper(),
            f"{username}@{EMAIL_DOMAIN}", "", "", "", ",".join(grades), password]


def demo_bundle(password: str, tenant: str = DEFAULT_TENANT) -> bytes:
    """The demo district as a OneRoster 1.1 bulk CSV zip; ``password`` for everyone.

    Usernames are global across tenants, so outside the default tenant they end in
    ``.<tenant>`` (``grace.hopper.maple``): several demo districts can live side by
    side."""
    suffix = "" if tenant == DEFAULT_TENANT else f".{tenant}"
    schools = [s[0] for s in _SCHOOLS]
    orgs = [["mv-district", "", "", DEMO_DISTRICT, "district", "MVSD", ""]]
    orgs += [[sid, "", "", name, "school", sid.upper(), "mv-district"]
             for sid, name, _ in _SCHOOLS]
    sessions = [[_YEAR[0], "", "", _YEAR[1], "schoolYear", _YEAR[2], _YEAR[3], "", "2027"]]
    sessions += [[sid, "", "", title, "term", start, end, _YEAR[0], "2027"]
                 for sid, title, start, end in _TERMS]
    courses = [[cid, "", "", _YEAR[0], title, code, ",".join(grades), school, subject]
               for cid, school, title, code, grades, subject in _COURSES]
    classes = [[f"k-{cid[2:]}", "", "", f"{title} - Period {n}", ",".join(grades), cid,
                f"{code}-{n}", "scheduled", f"Room {100 + 10 * n}", school,
                ",".join(t[0] for t in _TERMS), subject, str(n)]
               for n, (cid, school, title, code, grades, subject)
               in enumerate(_COURSES, start=1)]
    users = [_person("u-admin", "administrator", "Morgan", "Reyes",
                     ["mv-district", *schools], (), password, suffix)]
    enrollments: list[list[str]] = []
    for n, (given, family, school, taught) in enumerate(_TEACHERS, start=1):
        sid = f"u-t{n}"
        users.append(_person(sid, "teacher", given, family, [school], (), password,
                             suffix))
        enrollments += [[f"e-{sid}-{cid[2:]}", "", "", f"k-{cid[2:]}", school, sid,
                         "teacher", "true", "", ""] for cid in taught]
    n = 0
    for (school, _name, grades), count in zip(_SCHOOLS, _STUDENTS_PER_SCHOOL, strict=True):
        school_classes = [c[0] for c in _COURSES if c[1] == school]
        for _ in range(count):
            n += 1
            sid = f"u-s{n:02d}"
            grade = grades[n % len(grades)]
            users.append(_person(sid, "student", _GIVEN[n % 20], _FAMILY[(n * 7 + n // 20) % 20],
                                 [school], (grade,), password, suffix))
            enrollments += [[f"e-{sid}-{cid[2:]}", "", "", f"k-{cid[2:]}", school, sid,
                             "student", "false", "", ""] for cid in school_classes]
    tables = {"orgs.csv": orgs, "academicSessions.csv": sessions, "courses.csv": courses,
              "classes.csv": classes, "users.csv": users, "enrollments.csv": enrollments}
    files = {"manifest.csv": manifest_11("campusgate seed-demo")}
    for name, table in tables.items():
        header = HEADERS_11[name] + (("password",) if name == "users.csv" else ())
        files[name] = csv_file(header, table)
    return bundle_zip(files)
